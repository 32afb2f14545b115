"""training/distributed.py: torchrun on CPU with gloo: 2 ranks × batch B train exactly like 1 process
× batch 2B, and resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlstm.runs import checkpoint as ckpt
from conftest import ROOT, losses, metrics

MODEL = ["--hidden-size", "32", "--embedding-size", "8", "--seq-len", "32", "--eval-every", "4", "--log-every", "1",
         "--preview", "0", "--lr", "5e-3", "--seed", "3"]


def _run(args: list[str], ranks: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if ranks == 1:
        cmd = [sys.executable, "-m", "charlstm", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               "-m", "charlstm", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_ranks_equal_one_process_with_twice_the_batch_and_resume(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:40_000], encoding="utf-8")
    one, two = tmp_path / "one", tmp_path / "two"
    # 6 steps, then --resume to 12, on both sides: the resume path is exercised under torchrun too.
    for ranks, out, batch in ((1, one, "8"), (2, two, "4")):
        _run(["train", str(corpus), "--out", str(out), "--batch-size", batch, "--max-steps", "6", *MODEL], ranks)
        _run(["train", "--resume", "--out", str(out), "--max-steps", "12"], ranks)

    a, b = losses(one), losses(two)
    assert sorted(a) == sorted(b) == list(range(1, 13))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4), step
    ca, cb = ckpt.load(one / ckpt.LATEST), ckpt.load(two / ckpt.LATEST)
    assert ca.train["step"] == cb.train["step"] == 12
    assert ca.train["layout"]["batch_size"] == cb.train["layout"]["batch_size"] == 8
    for name, tensor in ca.model_state.items():
        torch.testing.assert_close(cb.model_state[name], tensor, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cb.tensors["state.0"], ca.tensors["state.0"], rtol=1e-4, atol=1e-5)
    # Rank 0 alone writes: the same files as the single process, and one log line per step and
    # evaluation (a second writer would add its own lines to metrics.jsonl, or files of its own).
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert _log_keys(two) == _log_keys(one)
    assert [step for step, kind in _log_keys(two) if kind == "train"] == list(range(1, 13))


def _log_keys(run: Path) -> list[tuple[int, str]]:
    """(step, what) of every line of metrics.jsonl, in order, duplicates kept."""
    return [(m["step"], "train" if "train_loss" in m else "eval" if "val_bpc" in m else "other") for m in metrics(run)]
