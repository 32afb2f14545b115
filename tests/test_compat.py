"""Checkpoints written by an earlier charlstm (main at 57346d8) still load, sample, trace, score and
resume as they did: tests/compat/main-57346d8/record.py recorded what that code printed for them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from charlstm.runs.checkpoint import load
from conftest import run_cli

DATA = Path(__file__).resolve().parent / "compat" / "main-57346d8"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
TEXT = "To be, or not to be, that is the question:\nWhether"


def charlstm(*args: str) -> str:
    result = run_cli(*args, "--threads", "1")
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_close(found, expected, where="") -> None:
    """The same structure, every number within 1e-6 (the recorded JSON rounds them), paths aside."""
    if isinstance(expected, dict):
        assert set(found) == set(expected), where
        for key in expected:
            if key != "checkpoint":
                assert_close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(found) == len(expected), where
        for i, (a, b) in enumerate(zip(found, expected)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert found == pytest.approx(expected, abs=1e-6, nan_ok=True), where
    else:
        assert found == expected, where


@pytest.mark.parametrize("cell", sorted(EXPECTED))
def test_samples_traces_and_scores_as_before(cell):
    run, expected = str(DATA / f"run-{cell}"), EXPECTED[cell]
    assert charlstm("sample", run, "--temperature", "0.8", "--seed", "3", "--length", "150") == expected["sample"]
    assert charlstm("sample", run, "--temperature", "0", "--length", "150", "--prime", "ROMEO:") == expected["argmax"]
    traced = json.loads(charlstm("inspect", run, "--text", TEXT, "--layer", "all", "--vector", "all",
                                 "--neuron", "0,7,15", "--format", "json"))
    assert_close(traced, expected["trace"])
    scored = json.loads(charlstm("score", run, "--text", TEXT, "--format", "json"))
    yardsticks = scored.pop("yardsticks")     # beside the recorded figures: what a blind guess scores
    vocab_size = len(load(DATA / f"run-{cell}" / "latest.safetensors").vocab)
    assert yardsticks["vocab_size"] == vocab_size
    assert yardsticks["blind_guess_bits_per_char"] == pytest.approx(math.log2(vocab_size), abs=1e-6)
    assert_close(scored, expected["score"])


@pytest.mark.parametrize("cell", sorted(EXPECTED))
def test_resumes_as_before(cell, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(DATA / f"run-{cell}", run)
    charlstm("train", str(DATA / "corpus.txt"), "--resume", "--out", str(run), "--max-steps", "18")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = [{k: v for k, v in line.items() if k not in ("elapsed_s", "chars_per_s")}
               for line in lines if line["step"] > 12]
    assert resumed == EXPECTED[cell]["resumed"]
