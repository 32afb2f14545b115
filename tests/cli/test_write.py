"""cli/write.py, `charlstm write`: its help names the keys, bad input is one line before any screen, --out
goes through the files guard, and the installed command runs in a real terminal: keys, Alt+digit as
tmux sends it, and a big paste (memory, one undo step, quitting while it is read) under tmux."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from charlstm.views.writer import OPTION_DIGITS
from conftest import ENV, quoted_lines, run_cli


def test_help_names_the_keys():
    result = run_cli("write", "--help")
    assert result.exit_code == 0
    for words in ("Tab", "Alt+1", "Option+1", "Ctrl+Z", "Ctrl+S", "--prime-file", "--unknown", "--out"):
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


TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="needs tmux, to drive the command through a real terminal")


class Tmux:
    """A tmux server of the test's own (its socket in the test's folder) running one command in a
    110×32 window: keys sent as tmux sends a user's, the screen read back as it shows."""

    def __init__(self, socket, command: list[str]):
        self.base = [TMUX, "-S", str(socket), "-f", os.devnull]
        subprocess.run([*self.base, "new-session", "-d", "-x", "110", "-y", "32", shlex.join(command)], env=ENV,
                       check=True, timeout=30)
        self.pid = int(self.tmux("display-message", "-p", "#{pane_pid}"))

    def tmux(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=60).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", *(["-l"] if literal else []), *keys)

    def paste(self, path) -> None:
        """Paste the file's text as a terminal pastes (bracketed, as the app asked)."""
        self.tmux("load-buffer", "-b", "paste", str(path))
        self.tmux("paste-buffer", "-p", "-d", "-b", "paste")

    def status(self) -> str:
        """The co-writer's status line (above the footer)."""
        lines = self.tmux("capture-pane", "-p").rstrip("\n").splitlines()
        return lines[-2] if len(lines) >= 2 else ""

    def until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def close(self) -> None:
        self.tmux("kill-server")


def idle_at(terminal: Tmux, characters: int):
    """Whether the status line says the text has `characters` and the suggestions for it are shown."""
    return lambda: (terminal.status().strip().startswith(f"{characters:,} characters")
                    and not any(w in terminal.status() for w in ("thinking", "reading", "loading")))


@needs_tmux
def test_alt_digits_take_a_top_character_through_tmux(quote_run, tmp_path):
    """tmux sends Alt+1 as ESC 1 (so do gnome-terminal and Windows Terminal), and a Mac's Option+1
    arrives as '¡': each takes the top character it names, and none is refused as unseen."""
    import charlstm
    from charlstm.generation.cowriter import CoWriter

    model, vocab = charlstm.load(quote_run)
    out = tmp_path / "out.txt"
    terminal = Tmux(tmp_path / "tmux", [sys.executable, "-m", "charlstm", "write", str(quote_run), "--prime", "ab ",
                                        "--seed", "1", "--out", str(out)])
    try:
        assert terminal.until(idle_at(terminal, 3), 90), terminal.tmux("capture-pane", "-p")
        expected = "ab "
        for key, literal, index in (("M-1", False, 0), (OPTION_DIGITS[0], True, 0), ("M-3", False, 2)):
            expected += CoWriter(model, vocab, expected).top(9)[index][0]
            terminal.keys(key, literal=literal)
            assert terminal.until(idle_at(terminal, len(expected)), 30), (key, terminal.tmux("capture-pane", "-p"))
            assert "never saw" not in terminal.tmux("capture-pane", "-p")
        assert "Alt+1…9 take" in terminal.tmux("capture-pane", "-p")
        terminal.keys("C-s")
        assert terminal.until(out.exists, 30)
        assert out.read_text(encoding="utf-8") == expected
        terminal.keys("C-q")
        assert terminal.until(lambda: not terminal.alive(), 30)
    finally:
        terminal.close()


@pytest.mark.slow            # tests/views/test_writer.py holds the same guarantees under the pilot, by default
@needs_tmux
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc")
def test_a_big_paste_through_tmux_is_read_in_bounded_memory_and_quitting_stops_it(quote_run, tmp_path):
    """1 MiB pasted into a 16-unit model: read within two minutes, the process under 800 MB at its peak,
    one undo step; 3 MiB pasted and quit while it is read: the process is gone within 15 s."""
    text = quoted_lines(2000, seed=2)
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_text((text * (1 + (1 << 20) // len(text)))[: 1 << 20], encoding="utf-8")
    big.write_text((text * (1 + (3 << 20) // len(text)))[: 3 << 20], encoding="utf-8")
    terminal = Tmux(tmp_path / "tmux", [sys.executable, "-m", "charlstm", "write", str(quote_run), "--prime", "ab ",
                                        "--seed", "1"])
    try:
        assert terminal.until(idle_at(terminal, 3), 90), terminal.tmux("capture-pane", "-p")
        terminal.paste(small)
        assert terminal.until(idle_at(terminal, 3 + (1 << 20)), 120), terminal.tmux("capture-pane", "-p")
        peak = next(int(line.split()[1]) for line in open(f"/proc/{terminal.pid}/status") if line.startswith("VmHWM:"))
        assert peak < 800 * 1024, f"{peak / 1024:.0f} MB"
        terminal.keys("C-z")
        assert terminal.until(idle_at(terminal, 3), 30), terminal.tmux("capture-pane", "-p")
        terminal.paste(big)
        assert terminal.until(lambda: "reading" in terminal.status(), 60), terminal.tmux("capture-pane", "-p")
        started = time.monotonic()
        terminal.keys("C-q")
        terminal.keys("C-q")                                   # unsaved text: the second ^Q quits
        assert terminal.until(lambda: not terminal.alive(), 15), terminal.tmux("capture-pane", "-p")
        assert time.monotonic() - started < 15
    finally:
        terminal.close()
