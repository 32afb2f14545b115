"""training/resume.py: `train --resume`. A run stopped and resumed with the same budget is the run that
never stopped, bit for bit; what a resume reads is checked first (the corpus, the options typed, the
training metadata and tensors beside the model), and a refusal writes nothing; budgets mean what they
say on resume (--max-steps: the step to stop at; --time: more time), a run with nothing left to do says
so, and the learning rate never jumps back up."""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from charlstm.config import ModelConfig, TrainConfig
from charlstm.errors import TrainingError
from charlstm.model.average import AVERAGE_PREFIX, TRAINING_PREFIX
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from conftest import (SEEDED, charlstm_process, error_line, metrics, read_checkpoint_file, refused, rewrite_checkpoint,
                      run_cli, run_files, small_config, small_model, write_checkpoint_file)

MODEL = small_model()


# ---------------------------------------------------------------------------------- the same run


def test_resume_after_an_interruption_is_bit_identical_to_the_run_that_never_stopped(tmp_path, shakespeare_text):
    """Stopped between two steps (what Ctrl-C does) and resumed with the same budget: every step's loss
    and learning rate, the model and the weights beside it are those of the run that never stopped
    (two layers of carried state, warmup and decay, the previews' sampler: all restored)."""
    model = ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8, num_layers=2)
    config = small_config(max_steps=30, eval_every=10, warmup_steps=3, decay_fraction=0.5, preview_chars=30)
    train(shakespeare_text, tmp_path / "straight", model, config)
    stop = threading.Event()

    def stop_at_17(event):  # what Ctrl-C does: ask the loop to stop between two steps
        if event.kind == "step" and event.step == 17:
            stop.set()

    first = train(shakespeare_text, tmp_path / "resumed", model, config, on_event=stop_at_17, stop=stop)
    assert first.interrupted and first.step == 17
    assert ckpt.load(tmp_path / "resumed" / "latest.safetensors").train["step"] == 17
    second = train(shakespeare_text, tmp_path / "resumed", None, config, resume=True)
    assert second.step == 30 and not second.interrupted

    pick = lambda run: {m["step"]: (m["train_loss"], m["lr"]) for m in metrics(tmp_path / run) if "train_loss" in m}
    assert sorted(pick("resumed")) == list(range(1, 31))
    assert pick("resumed") == pick("straight")
    # the model, and the weights beside it (the training weights or their moving average, model/average.py)
    a, b = (ckpt.load(tmp_path / run / "latest.safetensors") for run in ("straight", "resumed"))
    beside = lambda c: {k: v for k, v in c.tensors.items() if k.startswith(("train.", "average."))}
    assert len(beside(a)) == len(a.model_state) and set(beside(a)) == set(beside(b))
    for name, tensor in [*a.model_state.items(), *beside(a).items()]:
        assert torch.equal(tensor, b.model_state.get(name, beside(b).get(name))), name


# ---------------------------------------------------------------------------------- what a resume refuses


def test_resume_refuses_a_different_corpus(tmp_path, shakespeare_text):
    train(shakespeare_text, tmp_path / "run", MODEL, small_config(max_steps=5, eval_every=5))
    with pytest.raises(TrainingError, match="different character set"):
        train(shakespeare_text + "世", tmp_path / "run", None, small_config(max_steps=10), resume=True)
    with pytest.raises(TrainingError, match="corpus differs"):
        train(shakespeare_text[:-100], tmp_path / "run", None, small_config(max_steps=10), resume=True)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(shakespeare_text, tmp_path / "run", MODEL, small_config(max_steps=10))


