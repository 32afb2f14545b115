"""Stopping a training run from outside: a kill -9 at any moment loses nothing but the steps since the
last checkpoint, Ctrl-C and SIGTERM finish the step, save and name the command that resumes, and a
second Ctrl-C stops at once without touching the last checkpoint."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from charlstm.runs import checkpoint as ckpt
from conftest import ENV, UNTIL_STOPPED, losses, run_cli, start_charlstm, temp_files

# A run small enough to be killed many times in a few seconds each; evaluation (and so a checkpoint
# write) every 3 steps, so many kills land during or near a write.
KILLED = ["--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-len", "32", "--preview", "0",
          "--lr", "5e-3", "--seed", "7", "--max-steps", "300", "--eval-every", "3", "--log-every", "1"]


def _logged(log: Path, *args) -> subprocess.Popen:
    """The CLI in a process whose stderr is appended to `log`, not to a pipe a long wait could fill (the
    progress bar writes to stderr; a full pipe would stall the trainer)."""
    with open(log, "a") as sink:
        return start_charlstm(*args, stdout=subprocess.DEVNULL, stderr=sink)


def test_sigkill_at_random_moments_loses_nothing(tmp_path, corpus):
    straight = tmp_path / "straight"
    done = start_charlstm("train", corpus, "--out", straight, *KILLED)
    assert done.wait(timeout=300) == 0, done.stderr.read()

    run, rng, kills, mid_write = tmp_path / "killed", random.Random(1234), 0, 0
    log = tmp_path / "killed.log"
    proc = _logged(log, "train", corpus, "--out", run, *KILLED)
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
        proc = _logged(log, "train", "--resume", "--out", run)
        if kills >= 10 and mid_write >= 3 and rng.random() < 0.3:
            break
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert kills >= 10
    assert mid_write >= 3, f"only {mid_write} of {kills} kills landed during a checkpoint write"

    assert losses(run) == losses(straight)  # every step, bit for bit
    a, b = ckpt.load(straight / ckpt.LATEST), ckpt.load(run / ckpt.LATEST)
    assert a.train["step"] == b.train["step"] == 300
    for name, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[name]), name
    assert not temp_files(run)


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


@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_and_sigterm_save_and_resume_finishes(tmp_path, corpus, sent, code):
    """A real process, a real signal: the step finishes, latest is saved, exit 130 (Ctrl-C) or 143
    (SIGTERM) with the command that resumes, and --resume carries on to the end."""
    out = tmp_path / "run"
    proc = start_charlstm("train", corpus, "--out", out, *UNTIL_STOPPED)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.05)
    time.sleep(1.5)
    proc.send_signal(sent)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    # the hint names charlstm the way it was run here (python -m charlstm), so it works when pasted
    assert "-m charlstm train --resume --out" in stderr and "Traceback" not in stderr
    step = ckpt.load(out / "latest.safetensors").train["step"]
    assert step > 0
    resumed = run_cli("train", "--resume", "--out", out, "--max-steps", step + 10)
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.load(out / "latest.safetensors").train["step"] == step + 10



# -------------------------------------------------------------------------------- a second Ctrl-C

#: Runs the real CLI with the two Ctrl-C of a user sent from inside the process at exact moments,
#: so where the second one lands is certain: during the update of a step ("step"), or inside the
#: checkpoint write that the first one asked for, after the temp file is written and before it is
#: renamed over latest ("write").
_TWO_CTRL_C = r"""
import os, signal, sys, time
from charlstm.cli import main
from charlstm.training import loop as training

mode = os.environ["CHARLSTM_TEST_SECOND_CTRL_C"]
real_step, real_replace = training.Trainer.step, os.replace

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the handler runs here (and raises here, the second time)

def step(self):
    if self.clock.steps == 5:
        out = sys.argv[sys.argv.index("--out") + 1]
        with open(os.path.join(out, "latest.safetensors"), "rb") as f:  # what must still be there at the end
            open(os.environ["CHARLSTM_TEST_LATEST_COPY"], "wb").write(f.read())
        ctrl_c()  # the first: finish this step, then save and exit 130
        if mode == "step":
            real_opt_step = self.optimizer.step
            def opt_step(*a, **k):  # between backward and the update of the weights
                ctrl_c()
                raise AssertionError("the second Ctrl-C did not stop the process")
            self.optimizer.step = opt_step
    return real_step(self)

replaced = []
def replace(src, dst, **kw):
    if str(dst).endswith("latest.safetensors"):
        replaced.append(dst)
        if mode == "write" and len(replaced) == 2:  # the save the first Ctrl-C asked for
            assert os.path.getsize(src) > 0
            ctrl_c()
            raise AssertionError("the second Ctrl-C did not stop the process")
    return real_replace(src, dst, **kw)

training.Trainer.step = step
os.replace = replace
sys.argv = ["charlstm", *sys.argv[1:]]
main()
"""


def _two_ctrl_c(tmp_path: Path, corpus: Path, mode: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """`charlstm train` under the harness: (the process, its run folder, the copy of latest made at the
    first Ctrl-C). Mode "step" or "write": where the second Ctrl-C lands; "none": there is no second."""
    run = tmp_path / "run"
    script = tmp_path / "two_ctrl_c.py"
    script.write_text(_TWO_CTRL_C)
    copy = tmp_path / "latest-at-the-first-ctrl-c.safetensors"  # the harness copies it there
    proc = subprocess.run([sys.executable, str(script), "train", str(corpus), "--out", str(run), *UNTIL_STOPPED],
                          env={**ENV, "CHARLSTM_TEST_SECOND_CTRL_C": mode, "CHARLSTM_TEST_LATEST_COPY": str(copy)},
                          capture_output=True, text=True, timeout=300)
    return proc, run, copy


@pytest.mark.parametrize("mode", ["step", "write"])
def test_a_second_ctrl_c_stops_at_once_and_leaves_the_checkpoint_untouched(tmp_path, corpus, mode):
    proc, run, copy = _two_ctrl_c(tmp_path, corpus, mode)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert (run / ckpt.LATEST).read_bytes() == copy.read_bytes()  # byte for byte as it was
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Resume with" not in proc.stderr and "Stopped at step" not in proc.stderr  # nothing was saved
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 0  # the last checkpoint is the one of step 0
    assert not (run / ckpt.BEST).exists() and not temp_files(run)
    # and it resumes: nothing is lost but the steps since that checkpoint
    resumed = run_cli("train", "--resume", "--out", run, "--max-steps", "3")
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 3


def test_a_single_ctrl_c_in_the_same_harness_saves(tmp_path, corpus):
    """The harness above is able to see a save: with one Ctrl-C, latest moves past step 0."""
    proc, run, copy = _two_ctrl_c(tmp_path, corpus, "none")
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Resume with: charlstm train --resume" in proc.stderr
    assert (run / ckpt.LATEST).read_bytes() != copy.read_bytes()
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 6
