"""What the tests share: real text from the bundled corpora, tiny models trained for real (once per
session), and the helpers every room's tests use to drive the command line and read a run back.

The tests are grouped as the package is: tests/ROOM/ holds the tests of charlstm/ROOM/ (model, data,
runs, training, generation, inspection, scoring, views, probes, cli); tests/ itself holds those of the
top-level modules (config, errors, files, runtime) and of the whole (layout, CI, docs, compatibility).
Test files import from here with `from conftest import …`; tests/chromium.py drives a real browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
#: The environment of a charlstm run in its own process: this checkout first on the path.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

#: A model small enough to train in a few seconds on two CPU cores, large enough to learn something.
TINY = ["--hidden-size", "48", "--num-layers", "2", "--embedding-size", "16", "--batch-size", "16",
        "--seq-len", "48", "--preview", "40", "--lr", "1e-2"]
#: Three steps of the TINY model, evaluated and saved at the third.
QUICK = [*TINY, "--max-steps", "3", "--eval-every", "3", "--log-every", "1"]
#: A run that trains until it is stopped: no evaluation and no log line after its step-0 checkpoint,
#: so nothing is written until a signal asks for a save.
UNTIL_STOPPED = ["--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-len", "32", "--preview",
                 "0", "--lr", "5e-3", "--seed", "7", "--max-steps", "100000", "--eval-every", "100000",
                 "--log-every", "100000"]
#: Smaller still, for runs whose learning does not matter: they train in well under a second.
SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--seq-len", "16", "--preview", "0"]
#: SMALL with a fixed seed.
SEEDED = [*SMALL, "--seed", "3"]


def small_model():
    """A one-layer model of SMALL's widths, for the library's train() and Trainer."""
    from charlstm.config import ModelConfig

    return ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8, num_layers=1)


def small_config(**overrides):
    """A training config of SMALL's sizes (a step takes milliseconds), for train() and Trainer."""
    from charlstm.config import TrainConfig

    base = dict(batch_size=4, seq_len=16, max_steps=10, time_budget=None, eval_every=5, log_every=1, preview_chars=0)
    return TrainConfig(**{**base, **overrides})


# ------------------------------------------------------------------------------------ text and runs


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    """The first 60k characters of the bundled default corpus."""
    return (CORPORA / "shakespeare.txt").read_text(encoding="utf-8")[:60_000]


@pytest.fixture(scope="session")
def chinese_text() -> str:
    return (CORPORA / "chinese-poetry.txt").read_text(encoding="utf-8")[:12_000]


@pytest.fixture()
def corpus(tmp_path, shakespeare_text) -> Path:
    """20,000 characters of Shakespeare in a file of this test's own."""
    path = tmp_path / "plays.txt"
    path.write_text(shakespeare_text[:20_000], encoding="utf-8")
    return path