def test_the_command_and_the_library_refuse_a_resume_with_the_same_line(tmp_path, corpus):
    """One check decides whether a run may go on from its checkpoint (resume.refuse_resume):
    `charlstm train --resume` and `train(..., resume=True)` refuse another corpus, and a checkpoint
    without training state, with the same message."""
    run = tmp_path / "run"
    assert run_cli("train", corpus, "--out", run, "--max-steps", "4", "--eval-every", "4", *SEEDED).exit_code == 0
    text = corpus.read_text(encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text(text[::-1], encoding="utf-8")                     # the same characters, another text
    latest = run / "latest.safetensors"
    differs = (f"{latest}: the corpus differs from the one this run was trained on ({len(text)} characters then, "
               f"{len(text)} now); resume with the same corpus")
    refused_now = charlstm_process("train", other, "--resume", "--out", run, "--max-steps", "8")
    assert error_line(refused_now.stderr) == f"Error: {differs}"
    with pytest.raises(TrainingError) as caught:
        train(text[::-1], run, None, small_config(max_steps=8), resume=True)
    assert str(caught.value) == differs

    saved = ckpt.load(latest)                                          # the model alone, as if exported
    ckpt.save(latest, ckpt.Checkpoint(saved.config, saved.vocab, saved.model_state))
    untrained = f"{latest}: a model without training state; it cannot be resumed"
    refused_now = charlstm_process("train", corpus, "--resume", "--out", run, "--max-steps", "8")
    assert error_line(refused_now.stderr) == f"Error: {untrained}"
    with pytest.raises(ckpt.CheckpointError) as caught:
        train(text, run, None, small_config(max_steps=8), resume=True)
    assert str(caught.value) == untrained


def test_resume_refuses_model_options_that_differ_from_the_saved_model(tmp_path, corpus):
    run = tmp_path / "run"
    assert run_cli("train", corpus, "--out", run, "--max-steps", "4", "--eval-every", "4", *SEEDED).exit_code == 0
    before = run_files(run)
    proc = charlstm_process("train", "--resume", "--out", run, "--max-steps", "8", "--hidden-size", "32",
                            "--num-layers", "3")
    assert proc.returncode == 1
    assert error_line(proc.stderr) == (f"Error: {run} was trained with --hidden-size 16 --num-layers 2; a resumed run "
                                       f"keeps its model, so --hidden-size 32 --num-layers 3 cannot apply: drop it, or "
                                       f"pass another --out to train a new model")
    other_cell = run_cli("train", "--resume", "--out", run, "--max-steps", "8", "--cell", "gru")
    assert other_cell.exit_code == 1 and "was trained with --cell lstm" in other_cell.stderr
    assert run_files(run) == before
    same = run_cli("train", "--resume", "--out", run, "--max-steps", "8", "--hidden-size", "16", "--cell", "lstm")
    assert same.exit_code == 0, same.output  # the saved values typed again are fine
    assert ckpt.load(run / "latest.safetensors").train["step"] == 8


@pytest.mark.parametrize("option, value", [("--seq-len", "8"), ("--batch-size", "2"), ("--val-fraction", "0.2")])
def test_resume_refuses_options_that_would_recut_the_streams(small_run, option, value):
    before = run_files(small_run)
    refused(run_cli("train", "--resume", "--out", small_run, "--max-steps", "8", option, value), option, "cannot apply")
    assert run_files(small_run) == before


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(meta, tensors):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _tensors(change):
    def edit(meta, tensors):
        change(tensors)
    return edit


def _beside(tensors) -> str:
    """The prefix of the weights saved beside the model (the training weights or their average)."""
    return TRAINING_PREFIX if any(k.startswith(TRAINING_PREFIX) for k in tensors) else AVERAGE_PREFIX


def _other(prefix: str) -> str:
    return AVERAGE_PREFIX if prefix == TRAINING_PREFIX else TRAINING_PREFIX


#: (name, edit of a checkpoint's (metadata, tensors), words the one line says)
RESUME_ROWS = [
    ("step as a string", _set("train", "step", "150"), ["step"]),
    ("a negative step", _set("train", "step", -4), ["step"]),
    ("layout missing", lambda m, t: m["train"].pop("layout"), ["layout"]),
    ("batch size in words", _set("train", "layout", "batch_size", "four"), ["batch_size"]),
    ("a layout of more streams than there is state for",
     lambda m, t: (t.pop("state.0"), t.pop("state.1"), m["train"]["layout"].update(batch_size=10**6),
                   m["train"]["train_config"].update(batch_size=10**6)), ["stream layout", "nothing was written"]),
    ("a layout of more characters than the corpus", lambda m, t: m["train"]["layout"].update(n_chars=10**12),
     ["stream layout", "nothing was written"]),
    ("a layout of fewer characters than the corpus", lambda m, t: m["train"]["layout"].update(n_chars=1000),
     ["stream layout", "nothing was written"]),
    ("optimizer tensors with foreign names", _tensors(lambda t: t.update(
        {k.replace("optim.", "optim.x"): t.pop(k) for k in [k for k in t if k.startswith("optim.")]})), ["optim"]),
    ("carried state of the wrong shape", _tensors(lambda t: t.update({"state.0": torch.zeros(2, 3, 5)})), ["state"]),
    ("a 5-byte RNG state", _tensors(lambda t: t.update({"rng.torch": torch.zeros(5, dtype=torch.uint8)})), ["rng"]),
    ("a weight beside the model of the wrong shape",
     _tensors(lambda t: t.update({_beside(t) + "head.weight": torch.zeros(3, 3)})), ["weight", "cannot be resumed"]),
    ("a weight beside the model under another name",
     _tensors(lambda t: t.update({_beside(t) + "head.extra": t.pop(_beside(t) + "head.weight")})),
     ["weight", "cannot be resumed"]),
    ("a weight beside the model missing", _tensors(lambda t: t.pop(_beside(t) + "head.weight")),
     ["weight", "cannot be resumed"]),
    ("both kinds of weights beside the model",
     _tensors(lambda t: t.update({_other(_beside(t)) + k[len("model."):]: v.clone()
                                  for k, v in list(t.items()) if k.startswith("model.")})),
     ["weights", "cannot be resumed"]),
]


@pytest.mark.parametrize("name, edit, words", RESUME_ROWS, ids=[row[0] for row in RESUME_ROWS])
def test_training_metadata_is_validated_on_resume(trained_run, tmp_path, name, edit, words):
    """What only a resume reads (the step, the stream layout, the optimizer, the carried state, the RNG,
    the weights beside the model) is checked before any of it is used: one line, nothing written."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    rewrite_checkpoint(run / ckpt.LATEST, edit)
    before = run_files(run)
    result = run_cli("train", "--resume", "--out", run, "--max-steps", "152")
    line = refused(result, *words)
    assert line.startswith(f"Error: {run / ckpt.LATEST}"), line
    assert run_files(run) == before


def _poison(path: Path, prefix: str) -> str:
    """Rewrite a checkpoint with the first tensor named `prefix`… set to NaN; its name."""
    meta, tensors = read_checkpoint_file(path)
    name = next(k for k in sorted(tensors) if k.startswith(prefix) and tensors[k].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    write_checkpoint_file(path, meta, tensors)
    return name


@pytest.mark.parametrize("prefix", ["optim.", "state."])
def test_resume_refuses_non_finite_training_state_and_touches_nothing(tmp_path, corpus, prefix):
    run = tmp_path / "run"
    assert run_cli("train", corpus, "--out", run, "--max-steps", "6", "--eval-every", "3", *SEEDED).exit_code == 0
    name = _poison(run / "latest.safetensors", prefix)
    before = run_files(run)
    proc = charlstm_process("train", "--resume", "--out", run, "--max-steps", "12")
    assert proc.returncode == 1, proc.stderr
    assert error_line(proc.stderr) == (f"Error: {run / 'latest.safetensors'}: {name} holds NaN or infinite values, so "
                                       f"the run cannot be resumed from it (its weights are finite: sample still loads "
                                       f"it); nothing was written")
    assert run_files(run) == before  # checkpoints, log, previews, id cache: all as they were
    # the library refuses it the same way
    with pytest.raises(ckpt.CheckpointError, match="cannot be resumed"):
        train(corpus.read_text(encoding="utf-8"), run, None, small_config(max_steps=12), resume=True)
    assert run_files(run) == before


# ---------------------------------------------------------------------------------- budgets on resume


def _notice_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]


def test_resume_with_nothing_to_do_says_so_and_trains_nothing(tmp_path, corpus):
    """A finished run resumed with its own budget is complete: one line, exit 0 (a `until charlstm train
    --resume` loop ends), nothing written. A budget typed now that is not beyond the run is an error."""
    run = tmp_path / "run"
    assert run_cli("train", corpus, "--out", run, "--max-steps", "10", "--eval-every", "5", "--log-every", "1",
                   *SEEDED).exit_code == 0
    before = run_files(run)
    plain = charlstm_process("train", "--resume", "--out", run)
    assert plain.returncode == 0, plain.stderr
    assert _notice_lines(plain) == [f"charlstm: {run} is complete: it reached its budget of 10 steps; to go on, pass "
                                    f"--time 10m for 10 more minutes or --max-steps with a step beyond 10"]
    behind = charlstm_process("train", "--resume", "--out", run, "--max-steps", "7")
    assert behind.returncode == 1
    assert error_line(behind.stderr) == (f"Error: {run}: nothing to train: it is at step 10 and --max-steps 7 (the "
                                         f"step to stop at) is not beyond it; to go on, pass --time 10m for 10 more "
                                         f"minutes or --max-steps with a step beyond 10")
    assert run_files(run) == before  # no duplicate evaluation line, no checkpoint rewritten
    # --max-steps is the step to stop at (the log's numbering), also on resume
    more = run_cli("train", "--resume", "--out", run, "--max-steps", "15")
    assert more.exit_code == 0, more.output
    assert ckpt.load(run / "latest.safetensors").train["step"] == 15
    steps = [m["step"] for m in metrics(run) if "train_loss" in m]
    assert steps == list(range(1, 16))
    assert [m["step"] for m in metrics(run) if "val_bpc" in m] == [5, 10, 15]


def _untouched(run: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a run folder, its lock included, by name: its bytes and its mtime (ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.iterdir())}


@pytest.mark.parametrize("budget", [
    ["--max-steps", "12", "--eval-every", "4"],
    ["--time", "2s", "--eval-every", "100000"],
    ["--max-steps", "3000", "--patience", "1", "--eval-every", "5", "--eval-seconds", "0", "--lr", "3e-2"],
], ids=["max-steps", "time", "patience"])
def test_the_command_that_trained_a_finished_run_run_again_with_resume_is_complete(tmp_path, corpus, budget):
    """A script that runs its command again (with --resume) after a crash that came past the end: exit
    0, one line saying the run is complete, and not a byte or an mtime of the run folder changed (the
    lock included); a budget typed smaller is still an error, a larger one still trains on."""
    run = tmp_path / "run"
    command = ["train", corpus, "--out", run, "--log-every", "1", *SEEDED, *budget]
    first = run_cli(*command)
    assert first.exit_code == 0, first.output
    info = ckpt.load(run / "latest.safetensors").run_info
    assert info.finished and (info.stopped is not None) == ("--patience" in budget)
    before = _untouched(run)
    again = charlstm_process(*command, "--resume")
    assert again.returncode == 0, again.stderr
    [line] = _notice_lines(again)
    assert line.startswith(f"charlstm: {run} is complete: ") and f"a step beyond {info.step}" in line
    assert again.stdout == "" and _untouched(run) == before
    behind = charlstm_process(*command, "--resume", "--max-steps", str(info.step - 1))
    assert behind.returncode == 1 and "nothing to train" in error_line(behind.stderr)
    assert _untouched(run) == before
    beyond = run_cli(*command, "--resume", "--max-steps", str(info.step + 2))
    assert beyond.exit_code == 0, beyond.output
    assert ckpt.load(run / "latest.safetensors").run_info.step == info.step + 2


def test_resume_time_is_more_time_and_a_finished_time_run_has_nothing_left(tmp_path, corpus):
    run = tmp_path / "run"
    first = run_cli("train", corpus, "--out", run, "--time", "3s", "--eval-every", "100000", "--log-every", "1",
                    *SEEDED)
    assert first.exit_code == 0, first.output
    done = ckpt.load(run / "latest.safetensors").train
    assert done["finished"] is True and done["step"] > 0
    before = run_files(run)
    plain = charlstm_process("train", "--resume", "--out", run)
    assert plain.returncode == 0, plain.stderr
    [line] = _notice_lines(plain)
    assert line.startswith(f"charlstm: {run} is complete: it finished its 3s budget at step {done['step']} (")
    assert "Done" not in plain.stderr
    assert run_files(run) == before

    # (--time 3s, the run's own budget typed again, is the command that trained it: complete, as above)
    more = run_cli("train", "--resume", "--out", run, "--time", "4s")
    assert more.exit_code == 0, more.output
    after = ckpt.load(run / "latest.safetensors").train
    assert after["step"] > done["step"]                                  # it trained, not zero steps
    assert after["train_config"]["time_budget"] == pytest.approx(done["elapsed_s"] + 4.0)
    assert after["elapsed_s"] >= done["elapsed_s"] + 2.0
    evals = [m for m in metrics(run) if "val_bpc" in m]
    assert [m["step"] for m in evals] == [done["step"], after["step"]]  # no duplicate evaluation
    assert all(m["chars_per_s"] > 0 for m in evals)
    # the budget typed now is the whole budget: the stored clock does not stop a --max-steps resume
    steps = run_cli("train", "--resume", "--out", run, "--max-steps", str(after["step"] + 3))
    assert steps.exit_code == 0, steps.output
    last = ckpt.load(run / "latest.safetensors").train
    assert last["step"] == after["step"] + 3 and last["train_config"]["time_budget"] is None


def _lrs(run: Path) -> dict[int, float]:
    return {m["step"]: m["lr"] for m in metrics(run) if "train_loss" in m}


def test_an_extended_budget_never_jumps_back_to_the_peak_learning_rate(tmp_path, corpus):
    """The rule: after warmup the rate never rises. A finished run extended goes on at the rate it
    ended with; a run stopped mid-decay likewise holds the rate it had reached until the longer budget's own
    cosine falls below it, then follows that cosine to the floor at the new end."""
    peak, floor = 5e-3, 5e-4
    finished = tmp_path / "finished"
    assert run_cli("train", corpus, "--out", finished, "--max-steps", "20", "--eval-every", "10", "--log-every", "1",
                   "--lr-decay", "0.2", "--lr", str(peak), *SEEDED).exit_code == 0
    lr = _lrs(finished)
    assert lr[1] == pytest.approx(peak) and floor < lr[20] < lr[19] < peak
    assert run_cli("train", "--resume", "--out", finished, "--max-steps", "60").exit_code == 0
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
    assert run_cli("train", "--resume", "--out", stopped, "--max-steps", "100").exit_code == 0
    lr = _lrs(stopped)
    later = [lr[s] for s in range(20, 101)]
    assert max(later) <= reached                                               # never above where it was
    assert all(a >= b for a, b in zip(later, later[1:]))                       # only falls …
    assert lr[20] == reached and lr[90] == reached                             # … held while the new schedule is above it
    phase = (99 / 100 - 0.8) / 0.2                                             # the 100th update: 99 steps done
    assert lr[96] < reached and lr[100] == pytest.approx(floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * phase)))


def test_a_budget_with_room_for_no_step_is_refused_before_anything_is_written(tmp_path, shakespeare_text):
    with pytest.raises(TrainingError, match="nothing to train: the budget allows no step"):
        train(shakespeare_text[:20_000], tmp_path / "run", MODEL, small_config(max_steps=None, time_budget=0.0))
    assert not (tmp_path / "run" / "latest.safetensors").exists()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
