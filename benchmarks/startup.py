"""How long `charlstm` takes to answer before any model work: --help, a command's --help, --version
and a usage error, each against `python -c pass` in the same run (the interpreter's own start).

    python benchmarks/startup.py [--runs 15]

Each command runs as a fresh process, interleaved with the baseline so a busy neighbour slows both
alike; the figures are medians. Also prints whether each command imported torch (it must not).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "charlstm --help": ["--help"],
    "charlstm train --help": ["train", "--help"],
    "charlstm inspect --help": ["inspect", "--help"],
    "charlstm --version": ["--version"],
    "charlstm sample --top-k x (usage error)": ["sample", "--top-k", "x"],
}

# Runs the real console entry point, then reports whether torch was imported.
_PROBE = ("import sys\nfrom charlstm.cli import main\nsys.argv = ['charlstm', *sys.argv[1:]]\n"
          "try:\n    main()\nexcept SystemExit:\n    pass\n"
          "sys.stderr.write('torch imported\\n' if 'torch' in sys.modules else 'no torch\\n')\n")


def _time(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - started, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    python = sys.executable
    print(f"machine: {platform.processor() or 'cpu'}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {runs} runs, each paired with `python -c pass`")
    print(f"{'command':<42} {'seconds':>8} {'python -c pass':>15} {'extra':>7}  torch")
    for name, args in COMMANDS.items():
        ours, base, imported = [], [], ""
        _time([python, "-c", _PROBE, *args])                       # warm the file cache
        for _ in range(runs):
            seconds, imported = _time([python, "-c", _PROBE, *args])
            ours.append(seconds)
            base.append(_time([python, "-c", "pass"])[0])
        a, b = statistics.median(ours), statistics.median(base)
        print(f"{name:<42} {a:>8.3f} {b:>15.3f} {a - b:>7.3f}  {imported}")


if __name__ == "__main__":
    main()