@pytest.fixture()
def small_run(tmp_path, corpus) -> Path:
    """A run of three real steps (QUICK) on `corpus`, in this test's own folder: one a test may damage."""
    out = tmp_path / "run"
    result = run_cli("train", corpus, "--out", out, *QUICK)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, shakespeare_text) -> Path:
    """A real run directory: tiny LSTM trained on real Shakespeare through the real CLI."""
    work = tmp_path_factory.mktemp("run")
    corpus = work / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = work / "checkpoints" / "plays"
    result = run_cli("train", corpus, "--out", out, "--max-steps", "150", "--eval-every", "50", "--log-every", "10",
                     *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture()
def run_copy(trained_run, tmp_path) -> Path:
    """A copy of `trained_run` of this test's own, to write into (a cached index, a damaged file)."""
    import shutil

    return shutil.copytree(trained_run, tmp_path / "plays")


@pytest.fixture(scope="session")
def checkpoint(trained_run) -> Path:
    """The best checkpoint of `trained_run`."""
    return trained_run / "best.safetensors"


@pytest.fixture(scope="session")
def model_vocab(trained_run):
    """The model and vocabulary of `trained_run`, loaded through the Python API."""
    import charlstm

    return charlstm.load(trained_run)


@pytest.fixture(scope="session")
def chinese_run(tmp_path_factory, chinese_text) -> Path:
    """A tiny model of Chinese poetry whose lines end in CRLF: nearly every character it writes is
    outside ASCII (briefly trained: its vocabulary is what matters)."""
    work = tmp_path_factory.mktemp("zh")
    corpus = work / "poems.txt"
    corpus.write_bytes(chinese_text[:6000].replace("\n", "\r\n").encode("utf-8"))
    out = work / "run"
    result = run_cli("train", corpus, "--out", out, "--max-steps", "8", "--eval-every", "8", *TINY)
    assert result.exit_code == 0, result.output
    return out


def quoted_lines(count: int, seed: int) -> str:
    """Lines of lowercase words, some words replaced by a quotation in capitals: 'ab "CA DE" c'.
    Whether the model is inside quotes decides the case of every letter it must predict, spaces
    included, so a unit that remembers the open quote pays off."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(3, 7)):
            if rng.random() < 0.3:
                inner = " ".join("".join(rng.choice("ABCDE") for _ in range(rng.randint(1, 3)))
                                 for _ in range(rng.randint(1, 3)))
                words.append(f'"{inner}"')
            else:
                words.append("".join(rng.choice("abcde") for _ in range(rng.randint(1, 4))))
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def quote_run(tmp_path_factory) -> Path:
    """A 1×16 LSTM trained for real for 80 steps (a few seconds) on lines where quotes decide the
    case of letters (`quoted_lines`): its quote unit is there to be found."""
    import torch

    from charlstm.config import ModelConfig, TrainConfig
    from charlstm.training.loop import train

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


#: The 2-layer models of every cell kind that the pages run in a browser (tests/views/test_web.py, test_page.py).
CELL_SHAPE = ["--hidden-size", "24", "--num-layers", "2", "--embedding-size", "8", "--batch-size", "16", "--seq-len",
              "48", "--preview", "0", "--lr", "1e-2", "--eval-every", "60", "--log-every", "20", "--seed", "5"]


@pytest.fixture(scope="session")
def cell_runs(tmp_path_factory, shakespeare_text) -> dict[str, Path]:
    """One briefly but really trained 2-layer run (CELL_SHAPE) per cell kind, by name."""
    from charlstm.config import CELLS

    work = tmp_path_factory.mktemp("cells")
    corpus = work / "plays.txt"
    corpus.write_text(shakespeare_text[:30_000], encoding="utf-8")
    made = {}
    for cell in CELLS:
        made[cell] = work / cell
        steps = "120" if cell in ("lstm", "gru") else "40"
        result = run_cli("train", corpus, "--out", made[cell], "--cell", cell, "--max-steps", steps, *CELL_SHAPE)
        assert result.exit_code == 0, result.output
    return made


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for a module's tests (tests/chromium.py)."""
    from chromium import open_browser

    b = open_browser(tmp_path_factory.mktemp("profile"))
    yield b
    b.close()


# ------------------------------------------------------------------------------- the command line


def run_cli(*args, input: str | bytes | None = None, env: dict | None = None) -> Result:
    """Invoke the CLI in-process with stdout and stderr kept apart.

    An exception the command does not turn into an exit code (what a user would see as a traceback)
    is raised here and fails the test: CliRunner catches nothing, so no test needs to look for a
    traceback in what CliRunner captured (it never holds one)."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


def charlstm_process(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m charlstm ARGS` run to its end in a process of its own: the exit code and the text
    a user sees on stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "charlstm", *map(str, args)], env=kwargs.pop("env", ENV),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def start_charlstm(*args, **popen) -> subprocess.Popen:
    """`python -m charlstm ARGS` started in a process of its own, its stdout and stderr on pipes."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": ENV, **popen}
    return subprocess.Popen([sys.executable, "-m", "charlstm", *map(str, args)], **popen)


#: Runs a command and prints the peak RSS (KB) of it alone: the parent's RUSAGE_CHILDREN sees only it.
_MEASURE = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:])\n"
            "print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(r.returncode)\n")


