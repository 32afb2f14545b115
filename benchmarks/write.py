"""How soon `charlstm write` shows its screen, and its first suggestions, against the time
`charlstm sample --length 1` takes to print one character, in the same run.

    python benchmarks/write.py [CHECKPOINT] [--runs 5]

Without a CHECKPOINT a small model is trained first (a few seconds, in a temporary folder). Each
`charlstm write` runs as a fresh process in a 100×30 pseudo-terminal; the figures are wall-clock
times from starting the process until its output first holds the screen's title ("first screen")
and until the top-character panel shows a probability ("first suggestions"), after which Ctrl+Q
(twice) ends it. `charlstm sample --length 1` runs as a fresh process on the same checkpoint,
interleaved with it, so a busy neighbour slows both alike; medians are printed. The issue asks for
the first screen "well under two seconds"; suggestions follow once torch and the model are loaded
(about what the sample baseline takes).
"""

from __future__ import annotations

import argparse
import os
import platform
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHARLSTM = [sys.executable, "-m", "charlstm"]


def train_small(folder: Path) -> Path:
    corpus = folder / "plays.txt"
    corpus.write_text((ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    out = folder / "run"
    subprocess.run([*CHARLSTM, "train", str(corpus), "--out", str(out), "--max-steps", "50", "--eval-every", "50",
                    "--hidden-size", "128", "--preview", "0"], check=True, capture_output=True, cwd=ROOT)
    return out


def time_write(checkpoint: str, timeout: float = 120.0) -> tuple[float, float]:
    """(seconds to the first screen, seconds to the first suggestions) of one `charlstm write`."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.chdir(ROOT)
        os.execv(sys.executable, [*CHARLSTM, "write", checkpoint, "--prime", "KING", "--seed", "1"])
    seen, first_screen, first_suggestions = b"", None, None
    try:
        while first_suggestions is None:
            if time.perf_counter() - started > timeout:
                sys.exit(f"charlstm write showed no suggestions in {timeout:.0f} s:\n{seen[-2000:]!r}")
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                seen += os.read(fd, 65536)
            except OSError:
                sys.exit(f"charlstm write ended early:\n{seen[-2000:]!r}")
            now = time.perf_counter() - started
            if first_screen is None and b"charlstm write" in seen:
                first_screen = now
            if b"Next character" in seen and b"%" in seen.split(b"Next character")[-1]:
                first_suggestions = now
        for key in (b"\x11", b"\x11"):                        # Ctrl+Q (the second only if text were unsaved)
            os.write(fd, key)
            end = time.perf_counter() + 5
            while time.perf_counter() < end:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return first_screen, first_suggestions
                if select.select([fd], [], [], 0.05)[0]:
                    try:
                        os.read(fd, 65536)
                    except OSError:
                        pass
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return first_screen, first_suggestions


def time_sample(checkpoint: str) -> float:
    started = time.perf_counter()
    subprocess.run([*CHARLSTM, "sample", checkpoint, "--length", "1", "--prime", "KING", "--seed", "1"], check=True,
                   capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or str(train_small(Path(tmp)))
        print(f"machine: {platform.processor() or 'cpu'}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
              f"{args.runs} interleaved run(s) each; checkpoint {checkpoint}")
        screens, suggestions, samples = [], [], []
        for _ in range(args.runs):
            screen, suggested = time_write(checkpoint)
            screens.append(screen)
            suggestions.append(suggested)
            samples.append(time_sample(checkpoint))
        sample = statistics.median(samples)
        for name, values in (("write: first screen", screens), ("write: first suggestions", suggestions),
                             ("sample --length 1 (baseline)", samples)):
            median = statistics.median(values)
            print(f"{name:<30} median {median:6.2f} s   ({median / sample:4.2f}× the baseline)   "
                  f"runs: {', '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
