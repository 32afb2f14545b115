"""runs/folder.py: a run folder is owned. A fresh run starts only in a new or empty folder (or one
`charlstm prepare` made for it) and refuses one holding anything else; `--resume` needs `latest`; the
default folder and the most recent run are found; nothing is written through a symbolic link; one
process per folder (an flock the kernel drops when its holder dies), checked before anything is read;
no temp file outlives a killed writer; a lock or a checkpoint that is not a regular file is named
in one line, and never waited on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from charlstm.errors import CheckpointError
from charlstm.runs import checkpoint as ckpt
from conftest import (
    ENV,
    KINDS,
    QUICK,
    TINY,
    charlstm_process,
    digest,
    error_line,
    plant,
    refused,
    run_cli,
    start_charlstm,
    within,
)



# ------------------------------------------------------------------ a fresh run owns its folder


@pytest.mark.parametrize("name, content", [("samples.txt", b"my own samples\n"), ("metrics.jsonl", b'{"mine": 1}\n'),
                                           ("best.safetensors", b"my best model"), ("notes.txt", b"notes\n")])
def test_fresh_run_refuses_a_folder_holding_the_users_files(tmp_path, corpus, name, content):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_bytes(content)
    result = run_cli("train", str(corpus), "--out", str(out), *QUICK)
    refused(result, str(out), "not empty", name, "--out")
    assert (out / name).read_bytes() == content
    assert sorted(os.listdir(out)) == [name]  # no lock, no id cache, nothing else was written


def test_resume_refuses_a_folder_with_only_best(tmp_path, corpus):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "best.safetensors").write_bytes(b"precious")
    result = run_cli("train", str(corpus), "--resume", "--out", str(out), *QUICK)
    refused(result, "nothing to resume", "best.safetensors", "not starting from scratch")
    assert "starting from scratch" not in result.output.replace("not starting from scratch", "")
    assert (out / "best.safetensors").read_bytes() == b"precious"
    assert sorted(os.listdir(out)) == ["best.safetensors"]


def test_resume_into_an_empty_folder_still_starts_from_scratch(tmp_path, corpus):
    out = tmp_path / "empty"
    out.mkdir()
    result = run_cli("train", str(corpus), "--resume", "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert "starting from scratch" in result.output and (out / "latest.safetensors").is_file()


def test_a_folder_prepared_by_charlstm_prepare_is_accepted(tmp_path, corpus):
    out = tmp_path / "prepared"
    assert run_cli("prepare", str(corpus), "--out", str(out)).exit_code == 0
    cache = digest(out / "corpus.ids.npy")
    result = run_cli("train", str(corpus), "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert digest(out / "corpus.ids.npy") == cache and (out / "latest.safetensors").is_file()


def test_a_forged_corpus_json_is_not_taken_for_a_prepared_corpus(tmp_path, corpus):
    out = tmp_path / "forged"
    out.mkdir()
    (out / "corpus.json").write_text('{"my": "settings"}')
    result = run_cli("train", str(corpus), "--out", str(out), *QUICK)
    refused(result, "not empty", "corpus.json")
    assert (out / "corpus.json").read_text() == '{"my": "settings"}'


def test_default_out_skips_a_folder_of_the_users_files(tmp_path, monkeypatch, corpus):
    monkeypatch.chdir(tmp_path)
    taken = tmp_path / "checkpoints" / "plays"
    taken.mkdir(parents=True)
    (taken / "samples.txt").write_text("mine")
    result = run_cli("train", corpus, *QUICK)
    assert result.exit_code == 0, result.output
    assert (taken / "samples.txt").read_text() == "mine" and sorted(os.listdir(taken)) == ["samples.txt"]
    assert (tmp_path / "checkpoints" / "plays-2" / "latest.safetensors").is_file()


def test_sample_defaults_to_the_most_recent_run(tmp_path, shakespeare_text, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.txt").write_text(shakespeare_text[:8000], encoding="utf-8")
    result = run_cli("train", "tiny.txt", "--max-steps", "5", "--eval-every", "5", *TINY)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "checkpoints" / "tiny" / "best.safetensors").is_file()
    second = run_cli("train", "tiny.txt", "--max-steps", "5", "--eval-every", "5", *TINY)
    assert second.exit_code == 0 and (tmp_path / "checkpoints" / "tiny-2" / "latest.safetensors").is_file()
    sample = run_cli("sample", "--length", "30", "--seed", "1")
    assert sample.exit_code == 0 and "tiny-2" in sample.stderr


def _checkpoint() -> ckpt.Checkpoint:
    from charlstm.config import ModelConfig
    from charlstm.data.vocab import Vocab
    from charlstm.model.network import CharModel

    vocab = Vocab.from_text("abc\n")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4)
    return ckpt.Checkpoint(config, vocab, CharModel(config).state_dict())


def test_resolve_picks_best_then_latest_then_most_recent(tmp_path):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    ckpt.save(run_a / "latest.safetensors", _checkpoint())
    ckpt.save(run_b / "latest.safetensors", _checkpoint())
    ckpt.save(run_b / "best.safetensors", _checkpoint())
    assert ckpt.resolve(run_a) == run_a / "latest.safetensors"
    assert ckpt.resolve(run_b) == run_b / "best.safetensors"
    assert ckpt.resolve(None, root=tmp_path).parent == run_b
    with pytest.raises(CheckpointError, match="no trained model"):
        ckpt.resolve(None, root=tmp_path / "nothing")


# ------------------------------------------------------------------ no write follows a link


@pytest.mark.parametrize("name", [".lock", "metrics.jsonl", "corpus.json", "samples.txt", "latest.safetensors",
                                  "corpus.ids.npy"])
def test_a_run_file_planted_as_a_symlink_is_refused_and_its_target_untouched(tmp_path, corpus, name):
    target = tmp_path / "victim.txt"
    target.write_text("do not touch\n")
    out = tmp_path / "shared"
    out.mkdir()
    (out / name).symlink_to(target)
    result = run_cli("train", str(corpus), "--out", str(out), *QUICK)
    refused(result, "symbolic link", name)
    assert target.read_text() == "do not touch\n"
    assert (out / name).is_symlink() and sorted(os.listdir(out)) == [name]


def test_a_symlink_planted_in_a_trained_run_is_refused_on_resume(small_run, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("do not touch\n")
    (small_run / "metrics.jsonl").unlink()
    (small_run / "metrics.jsonl").symlink_to(target)
    latest = digest(small_run / "latest.safetensors")
    result = run_cli("train", "--resume", "--out", str(small_run), "--max-steps", "6")
    refused(result, "symbolic link", "metrics.jsonl")
    assert target.read_text() == "do not touch\n" and digest(small_run / "latest.safetensors") == latest


def test_a_run_folder_that_is_a_symlink_is_refused(tmp_path, corpus):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    result = run_cli("train", str(corpus), "--out", str(link), *QUICK)
    refused(result, str(link), "symbolic link")
    assert os.listdir(real) == []
    prepared = run_cli("prepare", str(corpus), "--out", str(link))
    refused(prepared, "symbolic link")
    assert os.listdir(real) == []


# ------------------------------------------------------------------ one process per folder, checked first


#: A run that trains until it is stopped, writing nothing after its first checkpoint.
FOREVER = ["--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-len", "32", "--preview", "0",
           "--lr", "5e-3", "--seed", "7", "--max-steps", "100000", "--eval-every", "100000"]


def test_a_refused_train_or_prepare_leaves_the_runs_id_cache_as_it_was(small_run, tmp_path, chinese_text):
    other = tmp_path / "poems.txt"
    other.write_text(chinese_text[:5000], encoding="utf-8")
    before = {name: digest(small_run / name) for name in ("corpus.ids.npy", "corpus.json", "latest.safetensors")}

    fresh = run_cli("train", str(other), "--out", str(small_run), *QUICK)
    refused(fresh, "already holds a run", "--resume")
    prepared = run_cli("prepare", str(other), "--out", str(small_run))
    refused(prepared, "already holds a run")
    resumed = run_cli("train", str(other), "--resume", "--out", str(small_run), "--max-steps", "6")
    refused(resumed, "different character set")

    assert {name: digest(small_run / name) for name in before} == before


def test_the_lock_is_checked_before_anything_else(tmp_path, corpus):
    """A folder whose lock another process holds, as a run that is starting holds it before its first
    checkpoint: `train --resume` names that process (not a missing checkpoint) and `prepare` writes no
    id cache beside it; once the holder dies the kernel drops the lock and the plain answer comes back."""
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(out / '.lock')!r}, os.O_CREAT | os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
        "print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = run_cli("train", "--resume", "--out", out, "--max-steps", "5")
        assert busy.exit_code == 1
        assert busy.stderr.strip() == (f"Error: {out} is being trained by another process (pid {holder.pid}); "
                                       "wait for it to finish or pass another --out")
        done = charlstm_process("prepare", corpus, "--out", out, env={**ENV, "OMP_NUM_THREADS": "1"}, timeout=120)
        assert done.returncode == 1, done.stderr
        assert error_line(done.stderr) == busy.stderr.strip()
        assert sorted(os.listdir(out)) == [".lock"]  # no id cache written beside a live run
    finally:
        holder.kill()
        holder.wait()
    free = run_cli("train", "--resume", "--out", out, "--max-steps", "5")
    assert free.exit_code == 1 and "nothing to resume" in free.stderr   # lock released: the plain message


def test_second_process_on_the_same_run_is_refused_until_the_first_dies(tmp_path, corpus):
    run = tmp_path / "run"
    first = start_charlstm("train", corpus, "--out", run, *FOREVER)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.05)
    second = run_cli("train", "--resume", "--out", run, "--max-steps", "5")
    assert second.exit_code == 1
    assert f"being trained by another process (pid {first.pid})" in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = run_cli("train", "--resume", "--out", run, "--max-steps", "3")
    assert third.exit_code == 0, third.output  # the lock died with its holder


# ------------------------------------------------------------------ no temp file outlives a killed writer


def test_sigterm_during_preparation_removes_the_temp_file(tmp_path, shakespeare_text):
    big = tmp_path / "big.txt"
    big.write_text(shakespeare_text * (40_000_000 // len(shakespeare_text)), encoding="utf-8")
    out = tmp_path / "run"
    proc = start_charlstm("prepare", big, "--out", out, env={**ENV, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(name.endswith(".tmp") for name in os.listdir(out)):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "preparation ended before the id cache was being written"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated while preparing" in err and "Traceback" not in err
    assert not out.exists()  # no temp file, no id cache, and the folder the command made is gone with its lock


def test_stale_temp_files_of_a_killed_prepare_are_removed_at_the_next_start(tmp_path, corpus):
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".corpus.ids.npy.4242-deadbeef.tmp", out / ".corpus.json.4242-deadbeef.tmp",
             out / ".latest.safetensors.4242-cafe.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 1000)
    result = run_cli("train", str(corpus), "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert not any(path.exists() for path in stale)
    assert [name for name in os.listdir(out) if name.endswith(".tmp")] == []


# ------------------------------------------------------------------ a lock of another kind


def _lock_said(lock, kind: str) -> str:
    """What a refusal says of a lock of `kind` (the run's files are never read through a link)."""
    if kind == "dangling link" or lock.is_symlink():
        return "is a symbolic link"
    return f"{lock}: not a regular file ({KINDS[kind]})"


@pytest.mark.parametrize("kind", KINDS)
def test_a_lock_of_another_kind_is_named_by_train_prepare_and_resume(small_run, corpus, tmp_path, kind):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    lock = plant(fresh / ".lock", kind)
    plant(small_run / ".lock", kind)
    before = {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file() and not p.is_symlink()}
    with within(60):
        refused(run_cli("train", corpus, "--out", fresh, *QUICK), _lock_said(lock, kind))
        refused(run_cli("prepare", corpus, "--out", fresh), _lock_said(lock, kind))
        refused(run_cli("train", "--resume", "--out", small_run, "--max-steps", "6"),
                _lock_said(small_run / ".lock", kind))
        # nothing to resume there, and no process could hold such a lock: said without waiting on it
        refused(run_cli("train", "--resume", "--out", fresh), "nothing to resume")
    assert os.listdir(fresh) == [".lock"]
    assert {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file() and not p.is_symlink()} == before


@pytest.mark.parametrize("kind", KINDS)
def test_a_latest_checkpoint_of_another_kind_is_named_on_resume(small_run, kind):
    latest = plant(small_run / "latest.safetensors", kind)
    with within(60):
        line = refused(run_cli("train", "--resume", "--out", small_run, "--max-steps", "6"))
    assert f"{latest}: not a regular file" in line or (kind == "dangling link" and "symbolic link" in line), line