def measured(*args, cwd: Path, timeout: float = 120, **kwargs) -> tuple[int, str, str, int]:
    """`python -m charlstm ARGS` in a process of its own: (exit code, stdout, stderr without the
    measurement, the process's peak resident memory in MB)."""
    return measured_command([sys.executable, "-m", "charlstm", *map(str, args)], cwd=cwd, timeout=timeout, **kwargs)


def measured_command(command: list[str], cwd: Path, timeout: float = 120, **kwargs) -> tuple[int, str, str, int]:
    """`measured` of any command (`[sys.executable, "-c", code]` for the Python API); the
    measurement's own environment is this checkout's (ENV) unless `env` is given."""
    kwargs.setdefault("env", ENV)
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    lines = done.stderr.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith("maxrss "))
    return done.returncode, done.stdout, "\n".join(l for l in lines if not l.startswith("maxrss ")), peak // 1024


#: Peak resident memory (MB) every command must stay under, whatever the input the readers take.
MEMORY_BOUND_MB = 1500


def read_peak(command: str, run: Path, path: Path, *args, cwd: Path, timeout: float = 1800) -> tuple[str, int]:
    """(stdout, peak MB) of `charlstm COMMAND RUN --text-file PATH ARGS` on one thread, in a process
    of its own, which must succeed."""
    code, out, err, peak = measured(command, run, "--text-file", path, *args, "--threads", "1", cwd=cwd, timeout=timeout)
    assert code == 0, err[-2000:]
    return out, peak


def long_text(path: Path, chars: int, source: str) -> Path:
    """A text file of `chars` characters made of `source` over and over."""
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, chars, len(source)):
            f.write(source[: min(len(source), chars - start)])
    return path


