"""Short windows first (training/loop.py): over the first `short_windows` of the budget each step reads
half a window of the streams (twice the updates per character), then whole ones; the position is
saved, so a resume goes on from the same character of every stream."""

from __future__ import annotations

import threading

import pytest

from charlstm.runs import checkpoint as ckpt
from charlstm.config import ModelConfig
from charlstm.runs.runinfo import RunInfo
from charlstm.config import TrainConfig
from charlstm.training.loop import train
from conftest import losses, run_cli

MODEL = ModelConfig(vocab_size=1, hidden_size=32, embedding_size=16, num_layers=2)


def _config(**overrides) -> TrainConfig:
    base = dict(batch_size=8, seq_len=40, max_steps=20, time_budget=None, eval_every=10, log_every=1,
                preview_chars=0, eval_seconds=None)
    return TrainConfig(**{**base, **overrides})


def test_half_windows_are_the_windows_of_half_the_length_read_in_turn(tmp_path, shakespeare_text):
    """Windows of 40 read in halves, the state carried from the first half into the second, train
    exactly as windows of 20 do (within the first epoch, where both cut the streams alike)."""
    halves = train(shakespeare_text, tmp_path / "halves", MODEL, _config(seq_len=40, short_windows=1.0), threads=1)
    whole = train(shakespeare_text, tmp_path / "whole", MODEL, _config(seq_len=20, short_windows=0.0), threads=1)
    assert halves.step == whole.step == 20
    a, b = losses(tmp_path / "halves"), losses(tmp_path / "whole")
    assert a == pytest.approx(b, rel=1e-6, abs=1e-7)
    left, right = (ckpt.load(tmp_path / run / ckpt.LATEST) for run in ("halves", "whole"))
    for name, tensor in left.model_state.items():
        assert (tensor - right.model_state[name]).abs().max().item() < 1e-6, name
    assert left.run_info.half_windows == 20 and left.run_info.position == 20   # 20 halves: 10 windows of 40
    assert right.run_info.position == 40


@pytest.mark.parametrize("fraction, position", [(0.5, 10 + 2 * 10), (0.25, 5 + 1 + 2 * 14), (0.0, 40)])
def test_windows_grow_once_and_the_position_is_saved(tmp_path, shakespeare_text, fraction, position):
    """Half windows over the first `fraction` of the steps; a window begun in halves is finished by
    one more half (0.25 of 20 steps ends after 5 halves), then whole windows to the end."""
    train(shakespeare_text, tmp_path / "run", MODEL, _config(short_windows=fraction), threads=1)
    saved = ckpt.load(tmp_path / "run" / ckpt.LATEST)
    assert saved.run_info.step == 20 and saved.run_info.position == position
    assert ("half_windows" in saved.train) == (fraction > 0)      # whole windows only: the step says it


def test_a_run_stopped_inside_the_short_windows_resumes_exactly(tmp_path, shakespeare_text):
    """Stopped after 7 halves (in the middle of a window, its state carried), resumed: the same
    per-step losses and weights as a run that never stopped."""
    config = _config(max_steps=24, short_windows=0.5, eval_every=8)
    train(shakespeare_text, tmp_path / "straight", MODEL, config, threads=1)
    stop = threading.Event()

    def stop_at_7(event):
        if event.kind == "step" and event.step == 7:
            stop.set()

    first = train(shakespeare_text, tmp_path / "resumed", MODEL, config, on_event=stop_at_7, stop=stop, threads=1)
    assert first.interrupted and ckpt.load(tmp_path / "resumed" / ckpt.LATEST).run_info.position == 7
    train(shakespeare_text, tmp_path / "resumed", None, config, resume=True, threads=1)
    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(1, 25))
    assert resumed == pytest.approx(straight, rel=1e-5, abs=1e-6)
    a, b = (ckpt.load(tmp_path / run / ckpt.LATEST) for run in ("straight", "resumed"))
    assert a.run_info.position == b.run_info.position == 12 + 2 * 12
    for name, tensor in a.model_state.items():
        assert (tensor - b.model_state[name]).abs().max().item() < 1e-5, name


def test_a_resumed_run_that_read_a_whole_window_never_goes_back_to_halves(tmp_path, shakespeare_text):
    """More steps given on resume lower the fraction spent, but windows only grow."""
    train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=10, short_windows=0.5), threads=1)
    assert ckpt.load(tmp_path / "run" / ckpt.LATEST).run_info.position == 6 + 2 * 4   # 5 halves, 1 to finish
    train(shakespeare_text, tmp_path / "run", None, _config(max_steps=40, short_windows=0.5), resume=True, threads=1)
    assert ckpt.load(tmp_path / "run" / ckpt.LATEST).run_info.position == 14 + 2 * 30


@pytest.mark.parametrize("value", [3, 100, -1, 2.5, "7"])
def test_a_position_a_run_cannot_have_is_refused_in_one_line_and_nothing_is_written(tmp_path, corpus, value):
    run = tmp_path / "run"
    result = run_cli("train", corpus, "--out", run, "--max-steps", "10", "--hidden-size", "16", "--batch-size", "4",
                     "--preview", "0", "--threads", "1")
    assert result.exit_code == 0, result.output
    path = run / ckpt.LATEST
    saved = ckpt.load(path)
    info = {**saved.train, "half_windows": value}          # 10 steps read between 10 and 20 halves
    ckpt.save(path, ckpt.Checkpoint(saved.config, saved.vocab, saved.model_state, info, saved.tensors))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = run_cli("train", "--resume", "--out", run, "--max-steps", "14")
    assert result.exit_code != 0 and "half_windows" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_run_saved_before_short_windows_existed_resumes_with_whole_windows(tmp_path, corpus):
    """Its recipe has no short_windows (read as 0) and its position is 2 × step: it goes on with
    whole windows from the window it stopped at."""
    run = tmp_path / "run"
    args = ["--hidden-size", "16", "--batch-size", "4", "--preview", "0", "--threads", "1"]
    result = run_cli("train", corpus, "--out", run, "--max-steps", "6", "--short-windows", "0", *args)
    assert result.exit_code == 0, result.output
    path = run / ckpt.LATEST
    saved = ckpt.load(path)
    info = dict(saved.train)
    assert "half_windows" not in info
    info["train_config"] = {k: v for k, v in info["train_config"].items() if k != "short_windows"}
    ckpt.save(path, ckpt.Checkpoint(saved.config, saved.vocab, saved.model_state, info, saved.tensors))
    assert RunInfo.from_dict(info).train_config.short_windows == 0.0
    result = run_cli("train", "--resume", "--out", run, "--max-steps", "10")
    assert result.exit_code == 0, result.output
    after = ckpt.load(path).run_info
    assert after.step == 10 and after.position == 20 and after.train_config.short_windows == 0.0
