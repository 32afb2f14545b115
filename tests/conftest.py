"""Shared fixtures: real text from the bundled corpora and one tiny model trained for real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"

#: A model small enough to train in a few seconds on two CPU cores, large enough to learn something.
TINY = ["--hidden-size", "48", "--num-layers", "2", "--embedding-size", "16", "--batch-size", "16",
        "--seq-len", "48", "--preview", "40", "--lr", "1e-2"]


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    """The first 60k characters of the bundled default corpus."""
    return (CORPORA / "shakespeare.txt").read_text(encoding="utf-8")[:60_000]


@pytest.fixture(scope="session")
def chinese_text() -> str:
    return (CORPORA / "chinese-poetry.txt").read_text(encoding="utf-8")[:12_000]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, shakespeare_text) -> Path:
    """A real run directory: tiny LSTM trained on real Shakespeare through the real CLI."""
    work = tmp_path_factory.mktemp("run")
    corpus = work / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = work / "checkpoints" / "plays"
    result = CliRunner().invoke(main, ["train", str(corpus), "--out", str(out), "--max-steps", "150",
                                       "--eval-every", "50", "--log-every", "10", *TINY])
    assert result.exit_code == 0, result.output
    return out


def assert_no_traceback(result) -> None:
    """The command ended by exiting (0, or an error it reported), not by an exception a user would
    see as a traceback. CliRunner catches every exception, so `"Traceback" not in result.output` is
    always true; what would have been a traceback is a `result.exception` that is not a SystemExit."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")


def run_cli(*args: str, input: str | bytes | None = None):
    """Invoke the CLI in-process with stdout and stderr kept apart."""
    runner = CliRunner()
    return runner.invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture(scope="session")
def quote_run(tmp_path_factory) -> Path:
    """A 1×16 LSTM trained for real for 80 steps (a few seconds) on lines where quotes decide the
    case of letters (test_inspect_find.quoted_lines): its quote unit is there to be found."""
    import torch

    from charlstm.config import ModelConfig, TrainConfig
    from charlstm.training.loop import train
    from test_inspect_find import quoted_lines

    out = tmp_path_factory.mktemp("quotes") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains several times faster on one thread of a busy machine
    try:
        train(quoted_lines(1500, seed=0), out, ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8, num_layers=1),
              TrainConfig(batch_size=16, seq_len=48, max_steps=80, time_budget=None, eval_every=80, log_every=10,
                          preview_chars=0, learning_rate=1e-2, warmup_steps=5))
    finally:
        torch.set_num_threads(threads)
    return out


_ESCAPE = re.compile(r"\\(n|t|r|\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unescape_text(field: str) -> str:
    """A TSV text field read back: the inverse of views.output.escape_text."""
    def one(match: re.Match) -> str:
        code = match.group(1)
        return {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(one, field)
