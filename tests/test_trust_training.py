"""Trust in training (issue 15, classes 1 and 7, and the resume half of 4): a diverging run never
writes a non-finite checkpoint and leaves the last good one byte for byte; `--resume` budgets mean
what they say (--time: more time; --max-steps: the step to stop at), the learning rate never jumps
back up, and a resume with nothing to do is one line and exit 1, not a silent zero-step "Done"."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from charlstm.runs import checkpoint as ckpt
from charlstm.cli import main
from charlstm.data.corpus import Corpus
from charlstm.config import ModelConfig
from charlstm.runs.folder import Run
from charlstm.config import TrainConfig
from charlstm.training.loop import Trainer, train
from charlstm.errors import TrainingError

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--seq-len", "16", "--preview", "0",
         "--seed", "3"]
MODEL = ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8, num_layers=1)


def _config(**overrides) -> TrainConfig:
    base = dict(batch_size=4, seq_len=16, max_steps=10, time_budget=None, eval_every=5, log_every=1, preview_chars=0)
    return TrainConfig(**{**base, **overrides})


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The real command in its own process: what a user sees on stderr, and the exit code."""
    return subprocess.run([sys.executable, "-m", "charlstm", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=300)


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _digests(run: Path) -> dict[str, str]:
    """Every file of the run (the lock aside) by its SHA-256."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())
            if p.is_file() and p.name != ".lock"}


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line the user gets; no traceback, nothing else but the progress bar's carriage returns."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _metrics(run: Path) -> list[dict]:
    def refuse(token):  # strict JSON: NaN and Infinity are not JSON
        raise AssertionError(f"{token} in metrics.jsonl")

    return [json.loads(line, parse_constant=refuse) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture()
def corpus(tmp_path, shakespeare_text) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(shakespeare_text[:20_000], encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- class 1


def test_a_diverging_fresh_run_names_step_0_and_writes_nothing_non_finite(tmp_path, corpus):
    run = tmp_path / "run"
    proc = _cli("train", corpus, "--out", run, "--lr", "1e39", "--eval-every", "1", "--max-steps", "5", *SMALL)
    assert proc.returncode == 1, proc.stderr
    line = _error_line(proc)
    assert line.startswith("Error: training diverged at step 1: ")
    assert "try a lower --lr" in line
    assert f"the last good checkpoint is {run / 'latest.safetensors'} (step 0)" in line
    loaded = ckpt.load(run / "latest.safetensors")  # the one named is loadable: finite weights
    assert loaded.train["step"] == 0
    assert not (run / "best.safetensors").exists()  # no evaluation got to write one
    sample = _invoke("sample", run / "latest.safetensors", "--length", "20", "--seed", "1")
    assert sample.exit_code == 0, sample.output


def test_a_diverging_resume_leaves_latest_and_best_byte_identical(tmp_path, corpus):
    run = tmp_path / "run"
    first = _invoke("train", corpus, "--out", run, "--max-steps", "10", "--eval-every", "5", *SMALL)
    assert first.exit_code == 0, first.output
    before = _digests(run)
    assert {"latest.safetensors", "best.safetensors", "metrics.jsonl"} <= set(before)

    proc = _cli("train", "--resume", "--out", run, "--lr", "1e39", "--eval-every", "1", "--max-steps", "20")
    assert proc.returncode == 1, proc.stderr
    line = _error_line(proc)
    assert line.startswith("Error: training diverged at step 11: ") and "try a lower --lr" in line
    assert (f"the last good checkpoint is {run / 'latest.safetensors'} (step 10); "
            f"it and best.safetensors are left as they were") in line
    after = _digests(run)
    assert after["latest.safetensors"] == before["latest.safetensors"]
    assert after["best.safetensors"] == before["best.safetensors"]
    assert ckpt.load(run / "latest.safetensors").train["step"] == 10
    # and the run goes on from it as if the divergent attempt had never been
    again = _invoke("train", "--resume", "--out", run, "--max-steps", "12")
    assert again.exit_code == 0, again.output
    assert ckpt.load(run / "latest.safetensors").train["step"] == 12


def _poison(path: Path, prefix: str) -> str:
    """Rewrite a checkpoint with the first tensor named `prefix`… set to NaN; its name."""
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k in sorted(tensors) if k.startswith(prefix) and tensors[k].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(path), metadata=meta)
    return name


@pytest.mark.parametrize("prefix", ["optim.", "state."])
def test_resume_refuses_non_finite_training_state_and_touches_nothing(tmp_path, corpus, prefix):
    run = tmp_path / "run"
    assert _invoke("train", corpus, "--out", run, "--max-steps", "6", "--eval-every", "3", *SMALL).exit_code == 0
    name = _poison(run / "latest.safetensors", prefix)
    before = _digests(run)
    proc = _cli("train", "--resume", "--out", run, "--max-steps", "12")
    assert proc.returncode == 1, proc.stderr
    assert _error_line(proc) == (f"Error: {run / 'latest.safetensors'}: {name} holds NaN or infinite values, so the "
                                 f"run cannot be resumed from it (its weights are finite: sample still loads it); "
                                 f"nothing was written")
    assert _digests(run) == before  # checkpoints, log, previews, id cache: all as they were
    # the library refuses it the same way
    with pytest.raises(ckpt.CheckpointError, match="cannot be resumed"):
        train(corpus.read_text(encoding="utf-8"), run, None, _config(max_steps=12), resume=True)
    assert _digests(run) == before


def test_every_tensor_that_goes_into_a_checkpoint_is_checked_at_the_one_save(tmp_path, shakespeare_text):
    """Optimizer moments and the carried state, not only the weights, are checked where every save passes."""
    run = Run(tmp_path / "run")
    run.create()
    corpus = Corpus.from_text(shakespeare_text[:20_000])
    trainer = Trainer(corpus, run, MODEL, _config(max_steps=4))
    trainer.run()
    before = _digests(run.path)
    for poison in ("moment", "state"):
        trainer = Trainer(corpus, run, None, _config(max_steps=8), resume=True)
        for _ in range(2):
            trainer.step()
        if poison == "moment":
            moments = next(iter(trainer.optimizer.state.values()))
            moments["exp_avg_sq"].fill_(float("inf"))
        else:
            trainer.state = tuple(torch.full_like(s, float("nan")) for s in trainer.state)
        with pytest.raises(TrainingError) as caught:
            trainer.save(best=True)
        message = str(caught.value)
        assert "became non-finite, so it was not saved" in message
        assert ("optim." if poison == "moment" else "state.") in message
        assert f"the last good checkpoint is {run.latest} (step 4)" in message
        assert _digests(run.path) == before


def test_non_finite_gradients_stop_before_the_update(tmp_path, shakespeare_text, monkeypatch):
    """A gradient norm that is not finite would make every weight NaN through clipping: the step
    stops before the optimizer runs, so the weights in memory are still the good ones."""
    run = Run(tmp_path / "run")
    run.create()
    trainer = Trainer(Corpus.from_text(shakespeare_text[:20_000]), run, MODEL, _config())
    trainer.save()
    trainer.step()
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, clip: torch.tensor(float("inf")))
    with pytest.raises(TrainingError, match=r"^training diverged at step 1: .*gradient norm of inf .*try a lower --lr"):
        trainer.step()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


def test_the_learning_rate_is_blamed_only_when_plausible(tmp_path, shakespeare_text):
    """A model already non-finite before any update is not the learning rate's doing, and nothing is written."""
    text = shakespeare_text[:20_000]
    run = Run(tmp_path / "init")
    run.create()
    trainer = Trainer(Corpus.from_text(text), run, MODEL, _config())
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("inf"))  # as a broken initialisation would leave it
    with pytest.raises(TrainingError) as caught:
        trainer.run()
    message = str(caught.value)
    assert message.startswith("training diverged at step 0: ")
    assert "before any update of this session, so not the learning rate" in message
    assert "--lr" not in message
    assert message.endswith("no checkpoint was written")
    assert not (tmp_path / "init" / "latest.safetensors").exists()

    run = Run(tmp_path / "tiny-lr")
    run.create()
    trainer = Trainer(Corpus.from_text(text), run, MODEL, _config(learning_rate=1e-6))
    trainer.save()
    trainer.step()
    message = str(trainer.writer.diverged("the loss became nan"))
    assert "at a learning rate of 1e-06 the learning rate is an unlikely cause" in message
    assert "try a lower --lr" not in message


