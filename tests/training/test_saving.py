"""Saving a checkpoint that cannot be written (training/checkpoints.py's writer, files.write_file): an
unwritable run folder, a full disk or a file-size limit while saving is one line on stderr and exit 1,
with the previous checkpoint intact byte for byte and no temp file left."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from charlstm.config import ModelConfig, TrainConfig
from charlstm.errors import TrainingError
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from conftest import UNTIL_STOPPED, error_line, start_charlstm, temp_files


def _wait_for_first_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 90) -> bytes:
    """The bytes of the step-0 checkpoint, once it is whole (renamed into place, no temp file left)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run / ckpt.LATEST).is_file() and not temp_files(run):
            time.sleep(0.3)  # the first steps run; nothing is written until a stop is asked for
            return (run / ckpt.LATEST).read_bytes()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no checkpoint appeared: {proc.communicate()[1][-2000:]}")


class _Unwritable:
    """Make a folder refuse new files: chmod for a normal user; for root (whom modes do not stop)
    the immutable attribute, where the file system has one."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.mode, self.immutable = folder, folder.stat().st_mode, False

    def __enter__(self):
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(self.folder)], capture_output=True, text=True) \
                if shutil.which("chattr") else None
            if done is None or done.returncode != 0:
                pytest.skip("running as root and the folder cannot be made immutable (chattr +i)")
            self.immutable = True
        else:
            self.folder.chmod(0o555)
        return self

    def __exit__(self, *exc) -> None:
        if self.immutable:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        self.folder.chmod(self.mode)


def _stop_and_expect_a_failed_save(proc: subprocess.Popen, run: Path, first: bytes, reason: str) -> None:
    """SIGTERM asks for a save; it fails: one line, exit 1, the previous checkpoint intact, no temp."""
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-3000:]
    assert error_line(stderr) == (f"Error: could not write {run / ckpt.LATEST} ({reason}); "
                                  "the previous checkpoint there is intact")
    assert (run / ckpt.LATEST).read_bytes() == first
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 0
    assert not temp_files(run)


@pytest.fixture()
def small_disk(tmp_path):
    """A 2 MB tmpfs of its own (root can mount one), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the file-size-limit test covers the same path")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                continue
    assert os.statvfs(disk).f_bavail == 0


@pytest.mark.parametrize("failure", ["unwritable folder", "full disk", "file size limit"])
def test_a_failed_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, corpus, request, failure):
    """A real training process is asked to save (SIGTERM) when its checkpoint cannot be written: its run
    folder made unwritable, its disk (a tmpfs of 2 MB) filled, or its file-size limit (ulimit -f, the
    same path as a full disk without root) lowered."""
    where = request.getfixturevalue("small_disk") if failure == "full disk" else tmp_path
    run = where / "run"
    proc = start_charlstm("train", corpus, "--out", run, *UNTIL_STOPPED)
    try:
        first = _wait_for_first_checkpoint(run, proc)
        if failure == "unwritable folder":
            with _Unwritable(run):
                reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
                _stop_and_expect_a_failed_save(proc, run, first, reason)
        elif failure == "full disk":
            _fill(where)
            _stop_and_expect_a_failed_save(proc, run, first, "No space left on device")
        else:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1024, 1024))  # Python ignores SIGXFSZ: EFBIG
            _stop_and_expect_a_failed_save(proc, run, first, "File too large")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, shakespeare_text, monkeypatch):
    """The disk fills while a checkpoint is flushed (fsync fails) after earlier ones reached it."""
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
