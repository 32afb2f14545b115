"""Nothing lost under kill -9, SIGTERM, a full disk or a second process; every bad input one line."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from charlstm.runs import checkpoint as ckpt
from charlstm.cli import main
from charlstm.data.vocab import Vocab
from charlstm.data.streams import fit_layout, stream_batch
from charlstm.config import ModelConfig
from charlstm.config import TrainConfig
from charlstm.errors import TrainingError
from charlstm.training.loop import train
from conftest import assert_no_traceback

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# A run small enough to be killed many times in a few seconds each; evaluation (and so a checkpoint
# write) every 3 steps, so many kills land during or near a write.
BASE = ["--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-len", "32", "--preview", "0",
        "--lr", "5e-3", "--seed", "7"]
RUN = [*BASE, "--max-steps", "300", "--eval-every", "3", "--log-every", "1"]
FOREVER = [*BASE, "--max-steps", "100000", "--eval-every", "100000"]


def _cli(*args: str, log: Path | None = None) -> subprocess.Popen:
    """The CLI in a subprocess; with `log`, its stderr is appended there instead of to a pipe that a
    long wait could fill (the progress bar writes to stderr; a full pipe would stall the trainer)."""
    if log is None:
        return subprocess.Popen([sys.executable, "-m", "charlstm", *args], env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    with open(log, "a") as sink:
        return subprocess.Popen([sys.executable, "-m", "charlstm", *args], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=sink)


def _losses(run: Path) -> dict[int, float]:
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return {m["step"]: m["train_loss"] for m in lines if "train_loss" in m}


def test_sigkill_at_random_moments_loses_nothing(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:30_000], encoding="utf-8")
    straight = tmp_path / "straight"
    done = _cli("train", str(corpus), "--out", str(straight), *RUN)
    assert done.wait(timeout=300) == 0, done.stderr.read()

    run, rng, kills, mid_write = tmp_path / "killed", random.Random(1234), 0, 0
    log = tmp_path / "killed.log"
    proc = _cli("train", str(corpus), "--out", str(run), *RUN, log=log)
    while kills < 30:
        _wait_for_the_lock(run, proc)  # this process, not the one killed before it, is training,
        while proc.poll() is None and not (run / ckpt.LATEST).is_file():  # and the first has saved step 0
            time.sleep(0.01)
        if kills % 3 == 1:
            _wait_for_checkpoint_temp(run, proc)  # every third kill aimed at a checkpoint write
        else:
            time.sleep(rng.uniform(0.0, 0.15))  # short: a tiny run trains ~100 steps a second
        if proc.poll() is not None:
            break  # finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        # A temp file of this very process left behind proves the kill landed inside a checkpoint
        # write (between creating the temp file and renaming it over the checkpoint).
        mid_write += bool(_checkpoint_temps(run, proc.pid))
        ckpt.load(run / ckpt.LATEST)  # whatever the moment, the checkpoint on disk is whole
        proc = _cli("train", "--resume", "--out", str(run), log=log)
        if kills >= 10 and mid_write >= 3 and rng.random() < 0.3:
            break
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert kills >= 10
    assert mid_write >= 3, f"only {mid_write} of {kills} kills landed during a checkpoint write"

    assert _losses(run) == _losses(straight)  # every step, bit for bit
    a, b = ckpt.load(straight / ckpt.LATEST), ckpt.load(run / ckpt.LATEST)
    assert a.train["step"] == b.train["step"] == 300
    for name, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[name]), name
    assert not list(run.glob(".*.tmp"))


def _checkpoint_temps(run: Path, pid: int) -> list[Path]:
    """The temp files of checkpoint writes by process `pid` (run.write_file names them .NAME.PID-HEX.tmp)."""
    return [p for name in (ckpt.LATEST, ckpt.BEST) for p in run.glob(f".{name}.{pid}-*.tmp")]


def _wait_for_checkpoint_temp(run: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll (every millisecond) until `proc` is in the middle of writing a checkpoint (its temp
    file exists) or exits."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not _checkpoint_temps(run, proc.pid):
        time.sleep(0.001)


def _wait_for_the_lock(run: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until `proc` holds the run's lock (its pid is in .lock): it has started and is training."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if (run / ".lock").read_text().strip() == str(proc.pid):
                return
        except OSError:
            pass
        time.sleep(0.02)


def test_sigterm_saves_and_exits_143(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:30_000], encoding="utf-8")
    run = tmp_path / "run"
    proc = _cli("train", str(corpus), "--out", str(run), *FOREVER)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "charlstm train --resume --out" in stderr and "Traceback" not in stderr
    assert ckpt.load(run / ckpt.LATEST).train["step"] > 0


def test_second_process_on_the_same_run_is_refused_until_the_first_dies(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:30_000], encoding="utf-8")
    run = tmp_path / "run"
    first = _cli("train", str(corpus), "--out", str(run), *FOREVER)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.05)
    second = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--max-steps", "5"])
    assert second.exit_code == 1
    assert f"being trained by another process (pid {first.pid})" in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--max-steps", "3"])
    assert third.exit_code == 0, third.output  # the lock died with its holder


def test_resume_of_a_run_that_is_starting_names_the_process_not_a_missing_checkpoint(tmp_path):
    """A run whose trainer holds the lock but has not written its first checkpoint yet."""
    fcntl = pytest.importorskip("fcntl")
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        busy = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--max-steps", "5"])
    assert busy.exit_code == 1
    assert busy.stderr.strip() == (f"Error: {run} is being trained by another process (pid 4242); "
                                   "wait for it to finish or pass another --out")
    free = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--max-steps", "5"])
    assert free.exit_code == 1 and "nothing to resume" in free.stderr   # lock released: the plain message


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, shakespeare_text, monkeypatch):
    config = TrainConfig(batch_size=8, seq_len=32, max_steps=20, time_budget=None, eval_every=5, preview_chars=0)
    model = ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8)
    saves = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd):
        saves["n"] += 1
        if saves["n"] > 4:  # the first checkpoints reach the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(ckpt.os, "fsync", failing_fsync)
    with pytest.raises(TrainingError, match="No space left on device.*previous checkpoint there is intact"):
        train(shakespeare_text, tmp_path / "run", model, config)
    monkeypatch.undo()
    kept = ckpt.load(tmp_path / "run" / ckpt.LATEST)
    assert kept.train["step"] in (0, 5)
    assert not list((tmp_path / "run").glob(".*.tmp"))


# ------------------------------------------------------------------------------------ bad input matrix


def _lying_checkpoint(path: Path, tmp: Path, edit) -> None:
    """A valid safetensors file whose charlstm JSON says something false."""
    vocab = Vocab.from_text("abc\n")
    from charlstm.model.network import CharModel

    config = ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4)
    good = ckpt.save(tmp / "good.safetensors", ckpt.Checkpoint(config, vocab, CharModel(config).state_dict()))
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = json.loads(f.metadata()["charlstm"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(meta)
    save_file(tensors, str(path), metadata={"charlstm": json.dumps(meta)})


def _gru_checkpoint(path: Path, tmp: Path) -> None:
    from charlstm.model.network import CharModel

    vocab = Vocab.from_text("abc\n")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, cell="gru")
    ckpt.save(path, ckpt.Checkpoint(config, vocab, CharModel(config).state_dict()))


CORPUS_ROWS = [
    ("missing path", None, ["train", "nope.txt"], "nope.txt: no such file or directory"),
    ("dir without matches", "dir", ["train", "d", "--glob", "*.rs"], "no files matching '*.rs'"),
    ("empty file", b"", ["train", "f"], "corpus is empty"),
    ("whitespace only", b"  \n\t\n   \n", ["train", "f"], "only whitespace"),
    ("shorter than two sequences", b"To be, or not to be.\n", ["train", "f"], "corpus too short"),
    ("PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), ["train", "f"], "a PNG image, not text"),
    ("gzip", b"\x1f\x8b\x08\x00" + bytes(40), ["train", "f"], "gzip-compressed"),
    ("Latin-1", "Ça coûte très cher, señor.\n".encode("latin-1") * 20, ["train", "f"], "not valid utf-8 at byte offset 0"),
    ("UTF-16 with BOM", "hello world\n".encode("utf-16"), ["train", "f"], "looks like UTF-16"),
    ("seq-len 0", b"x" * 1000, ["train", "f", "--seq-len", "0"], "--seq-len"),
    ("negative size", b"x" * 1000, ["train", "f", "--hidden-size", "-3"], "--hidden-size"),
    ("val fraction 1.5", b"x" * 1000, ["train", "f", "--val-fraction", "1.5"], "--val-fraction"),
    ("bad duration", b"x" * 1000, ["train", "f", "--time", "soon"], "not a duration"),
]
CHECKPOINT_ROWS = [
    ("missing checkpoint", None, ["sample", "ck.safetensors"], "no such checkpoint"),
    ("empty checkpoint", b"", ["sample", "ck.safetensors"], "not a readable safetensors"),
    ("random bytes", bytes(random.Random(0).randrange(256) for _ in range(4096)), ["sample", "ck.safetensors"],
     "not a readable safetensors"),
    ("pickle renamed", "pickle", ["sample", "ck.safetensors"], "not a readable safetensors"),
    ("truncated", "truncated", ["sample", "ck.safetensors"], "not a readable safetensors"),
    ("vocab size lies", lambda m: m["config"].update(vocab_size=99), ["sample", "ck.safetensors"],
     "vocabulary has 4 characters but the model expects 99"),
    ("unknown format", lambda m: m.update(format=7), ["sample", "ck.safetensors"], "format 7, this charlstm reads format 1"),
    ("missing keys", lambda m: m.pop("config"), ["sample", "ck.safetensors"], "invalid model config"),
    ("shapes lie", lambda m: m["config"].update(hidden_size=16), ["sample", "ck.safetensors"], "has shape"),
    ("GRU asked for LSTM gates", "gru", ["inspect", "ck.safetensors", "--vector", "forget", "--text", "abc"],
     "choose from reset, update, candidate, hidden"),
]
SAMPLE_ROWS = [
    ("unseen prime", ["--prime", "xyz世"], "never saw: 'x', 'y', 'z', '世'"),
    ("negative temperature", ["--temperature", "-1"], "--temperature"),
    ("top-p above 1", ["--top-p", "1.5"], "--top-p"),
    ("top-p zero", ["--top-p", "0"], "--top-p"),
    ("top-k zero", ["--top-k", "0"], "--top-k"),
]


@pytest.mark.parametrize("name, content, args, message",
                         CORPUS_ROWS + CHECKPOINT_ROWS + [(n, "model", ["sample", "run", *a], m) for n, a, m in SAMPLE_ROWS]
                         + [("neuron out of range", "model", ["inspect", "run", "--neuron", "16", "--text", "ab"],
                             "neuron 16 out of range: layer 1 has neurons 0 to 15"),
                            ("layer out of range", "model", ["inspect", "run", "--layer", "2", "--text", "ab"],
                             "layer 2 out of range: this model has layers 1 to 1")],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_bad_input_matrix(tmp_path, monkeypatch, name, content, args, message):
    monkeypatch.chdir(tmp_path)
    if isinstance(content, bytes):
        Path("f").write_bytes(content)
        Path("ck.safetensors").write_bytes(content)
    elif content == "dir":
        Path("d").mkdir()
        Path("d/a.py").write_text("print(1)\n")
    elif content == "pickle":
        torch.save({"weights": torch.zeros(3)}, "ck.safetensors")
    elif content == "truncated":
        _gru_checkpoint(tmp_path / "full.safetensors", tmp_path)
        Path("ck.safetensors").write_bytes(Path("full.safetensors").read_bytes()[:300])
    elif content == "gru":
        _gru_checkpoint(tmp_path / "ck.safetensors", tmp_path)
    elif callable(content):
        _lying_checkpoint(tmp_path / "ck.safetensors", tmp_path, content)
    elif content == "model":
        Path("c.txt").write_text("abcab\nbca\n" * 40)
        made = CliRunner().invoke(main, ["train", "c.txt", "--out", "run", "--hidden-size", "16", "--num-layers", "1",
                                         "--seq-len", "16", "--max-steps", "2", "--preview", "0"])
        assert made.exit_code == 0, made.output
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0, result.output
    assert message in result.output, result.output
    assert_no_traceback(result)
    assert len([l for l in result.output.splitlines() if l.strip()]) <= 3  # click usage errors add usage and a hint
    for path, mtime in before.items():  # nothing overwritten
        assert path.stat().st_mtime_ns == mtime, path


def test_a_long_single_line_trains(tmp_path):
    line = ("lorem ipsum dolor sit amet " * 200_000)[:5_000_000]  # 5 MB, no newline anywhere
    (tmp_path / "line.txt").write_text(line)
    result = CliRunner().invoke(main, ["train", str(tmp_path / "line.txt"), "--out", str(tmp_path / "run"),
                                       "--hidden-size", "16", "--max-steps", "2", "--preview", "0"])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_encode_decode_round_trips_any_unicode(text):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert int(ids.max()) < len(vocab)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=50), st.integers(200, 3000), st.integers(1, 16), st.integers(1, 40),
       st.integers(0, 10))
def test_batches_are_contiguous_slices_of_the_text(alphabet, n, batch, seq_len, step):
    text = (alphabet * (n // len(alphabet) + 1))[:n]
    if n < 2 * seq_len + 1:
        return
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    layout = fit_layout(n, batch, seq_len, seed=3)
    x, y = stream_batch(ids, layout, step)
    assert x.shape == y.shape == (layout.batch_size, seq_len)
    for b in range(layout.batch_size):
        row = vocab.decode(x[b]) + vocab.decode(y[b][-1:])
        assert row in text and vocab.decode(y[b]) == row[1:]
    epoch, k = layout.position(step)
    if k + 1 < layout.batches_per_epoch:
        nxt, _ = stream_batch(ids, layout, step + 1)
        np.testing.assert_array_equal(nxt[:, 0], y[:, -1])