def test_no_validation_text_logs_null_not_nan(tmp_path, corpus):
    run = tmp_path / "run"
    result = _invoke("train", corpus, "--out", run, "--val-fraction", "0", "--max-steps", "6", "--eval-every", "3",
                     "--log-every", "1", *SMALL)
    assert result.exit_code == 0, result.output
    assert "validation n/a (no validation text)" in result.stderr
    assert "best validation n/a (no validation text)" in result.stderr
    lines = _metrics(run)  # strict JSON, every line
    evals = [m for m in lines if "val_bpc" in m]
    assert [m["step"] for m in evals] == [3, 6] and all(m["val_bpc"] is None and m["val_loss"] is None for m in evals)
    assert ckpt.load(run / "latest.safetensors").train["last_val_bpc"] is None
    resumed = _invoke("train", "--resume", "--out", run, "--max-steps", "9")
    assert resumed.exit_code == 0, resumed.output
    assert [m["step"] for m in _metrics(run) if "val_bpc" in m] == [3, 6, 9]


# ---------------------------------------------------------------------------------- class 4 (resume half)


def test_resume_refuses_model_options_that_differ_from_the_saved_model(tmp_path, corpus):
    run = tmp_path / "run"
    assert _invoke("train", corpus, "--out", run, "--max-steps", "4", "--eval-every", "4", *SMALL).exit_code == 0
    before = _digests(run)
    proc = _cli("train", "--resume", "--out", run, "--max-steps", "8", "--hidden-size", "32", "--num-layers", "3")
    assert proc.returncode == 1
    assert _error_line(proc) == (f"Error: {run} was trained with --hidden-size 16 --num-layers 2; a resumed run keeps "
                                 f"its model, so --hidden-size 32 --num-layers 3 cannot apply: drop it, or pass "
                                 f"another --out to train a new model")
    refused = _invoke("train", "--resume", "--out", run, "--max-steps", "8", "--cell", "gru")
    assert refused.exit_code == 1 and "was trained with --cell lstm" in refused.stderr
    assert _digests(run) == before
    same = _invoke("train", "--resume", "--out", run, "--max-steps", "8", "--hidden-size", "16", "--cell", "lstm")
    assert same.exit_code == 0, same.output  # the saved values typed again are fine
    assert ckpt.load(run / "latest.safetensors").train["step"] == 8