def distinct_chars(count: int) -> list[str]:
    """`count` distinct characters a corpus may hold: CJK ideographs on, past the surrogates, the
    private use area and the noncharacters."""
    chars, code = [], 0x4E00
    while len(chars) < count:
        if not (0xD800 <= code <= 0xF8FF or 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
            chars.append(chr(code))
        code += 1
    return chars


@pytest.fixture(scope="session")
def wide_corpus(tmp_path_factory) -> Path:
    """300,000 characters: 100,000 distinct ones, three times each, in shuffled lines of 40."""
    chars = distinct_chars(100_000) * 3
    random.Random(0).shuffle(chars)
    path = tmp_path_factory.mktemp("wide") / "wide.txt"
    path.write_text("\n".join("".join(chars[i : i + 40]) for i in range(0, len(chars), 40)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shakespeare_text) -> Path:
    """A 1×8 LSTM trained for two steps on Shakespeare: a model whose passes over long texts (of
    `long_text(..., shakespeare_text)`) are quick, so what they hold is what a test measures."""
    work = tmp_path_factory.mktemp("tiny")
    corpus = work / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = work / "run"
    result = run_cli("train", corpus, "--out", out, "--hidden-size", "8", "--num-layers", "1", "--embedding-size", "4",
                     "--batch-size", "4", "--seq-len", "16", "--preview", "0", "--max-steps", "2", "--eval-every", "2")
    assert result.exit_code == 0, result.output
    return out


def error_line(output: str) -> str:
    """The one line `Error: …` a refused command ends with. It is the only line that says Error and the
    last one (progress bars and `charlstm:` notices may come before it), and no traceback is printed."""
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in output.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    assert len(errors) == 1 and errors[0].startswith("Error") and lines[-1] == errors[0], output[-3000:]
    return errors[0]


def refused(result: Result, *needles: str, code: int = 1) -> str:
    """The command was refused: exit `code` and one `Error:` line (see `error_line`) holding every needle."""
    assert result.exit_code == code, result.output
    line = error_line(result.output)
    for needle in needles:
        assert needle in line, (needle, line)
    return line


_ESCAPE = re.compile(r"\\(n|t|r|\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unescape_text(field: str) -> str:
    """A TSV text field read back: the inverse of views.output.escape_text."""
    def one(match: re.Match) -> str:
        code = match.group(1)
        return {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(one, field)


# --------------------------------------------------------------------------------- reading a run back


def snapshot(folder: Path, ignore: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (names in `ignore` aside) by its path inside it: compare two to see
    that nothing was written, overwritten or removed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ignore}


def run_files(run: Path) -> dict[str, bytes]:
    """`snapshot` of a run folder but for its lock, which a refused command may claim and release."""
    return snapshot(run, ignore=(".lock",))


def temp_files(folder: Path) -> list[Path]:
    """The temp files of whole-file writes in progress, or left behind, in `folder`."""
    return sorted(Path(folder).glob(".*.tmp"))


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def metrics(run: Path) -> list[dict]:
    """Every record of the run's metrics.jsonl, read as strict JSON (NaN and Infinity are not JSON)."""
    def refuse(token):
        raise AssertionError(f"{token} in metrics.jsonl")

    return [json.loads(line, parse_constant=refuse) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> dict[int, float]:
    """The training loss of every logged step."""
    return {m["step"]: m["train_loss"] for m in metrics(run) if "train_loss" in m}


def read_checkpoint_file(path: Path):
    """(charlstm metadata, every tensor) of a checkpoint file, read raw: nothing is validated."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["charlstm"]), {k: f.get_tensor(k) for k in f.keys()}


def write_checkpoint_file(path: Path, meta: dict, tensors: dict) -> None:
    """Write a checkpoint file as given, however wrong: what a damaged or hostile file would hold."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={"charlstm": json.dumps(meta)})


def rewrite_checkpoint(path: Path, edit) -> None:
    """The checkpoint at `path` with its metadata and tensors changed by `edit(meta, tensors)`."""
    meta, tensors = read_checkpoint_file(path)
    edit(meta, tensors)
    write_checkpoint_file(path, meta, tensors)


def next_logits(model, vocab, text: str):
    """The logits of the character after `text`, from the fused forward over the whole text: (V,)."""
    import torch

    ids = torch.as_tensor(vocab.encode(text).astype("int64")).view(1, -1)
    with torch.inference_mode():
        logits, _ = model(ids)
    return logits[0, -1]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render(renderable, width: int = 100) -> str:
    """What a rich renderable prints on a truecolor terminal `width` columns wide, escape codes and all."""
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=width, highlight=False).print(renderable)
    return out.getvalue()


def plain(renderable, width: int = 100) -> str:
    """`render` without its colour codes: the text a user reads."""
    return _ANSI.sub("", render(renderable, width))


def longest_matches(corpus: str, text: str) -> list[int]:
    """For each i, the longest l with text[i:i+l] in corpus, by Python's substring search: the
    brute-force reference of the memorisation check."""
    out = []
    for i in range(len(text)):
        length = 0
        while i + length < len(text) and text[i : i + length + 1] in corpus:
            length += 1
        out.append(length)
    return out


# ------------------------------------------------------------------------------ files of every kind


class Hung(BaseException):
    """A call still running when its time was up (an open that waits for a FIFO's writer, a read
    of a device that never ends). A BaseException, so no `except Exception` swallows it."""


@contextlib.contextmanager
def within(seconds: float = 60):
    """Raise `Hung` in the block if it runs longer than `seconds` (main thread, POSIX): a blocking
    open or read is interrupted, so a hang fails the test instead of stopping the suite."""
    import signal

    def expired(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: Every kind of file that is not a regular one, as `plant` makes it, and how charlstm names it.
KINDS = {"FIFO": "a FIFO", "device": "a device", "directory": "a directory", "socket": "a socket",
         "dangling link": "a symbolic link to nothing"}


def plant(path: Path, kind: str) -> Path:
    """Put a file of `kind` (one of KINDS) at `path`, in place of whatever was there. A device is
    a character device like /dev/zero where this user may make one, else a link to /dev/zero."""
    import shutil
    import socket
    import stat
    import tempfile

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))
        except OSError:
            path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":  # bound where its name is short (at most ~100 bytes), then moved (tmp_path is on /tmp too)
        short = Path(tempfile.mkdtemp())
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(short / "s"))
        os.rename(short / "s", path)
        short.rmdir()
    elif kind == "dangling link":
        path.symlink_to(path.parent / "nothing-here")
    else:
        raise ValueError(kind)
    return path
