"""cli/write.py, `charlstm write`: its help names the keys, bad input is one line before any screen, --out
goes through the files guard, and the installed command runs in a real terminal."""

from __future__ import annotations

import os
import sys
import time

import pytest

from conftest import run_cli


def test_help_names_the_keys():
    result = run_cli("write", "--help")
    assert result.exit_code == 0
    for words in ("Tab", "Alt+1", "Ctrl+Z", "Ctrl+S", "--prime-file", "--unknown", "--out"):
        assert words in result.output


@pytest.mark.parametrize("extra, code, words", [
    ([], 2, "interactive: run it in a terminal"),          # CliRunner's stdin is no terminal
    (["--num-samples", "10"], 2, "10"),
    (["--out", "."], 2, "is a directory"),
    (["--out", "no/such/folder/x.txt"], 2, "no folder"),
    (["--temperature", "nan"], 2, "not a finite number"),
])
def test_bad_input_is_one_line(checkpoint, extra, code, words):
    result = run_cli("write", checkpoint, *extra)
    assert result.exit_code == code and words in result.output, result.output


def test_out_through_a_symbolic_link_is_refused(checkpoint, tmp_path):
    (tmp_path / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    result = run_cli("write", checkpoint, "--out", tmp_path / "link.txt")
    assert result.exit_code == 2 and "is a symbolic link" in result.output
    assert not (tmp_path / "elsewhere.txt").exists()


def test_out_over_a_checkpoint_or_a_file_that_is_not_text_is_refused(checkpoint, tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for out, words in ((checkpoint, "is a checkpoint or a file of a charlstm run"), (binary, "is not a plain-text file")):
        result = run_cli("write", checkpoint, "--out", out)
        assert result.exit_code == 2 and words in result.output, result.output
    assert binary.read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"


def test_prime_file_is_read_strictly_before_the_screen(checkpoint, tmp_path):
    bad = tmp_path / "draft.txt"
    bad.write_bytes(b"KING\xff\xfe")
    result = run_cli("write", checkpoint, "--prime-file", bad)
    assert result.exit_code == 1 and "draft.txt" in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_checkpoint_is_one_line(tmp_path):
    result = run_cli("write", tmp_path / "none.safetensors")
    assert result.exit_code == 1 and "no such checkpoint" in result.output


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_real_command_in_a_terminal(checkpoint, tmp_path):
    """The installed command in a pseudo-terminal: the screen appears, keys type, Ctrl+S saves, Ctrl+Q quits."""
    import pty

    out = tmp_path / "scene.txt"
    pid, fd = pty.fork()
    if pid == 0:                                               # the child: charlstm write in a 100×30 terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "charlstm", "write", str(checkpoint), "--prime", "KING",
                                  "--out", str(out), "--seed", "1"])
    terminal = Terminal(fd)
    try:
        assert terminal.until(lambda seen: b"Next character" in seen and b"%" in seen, 60), terminal.seen[-2000:]
        os.write(fd, b"ab")
        terminal.until(lambda seen: False, 0.5)
        os.write(fd, b"\x13")                                 # Ctrl+S
        assert terminal.until(lambda seen: out.exists(), 30), terminal.seen[-2000:]
        os.write(fd, b"\x11")                                 # Ctrl+Q
        status = None

        def ended(seen):
            nonlocal status
            done, status = os.waitpid(pid, os.WNOHANG)
            return done == pid

        assert terminal.until(ended, 30), terminal.seen[-2000:]
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text(encoding="utf-8") == "KINGab"


class Terminal:
    """The reading end of a pseudo-terminal, drained while waiting (a full one would stall the program)."""

    def __init__(self, fd: int):
        self.fd, self.seen = fd, b""

    def until(self, done, timeout: float) -> bool:
        import select

        deadline = time.monotonic() + timeout
        while not done(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:                                # the program closed the terminal
                    pass
        return True