def test_the_command_and_the_library_refuse_a_resume_with_the_same_line(tmp_path, corpus):
    """One check decides whether a run may go on from its checkpoint (resume.refuse_resume):
    `charlstm train --resume` and `train(..., resume=True)` refuse another corpus, and a checkpoint
    without training state, with the same message."""
    run = tmp_path / "run"
    assert _invoke("train", corpus, "--out", run, "--max-steps", "4", "--eval-every", "4", *SMALL).exit_code == 0
    text = corpus.read_text(encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text(text[::-1], encoding="utf-8")                     # the same characters, another text
    latest = run / "latest.safetensors"
    differs = (f"{latest}: the corpus differs from the one this run was trained on ({len(text)} characters then, "
               f"{len(text)} now); resume with the same corpus")
    assert _error_line(_cli("train", other, "--resume", "--out", run, "--max-steps", "8")) == f"Error: {differs}"
    with pytest.raises(TrainingError) as caught:
        train(text[::-1], run, None, _config(max_steps=8), resume=True)
    assert str(caught.value) == differs

    saved = ckpt.load(latest)                                          # the model alone, as if exported
    ckpt.save(latest, ckpt.Checkpoint(saved.config, saved.vocab, saved.model_state))
    untrained = f"{latest}: a model without training state; it cannot be resumed"
    assert _error_line(_cli("train", corpus, "--resume", "--out", run, "--max-steps", "8")) == f"Error: {untrained}"
    with pytest.raises(ckpt.CheckpointError) as caught:
        train(text, run, None, _config(max_steps=8), resume=True)
    assert str(caught.value) == untrained


# ---------------------------------------------------------------------------------- class 7


def _notice_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]


