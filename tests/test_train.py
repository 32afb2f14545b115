"""Training for real on real text: loss falls, resume is exact, the budget and the guards hold."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from charlstm.runs import checkpoint as ckpt
from charlstm.config import ModelConfig
from charlstm.config import TrainConfig
from charlstm.errors import TrainingError
from charlstm.training.schedule import learning_rate
from charlstm.training.loop import train
from conftest import run_cli

MODEL = ModelConfig(vocab_size=1, hidden_size=48, embedding_size=16, num_layers=2)


def _config(**overrides) -> TrainConfig:
    base = dict(batch_size=16, seq_len=48, max_steps=40, time_budget=None, eval_every=20, log_every=1,
                preview_chars=30, warmup_steps=5)
    return TrainConfig(**{**base, **overrides})


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_validation_bpc_falls(tmp_path, shakespeare_text):
    result = train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=160, eval_every=40, learning_rate=1e-2))
    vals = [m["val_bpc"] for m in _metrics(tmp_path / "run") if "val_bpc" in m]
    assert len(vals) == 4
    # Uniform over the ~60 characters is 5.9 bits; 160 tiny steps get well below the unigram plateau.
    assert vals[-1] < 4.2 and vals[-1] < vals[0] - 0.4, vals
    assert result.best_val_bpc == pytest.approx(min(vals), abs=1e-4)
    assert {"latest.safetensors", "best.safetensors", "metrics.jsonl", "samples.txt"} <= {p.name for p in (tmp_path / "run").iterdir()}
    line = _metrics(tmp_path / "run")[0]
    assert {"step", "elapsed_s", "train_loss", "lr", "chars_per_s"} <= set(line)


def test_resume_equals_uninterrupted(tmp_path, shakespeare_text):
    config = _config(max_steps=30, eval_every=10)
    train(shakespeare_text, tmp_path / "straight", MODEL, config)

    stop = threading.Event()

    def stop_at_17(event):  # what Ctrl-C does: ask the loop to stop between two steps
        if event.kind == "step" and event.step == 17:
            stop.set()

    first = train(shakespeare_text, tmp_path / "resumed", MODEL, config, on_event=stop_at_17, stop=stop)
    assert first.interrupted and first.step == 17
    assert ckpt.load(tmp_path / "resumed" / "latest.safetensors").train["step"] == 17
    second = train(shakespeare_text, tmp_path / "resumed", None, config, resume=True)
    assert second.step == 30 and not second.interrupted

    straight = {m["step"]: m["train_loss"] for m in _metrics(tmp_path / "straight") if "train_loss" in m}
    resumed = {m["step"]: m["train_loss"] for m in _metrics(tmp_path / "resumed") if "train_loss" in m}
    assert sorted(resumed) == list(range(1, 31))
    for step in range(1, 31):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-5, abs=1e-6), step
    # the model, and the weights beside it (the training weights or their moving average, average.py)
    a, b = (ckpt.load(tmp_path / run / "latest.safetensors") for run in ("straight", "resumed"))
    beside = lambda c: {k: v for k, v in c.tensors.items() if k.startswith(("train.", "average."))}
    assert len(beside(a)) == len(a.model_state) and set(beside(a)) == set(beside(b))
    for name, tensor in [*a.model_state.items(), *beside(a).items()]:
        other = b.model_state.get(name, beside(b).get(name))
        assert (tensor - other).abs().max().item() < 1e-5, name


def test_resume_refuses_a_different_corpus(tmp_path, shakespeare_text):
    train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=5, eval_every=5))
    with pytest.raises(TrainingError, match="different character set"):
        train(shakespeare_text + "世", tmp_path / "run", None, _config(max_steps=10), resume=True)
    with pytest.raises(TrainingError, match="corpus differs"):
        train(shakespeare_text[:-100], tmp_path / "run", None, _config(max_steps=10), resume=True)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=10))


def test_time_budget_stops_training(tmp_path, shakespeare_text):
    result = train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=None, time_budget=3.0, eval_every=10_000))
    assert 2.0 < result.elapsed_s < 8.0
    assert result.last_val_bpc is not None  # a final evaluation and checkpoint, even between eval points


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path, shakespeare_text):
    with pytest.raises(TrainingError, match="loss became"):
        train(shakespeare_text, tmp_path / "run", MODEL, _config(learning_rate=1e9, grad_clip=1e12, warmup_steps=0,
                                                                 max_steps=200, eval_every=1))
    loaded = ckpt.load(tmp_path / "run" / "latest.safetensors")  # validated: finite weights only
    assert loaded.train["step"] >= 1


def test_learning_rate_schedule():
    config = TrainConfig(learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1, decay_fraction=1.0)
    assert learning_rate(config, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(config, 9, 0.0) == pytest.approx(1.0)
    assert learning_rate(config, 50, 0.5) == pytest.approx(0.55)
    assert learning_rate(config, 100, 1.0) == pytest.approx(0.1)
    # constant, then cosine over the last fifth of the budget
    late = TrainConfig(learning_rate=1.0, warmup_steps=0, min_lr_ratio=0.1, decay_fraction=0.2)
    assert [learning_rate(late, 5, p) for p in (0.0, 0.5, 0.8)] == [1.0, 1.0, 1.0]
    assert learning_rate(late, 5, 0.9) == pytest.approx(0.55)
    assert learning_rate(late, 5, 1.0) == pytest.approx(0.1)
    assert learning_rate(late, 5, 1.5) == pytest.approx(0.1)
    assert learning_rate(TrainConfig(learning_rate=1.0, warmup_steps=0, decay_fraction=0.0), 5, 0.99) == 1.0


def test_train_with_no_corpus_reads_the_bundled_shakespeare(tmp_path):
    """README's first command names no corpus: the bundled one is found from a source checkout."""
    from charlstm.data.reading import default_corpus_path

    assert default_corpus_path() == Path(__file__).resolve().parent.parent / "corpora" / "shakespeare.txt"
    out = tmp_path / "run"
    result = run_cli("train", "--out", str(out), "--max-steps", "2", "--eval-every", "2", "--hidden-size", "8",
                     "--num-layers", "1", "--embedding-size", "4", "--batch-size", "2", "--seq-len", "16",
                     "--preview", "0", "--threads", "1")
    assert result.exit_code == 0, result.output
    sources = json.loads((out / "corpus.json").read_text(encoding="utf-8"))["sources"]
    assert sources == [str(default_corpus_path())]
