"""Training speed on a busy machine: charlstm's own thread choice against torch's default.

    python benchmarks/busy.py [--seconds 25] [--rounds 2]

Runs the real `charlstm train` (2×256, bundled Shakespeare, no evaluation during the run) for a
fixed wall-clock time, once with torch's default thread count pinned (`--threads N`, N = torch's
default here) and once with charlstm choosing by measurement (`--threads auto`), interleaved, first on
an idle machine and then while a second process burns one core (`python -c 'while True: pass'`,
started and stopped by this script). Prints the training chars/s each run reports and the ratio
auto / default per condition. Targets: busy ≥ 1.8×, idle ≥ 0.95×.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHARLSTM = [sys.executable, "-m", "charlstm"]


def torch_default_threads() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


@contextlib.contextmanager
def burner(on: bool):
    """A process spinning on one core, as a browser tab or a compile would, while the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def train_rate(threads: str, seconds: float, work: Path) -> tuple[float, str]:
    """chars/s of one `charlstm train` run, and the thread line it printed."""
    out = work / f"run-{threads}-{os.urandom(3).hex()}"
    done = subprocess.run([*CHARLSTM, "train", "--out", str(out), "--time", f"{seconds}s", "--eval-every", "1000000",
                           "--eval-seconds", "0", "--preview", "0", "--hidden-size", "256", "--num-layers", "2",
                           "--threads", threads], capture_output=True, text=True, cwd=ROOT)
    match = re.search(r"([\d,]+) chars/s", done.stderr)
    if done.returncode != 0 or not match:
        sys.exit(f"charlstm train failed:\n{done.stderr[-2000:]}")
    thread_line = next((line for line in done.stderr.splitlines() if "thread" in line), "")
    return float(match.group(1).replace(",", "")), thread_line.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    default = str(torch_default_threads())
    print(f"machine: {platform.processor() or 'cpu'}, {os.cpu_count()} cores; torch's default: {default} threads; "
          f"{args.rounds} round(s) of {args.seconds:.0f} s per setting, interleaved")
    with tempfile.TemporaryDirectory() as tmp:
        for busy in (False, True):
            rates: dict[str, list[float]] = {default: [], "auto": []}
            with burner(busy):
                for _ in range(args.rounds):
                    for setting in (default, "auto"):
                        rate, line = train_rate(setting, args.seconds, Path(tmp))
                        rates[setting].append(rate)
                        if setting == "auto":
                            last_line = line
            a, b = statistics.median(rates["auto"]), statistics.median(rates[default])
            print(f"{'busy (one core burnt)' if busy else 'idle':<22} torch default {b:>8,.0f} chars/s   "
                  f"charlstm auto {a:>8,.0f} chars/s   ratio {a / b:.2f}×   [{last_line}]")


if __name__ == "__main__":
    main()