def test_resume_with_nothing_to_do_says_so_and_trains_nothing(tmp_path, corpus):
    """A finished run resumed with its own budget is complete: one line, exit 0 (a `until charlstm train
    --resume` loop ends), nothing written. A budget typed now that is not beyond the run is an error."""
    run = tmp_path / "run"
    assert _invoke("train", corpus, "--out", run, "--max-steps", "10", "--eval-every", "5", "--log-every", "1",
                   *SMALL).exit_code == 0
    before = _digests(run)
    plain = _cli("train", "--resume", "--out", run)
    assert plain.returncode == 0, plain.stderr
    assert _notice_lines(plain) == [f"charlstm: {run} is complete: it reached its budget of 10 steps; to go on, pass "
                                    f"--time 10m for 10 more minutes or --max-steps with a step beyond 10"]
    behind = _cli("train", "--resume", "--out", run, "--max-steps", "7")
    assert behind.returncode == 1
    assert _error_line(behind) == (f"Error: {run}: nothing to train: it is at step 10 and --max-steps 7 (the step to "
                                   f"stop at) is not beyond it; to go on, pass --time 10m for 10 more minutes or "
                                   f"--max-steps with a step beyond 10")
    assert _digests(run) == before  # no duplicate evaluation line, no checkpoint rewritten
    # --max-steps is the step to stop at (the log's numbering), also on resume
    more = _invoke("train", "--resume", "--out", run, "--max-steps", "15")
    assert more.exit_code == 0, more.output
    assert ckpt.load(run / "latest.safetensors").train["step"] == 15
    steps = [m["step"] for m in _metrics(run) if "train_loss" in m]
    assert steps == list(range(1, 16))
    assert [m["step"] for m in _metrics(run) if "val_bpc" in m] == [5, 10, 15]


def test_resume_time_is_more_time_and_a_finished_time_run_has_nothing_left(tmp_path, corpus):
    run = tmp_path / "run"
    first = _invoke("train", corpus, "--out", run, "--time", "3s", "--eval-every", "100000", "--log-every", "1", *SMALL)
    assert first.exit_code == 0, first.output
    done = ckpt.load(run / "latest.safetensors").train
    assert done["finished"] is True and done["step"] > 0
    before = _digests(run)
    plain = _cli("train", "--resume", "--out", run)
    assert plain.returncode == 0, plain.stderr
    [line] = _notice_lines(plain)
    assert line.startswith(f"charlstm: {run} is complete: it finished its 3s budget at step {done['step']} (")
    assert "Done" not in plain.stderr
    assert _digests(run) == before

    more = _invoke("train", "--resume", "--out", run, "--time", "3s")
    assert more.exit_code == 0, more.output
    after = ckpt.load(run / "latest.safetensors").train
    assert after["step"] > done["step"]                                  # it trained, not zero steps
    assert after["train_config"]["time_budget"] == pytest.approx(done["elapsed_s"] + 3.0)
    assert after["elapsed_s"] >= done["elapsed_s"] + 2.0
    evals = [m for m in _metrics(run) if "val_bpc" in m]
    assert [m["step"] for m in evals] == [done["step"], after["step"]]  # no duplicate evaluation
    assert all(m["chars_per_s"] > 0 for m in evals)
    # the budget typed now is the whole budget: the stored clock does not stop a --max-steps resume
    steps = _invoke("train", "--resume", "--out", run, "--max-steps", str(after["step"] + 3))
    assert steps.exit_code == 0, steps.output
    last = ckpt.load(run / "latest.safetensors").train
    assert last["step"] == after["step"] + 3 and last["train_config"]["time_budget"] is None


