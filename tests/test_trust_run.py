"""Issue 15, class 2: the run directory is owned. A fresh run refuses a folder of someone else's
files, --resume refuses one without `latest` but with other files, nothing is written through a
symbolic link, the refusal and the lock come before any preparation, a killed preparation leaves
no temp file, user-named outputs never replace a checkpoint or a file of another kind, and a
directory corpus leaves charlstm's own output out. Real CLI, real tiny models on real text."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm.cli import main

from conftest import TINY, assert_no_traceback

ROOT = Path(__file__).resolve().parent.parent
QUICK = [*TINY, "--max-steps", "3", "--eval-every", "3", "--log-every", "1"]


def _cli(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        result = runner.invoke(main, list(args))
    else:
        old = os.getcwd()
        os.chdir(cwd)
        try:
            result = runner.invoke(main, list(args))
        finally:
            os.chdir(old)
    assert_no_traceback(result)
    return result


def _sub(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "charlstm", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def corpus(tmp_path, shakespeare_text) -> Path:
    path = tmp_path / "plays.txt"
    path.write_text(shakespeare_text[:20_000], encoding="utf-8")
    return path


@pytest.fixture
def small_run(tmp_path, corpus) -> Path:
    out = tmp_path / "run"
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------ (b) a fresh run owns its folder


@pytest.mark.parametrize("name, content", [("samples.txt", b"my own samples\n"), ("metrics.jsonl", b'{"mine": 1}\n'),
                                           ("best.safetensors", b"my best model"), ("notes.txt", b"notes\n")])
def test_fresh_run_refuses_a_folder_holding_the_users_files(tmp_path, corpus, name, content):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_bytes(content)
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    _one_error_line(result, str(out), "not empty", name, "--out")
    assert (out / name).read_bytes() == content
    assert sorted(os.listdir(out)) == [name]  # no lock, no id cache, nothing else was written


def test_resume_refuses_a_folder_with_only_best(tmp_path, corpus):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "best.safetensors").write_bytes(b"precious")
    result = _cli("train", str(corpus), "--resume", "--out", str(out), *QUICK)
    _one_error_line(result, "nothing to resume", "best.safetensors", "not starting from scratch")
    assert "starting from scratch" not in result.output.replace("not starting from scratch", "")
    assert (out / "best.safetensors").read_bytes() == b"precious"
    assert sorted(os.listdir(out)) == ["best.safetensors"]


def test_resume_into_an_empty_folder_still_starts_from_scratch(tmp_path, corpus):
    out = tmp_path / "empty"
    out.mkdir()
    result = _cli("train", str(corpus), "--resume", "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert "starting from scratch" in result.output and (out / "latest.safetensors").is_file()


def test_a_folder_prepared_by_charlstm_prepare_is_accepted(tmp_path, corpus):
    out = tmp_path / "prepared"
    assert _cli("prepare", str(corpus), "--out", str(out)).exit_code == 0
    cache = _digest(out / "corpus.ids.npy")
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert _digest(out / "corpus.ids.npy") == cache and (out / "latest.safetensors").is_file()


def test_a_forged_corpus_json_is_not_taken_for_a_prepared_corpus(tmp_path, corpus):
    out = tmp_path / "forged"
    out.mkdir()
    (out / "corpus.json").write_text('{"my": "settings"}')
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    _one_error_line(result, "not empty", "corpus.json")
    assert (out / "corpus.json").read_text() == '{"my": "settings"}'


def test_default_out_skips_a_folder_of_the_users_files(tmp_path, corpus):
    taken = tmp_path / "checkpoints" / "plays"
    taken.mkdir(parents=True)
    (taken / "samples.txt").write_text("mine")
    result = _cli("train", str(corpus), *QUICK, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (taken / "samples.txt").read_text() == "mine" and sorted(os.listdir(taken)) == ["samples.txt"]
    assert (tmp_path / "checkpoints" / "plays-2" / "latest.safetensors").is_file()


# ------------------------------------------------------------------ (a) no write follows a link


@pytest.mark.parametrize("name", [".lock", "metrics.jsonl", "corpus.json", "samples.txt", "latest.safetensors",
                                  "corpus.ids.npy"])
def test_a_run_file_planted_as_a_symlink_is_refused_and_its_target_untouched(tmp_path, corpus, name):
    target = tmp_path / "victim.txt"
    target.write_text("do not touch\n")
    out = tmp_path / "shared"
    out.mkdir()
    (out / name).symlink_to(target)
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    _one_error_line(result, "symbolic link", name)
    assert target.read_text() == "do not touch\n"
    assert (out / name).is_symlink() and sorted(os.listdir(out)) == [name]


def test_a_symlink_planted_in_a_trained_run_is_refused_on_resume(small_run, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("do not touch\n")
    (small_run / "metrics.jsonl").unlink()
    (small_run / "metrics.jsonl").symlink_to(target)
    latest = _digest(small_run / "latest.safetensors")
    result = _cli("train", "--resume", "--out", str(small_run), "--max-steps", "6")
    _one_error_line(result, "symbolic link", "metrics.jsonl")
    assert target.read_text() == "do not touch\n" and _digest(small_run / "latest.safetensors") == latest


def test_a_run_folder_that_is_a_symlink_is_refused(tmp_path, corpus):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    result = _cli("train", str(corpus), "--out", str(link), *QUICK)
    _one_error_line(result, str(link), "symbolic link")
    assert os.listdir(real) == []
    prepared = _cli("prepare", str(corpus), "--out", str(link))
    _one_error_line(prepared, "symbolic link")
    assert os.listdir(real) == []


# ------------------------------------------------------------------ (c) refusal and lock before preparation


def test_a_refused_train_or_prepare_leaves_the_runs_id_cache_as_it_was(small_run, tmp_path, chinese_text):
    other = tmp_path / "poems.txt"
    other.write_text(chinese_text[:5000], encoding="utf-8")
    before = {name: _digest(small_run / name) for name in ("corpus.ids.npy", "corpus.json", "latest.safetensors")}

    fresh = _cli("train", str(other), "--out", str(small_run), *QUICK)
    _one_error_line(fresh, "already holds a run", "--resume")
    prepared = _cli("prepare", str(other), "--out", str(small_run))
    _one_error_line(prepared, "already holds a run")
    resumed = _cli("train", str(other), "--resume", "--out", str(small_run), "--max-steps", "6")
    _one_error_line(resumed, "different character set")

    assert {name: _digest(small_run / name) for name in before} == before


def test_prepare_takes_the_runs_lock(tmp_path, corpus):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(out / '.lock')!r}, os.O_CREAT | os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
        "print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done = _sub("prepare", str(corpus), "--out", str(out))
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: ") and "being trained by another process" in done.stderr
        assert f"pid {holder.pid}" in done.stderr and "Traceback" not in done.stderr
        assert sorted(os.listdir(out)) == [".lock"]  # no id cache written beside a live run
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------ (d) no temp file outlives a killed preparation


def test_sigterm_during_preparation_removes_the_temp_file(tmp_path, shakespeare_text):
    big = tmp_path / "big.txt"
    big.write_text(shakespeare_text * (40_000_000 // len(shakespeare_text)), encoding="utf-8")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "prepare", str(big), "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    result = _cli("train", str(corpus), "--out", str(out), *QUICK)
    assert result.exit_code == 0, result.output
    assert not any(path.exists() for path in stale)
    assert [name for name in os.listdir(out) if name.endswith(".tmp")] == []


# ------------------------------------------------------------------ (e) user-named outputs


def test_inspect_html_never_replaces_a_checkpoint_a_text_or_a_link(small_run, tmp_path):
    latest = _digest(small_run / "latest.safetensors")
    result = _cli("inspect", str(small_run), "--html", str(small_run / "latest.safetensors"), "--length", "30")
    _one_error_line(result, "latest.safetensors", "not replaced")
    assert _digest(small_run / "latest.safetensors") == latest

    elsewhere = tmp_path / "model.safetensors"
    shutil.copyfile(small_run / "best.safetensors", elsewhere)  # a checkpoint outside any run folder
    _one_error_line(_cli("inspect", str(small_run), "--html", str(elsewhere), "--length", "30"), "not replaced")

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    _one_error_line(_cli("inspect", str(small_run), "--html", str(notes), "--length", "30"),
                    "not an HTML page charlstm wrote")
    assert notes.read_text() == "my notes\n"

    victim = tmp_path / "victim.html"
    victim.write_text("<html>mine</html>")
    link = tmp_path / "page.html"
    link.symlink_to(victim)
    _one_error_line(_cli("inspect", str(small_run), "--html", str(link), "--length", "30"), "symbolic link")
    assert victim.read_text() == "<html>mine</html>" and link.is_symlink()


def test_inspect_html_replaces_its_own_page(small_run, tmp_path):
    page = tmp_path / "page.html"
    for _ in range(2):
        result = _cli("inspect", str(small_run), "--html", str(page), "--length", "30")
        assert result.exit_code == 0, result.output
    assert '<meta name="generator" content="charlstm">' in page.read_text(encoding="utf-8")[:4096]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_corpus_out_never_replaces_a_checkpoint_a_page_or_a_link(small_run, tmp_path):
    best = _digest(small_run / "best.safetensors")
    _one_error_line(_cli("corpus", "counter", "--out", str(small_run / "best.safetensors"), "--count", "5"),
                    "not replaced")
    assert _digest(small_run / "best.safetensors") == best

    page = tmp_path / "page.html"
    assert _cli("inspect", str(small_run), "--html", str(page), "--length", "30").exit_code == 0
    before = page.read_bytes()
    _one_error_line(_cli("corpus", "counter", "--out", str(page), "--count", "5"), "not a plain-text file")
    assert page.read_bytes() == before

    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    _one_error_line(_cli("corpus", "counter", "--out", str(binary), "--count", "5"), "not a plain-text file")
    assert binary.read_bytes() == b"\x00\x01\x02" * 100

    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    link = tmp_path / "counter.txt"
    link.symlink_to(victim)
    _one_error_line(_cli("corpus", "counter", "--out", str(link), "--count", "5"), "symbolic link")
    assert victim.read_text() == "mine\n"


def test_corpus_out_replaces_a_text_file(tmp_path):
    out = tmp_path / "counter.txt"
    out.write_text("an older corpus\n")
    result = _cli("corpus", "counter", "--out", str(out), "--count", "5", "--seed", "1")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and all(set(line) <= set("aXb") for line in lines)


# ------------------------------------------------------------------ (f) the tool's own output is not corpus


def test_training_a_folder_twice_leaves_its_own_runs_out(tmp_path, shakespeare_text):
    project = tmp_path / "project"
    project.mkdir()
    (project / "plays.txt").write_text(shakespeare_text[:20_000], encoding="utf-8")
    first = _cli("train", ".", *QUICK, cwd=project)
    assert first.exit_code == 0, first.output
    for args in ((), ("--glob", "*.txt")):  # samples.txt of the first run matches *.txt
        again = _cli("train", ".", *args, *QUICK, cwd=project)
        assert again.exit_code == 0, again.output
        assert "left out charlstm's own output" in again.output and "charlstm run folder" in again.output
    runs = sorted((project / "checkpoints").iterdir())
    assert [r.name for r in runs] == ["plays", "plays-2", "plays-3"]
    for run in runs:  # each trained on plays.txt alone
        meta = json.loads((run / "corpus.json").read_text(encoding="utf-8"))
        assert meta["chars"] == 20_000 and meta["sources"] == [str((project / "plays.txt").resolve())]


def test_a_folder_of_only_charlstm_output_is_no_corpus(small_run):
    result = _cli("train", str(small_run), "--out", str(small_run.parent / "again"), *QUICK)
    _one_error_line(result, "no files matching", "left out 1 charlstm run folder")
    assert not (small_run.parent / "again").exists()
