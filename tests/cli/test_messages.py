"""What the command line says when something is wrong (cli/common.py's error mapping): one line and a
non-zero exit, never a traceback, whatever the process's own streams are (closed stdin or stdout, an
ASCII-only PYTHONIOENCODING) and whatever a file name holds (line breaks and control characters are
shown escaped); and the hints it prints name charlstm the way it was run.

Stream cases run in a subprocess, where a closed descriptor is real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from charlstm.errors import one_line
from conftest import SMALL, error_line, run_cli


def cli(*args: str, shell_redirect: str = "", env: dict | None = None, cwd=None, timeout: int = 180):
    """Run `charlstm ARGS` in a fresh interpreter, optionally under a shell redirection such as `<&-`."""
    command = [sys.executable, "-m", "charlstm.cli", *map(str, args)]
    if shell_redirect:
        command = ["sh", "-c", f'exec "$@" {shell_redirect}', "sh", *command]
    return subprocess.run(command, capture_output=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(done, code: int = 1, *needles: str) -> str:
    """The process ended with `code` and its stderr ends in one line `Error: …` holding every needle;
    any line before it is a `charlstm: …` notice."""
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == code, (done.returncode, err[-2000:])
    line = error_line(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("charlstm: ") for line in lines[:-1]), err[-2000:]
    for needle in needles:
        assert needle in line, (needle, line)
    return line


#: A model that trains in a second or two.
ONE_LAYER = [*SMALL, "--num-layers", "1"]


# ------------------------------------------------------------------------------ the process's own streams


def test_train_from_a_closed_stdin_is_one_line(tmp_path):
    done = cli("train", "-", "--out", str(tmp_path / "run"), "--max-steps", "1", *ONE_LAYER, shell_redirect="<&-")
    assert_one_line_error(done, 1, "standard input is closed")
    assert not (tmp_path / "run" / "latest.safetensors").exists()


@pytest.mark.parametrize("args", [["sample", "--length", "5"], ["inspect", "--length", "5"],
                                  ["score", "--text", "to be or not"]], ids=lambda args: args[0])
def test_results_to_a_closed_stdout_are_one_line(trained_run, args):
    done = cli(args[0], trained_run, *args[1:], shell_redirect=">&-")
    assert_one_line_error(done, 1, "standard output is closed")


def test_help_and_version_to_a_closed_stdout_are_one_line():
    assert_one_line_error(cli("--version", shell_redirect=">&-"), 1, "standard output is closed")
    assert_one_line_error(cli("sample", "--help", shell_redirect=">&-"), 1, "standard output is closed")


def test_training_needs_no_stdout_and_no_stderr(tmp_path, corpus):
    """train writes its results into the run, not stdout: with stdout (or stderr) closed it trains, and
    no run file lands on descriptor 1 or 2 to receive what a library prints there."""
    for redirect, name in ((">&-", "a"), ("2>&-", "b"), (">&- 2>&-", "c")):
        out = tmp_path / name
        done = cli("train", corpus, "--out", str(out), "--max-steps", "2", "--eval-every", "2", *ONE_LAYER,
                   shell_redirect=redirect)
        assert done.returncode == 0, (redirect, done.stderr.decode()[-1500:])
        assert (out / "latest.safetensors").is_file() and (out / "best.safetensors").is_file()
        loaded = run_cli("sample", str(out), "--length", "5")
        assert loaded.exit_code == 0, (redirect, loaded.output)


def test_an_ascii_only_pythonioencoding_with_a_chinese_model_names_the_variable(chinese_run):
    done = cli("sample", chinese_run, "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "ascii"})
    assert_one_line_error(done, 1, "PYTHONIOENCODING=ascii", "set PYTHONIOENCODING=utf-8", "U+")


def test_an_ascii_only_pythonioencoding_still_samples_ascii_text(trained_run):
    done = cli("sample", trained_run, "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert len(done.stdout.decode("ascii").rstrip("\n")) == 20


def test_a_chinese_model_samples_under_utf8(chinese_run):
    done = cli("sample", chinese_run, "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert any(ord(c) > 0x2E80 for c in done.stdout.decode("utf-8"))


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("args", [["train", "/proc/self/mem", "--out", "{tmp}/run"],
                                  ["prepare", "/proc/self/mem", "--out", "{tmp}/run"]])
def test_a_read_error_names_the_file(tmp_path, args):
    done = cli(*[a.format(tmp=tmp_path) for a in args])
    assert_one_line_error(done, 1, "/proc/self/mem", "cannot read")


# ------------------------------------------------------------------------------ one line, whatever a name holds


@pytest.mark.parametrize("name", ["we\nird", "car\rriage", "esc\x1b[2Jape", "tab\tbed", "bell\x07"])
def test_file_names_with_control_characters_stay_on_one_line(tmp_path, name):
    """Every message passes through one_line in the error mapping: domain errors and usage errors."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "bin.txt").write_bytes(b"text\x00more")
    escaped = one_line(name)
    for args, word in ((["train", folder / "missing.txt"], "no such file"),
                       (["train", folder / "bin.txt", "--out", tmp_path / "r"], "NUL"),
                       (["sample", folder], "no"),
                       (["prepare", folder / "bin.txt", "--out", tmp_path / "r"], "NUL")):
        result = run_cli(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and escaped in lines[0] and word in lines[0], \
            (args, result.stderr)
        assert not any(c in lines[0] for c in "\r\t\x1b\x07"), lines[0]
    assert not list(tmp_path.glob("r/*.safetensors"))


def test_a_usage_error_quoting_a_path_stays_one_line(tmp_path, trained_run):
    done = cli("inspect", trained_run, "--text-file", str(tmp_path / "no\nsuch.txt"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err, err
    error_lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and "no\\nsuch.txt" in error_lines[0], err


# ------------------------------------------------------------------------------ hints


def test_hints_name_charlstm_the_way_it_was_run(monkeypatch, tmp_path):
    import shutil

    from charlstm.cli.common import invocation

    fake = tmp_path / "venv" / "bin" / "charlstm"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(fake), "train"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert invocation() == str(fake)                       # not on PATH: the path as typed
    monkeypatch.setenv("PATH", str(fake.parent))
    assert shutil.which("charlstm") == str(fake) and invocation() == "charlstm"
    monkeypatch.setattr(sys, "argv", ["/x/charlstm/__main__.py"])
    assert invocation().endswith(" -m charlstm")