def _lrs(run: Path) -> dict[int, float]:
    return {m["step"]: m["lr"] for m in _metrics(run) if "train_loss" in m}


def test_an_extended_budget_never_jumps_back_to_the_peak_learning_rate(tmp_path, corpus):
    """The rule: after warmup the rate never rises. A finished run extended goes on at the rate it
    ended with; a run stopped mid-decay likewise holds the rate it had reached until the longer budget's own
    cosine falls below it, then follows that cosine to the floor at the new end."""
    peak, floor = 5e-3, 5e-4
    finished = tmp_path / "finished"
    assert _invoke("train", corpus, "--out", finished, "--max-steps", "20", "--eval-every", "10", "--log-every", "1",
                   "--lr-decay", "0.2", *SMALL).exit_code == 0
    lr = _lrs(finished)
    assert lr[1] == pytest.approx(peak) and floor < lr[20] < lr[19] < peak
    assert _invoke("train", "--resume", "--out", finished, "--max-steps", "60").exit_code == 0
    lr = _lrs(finished)
    assert sorted(lr) == list(range(1, 61))
    # held where it ended (not back to 5e-3), until the longer budget's cosine falls below it at its end
    assert all(lr[s] == lr[20] for s in range(21, 57)), [lr[s] for s in range(19, 61)]
    assert max(lr[s] for s in range(21, 61)) == lr[20] and lr[60] < lr[59] < lr[20]

    stopped = tmp_path / "stopped"
    stop = threading.Event()

    def at_19(event):  # the 19th update ran at 90% of the budget: halfway down the cosine
        if event.kind == "step" and event.step == 19:
            stop.set()

    text = corpus.read_text(encoding="utf-8")
    config = TrainConfig(batch_size=4, seq_len=16, max_steps=20, time_budget=None, eval_every=10, log_every=1,
                         preview_chars=0, seed=3, decay_fraction=0.2)
    model = ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8)
    result = train(text, stopped, model, config, on_event=at_19, stop=stop, source={"paths": [str(corpus)]})
    assert result.interrupted and result.step == 19
    reached = _lrs(stopped)[19]
    assert reached == pytest.approx((peak + floor) / 2)  # mid-decay
    assert _invoke("train", "--resume", "--out", stopped, "--max-steps", "100").exit_code == 0
    lr = _lrs(stopped)
    later = [lr[s] for s in range(20, 101)]
    assert max(later) <= reached                                               # never above where it was
    assert all(a >= b for a, b in zip(later, later[1:]))                       # only falls …
    assert lr[20] == reached and lr[90] == reached                             # … held while the new schedule is above it
    phase = (99 / 100 - 0.8) / 0.2                                             # the 100th update: 99 steps done
    assert lr[96] < reached and lr[100] == pytest.approx(floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * phase)))


def test_resume_after_an_interruption_with_the_same_budget_is_bit_identical(tmp_path, corpus):
    """The never-rising rule leaves an interrupted run's schedule exactly as it was."""
    text = corpus.read_text(encoding="utf-8")
    config = _config(max_steps=24, eval_every=6, warmup_steps=3, decay_fraction=0.5)
    train(text, tmp_path / "straight", MODEL, config)
    stop = threading.Event()

    def at_13(event):
        if event.kind == "step" and event.step == 13:
            stop.set()

    train(text, tmp_path / "resumed", MODEL, config, on_event=at_13, stop=stop)
    train(text, tmp_path / "resumed", None, config, resume=True)
    straight, resumed = _metrics(tmp_path / "straight"), _metrics(tmp_path / "resumed")
    pick = lambda lines: {m["step"]: (m["train_loss"], m["lr"]) for m in lines if "train_loss" in m}
    assert pick(resumed) == pick(straight)


def test_a_budget_with_room_for_no_step_is_refused_before_anything_is_written(tmp_path, shakespeare_text):
    with pytest.raises(TrainingError, match="nothing to train: the budget allows no step"):
        train(shakespeare_text[:20_000], tmp_path / "run", MODEL, _config(max_steps=None, time_budget=0.0))
    assert not (tmp_path / "run" / "latest.safetensors").exists()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
