"""The command line answers --help, --version and usage errors without importing torch or any other heavy
library (safetensors, tqdm, rich, textual, and numpy but for the help of inspect and score, whose figures
come from modules that use it): those load when a command does its work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from charlstm.cli import COMMANDS

_HEAVY = ("torch", "tqdm", "safetensors", "numpy", "textual", "rich")
_PROBE = ("import sys\nfrom charlstm.cli import main\nnames = sys.argv[1].split(',')\n"
          "sys.argv = ['charlstm', *sys.argv[2:]]\n"
          "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\nelse:\n    code = 0\n"
          "heavy = sorted(m for m in names if m in sys.modules)\n"
          "print('IMPORTED=' + ','.join(heavy), 'EXIT=' + str(code))\n")


@pytest.mark.parametrize("args, exit_code", [
    (["--help"], 0),
    (["--version"], 0),
    *[([name, "--help"], 0) for name in COMMANDS],
    (["sample", "--top-k", "x"], 2),          # a usage error
    (["nonsense"], 2),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_no_torch_before_work(args, exit_code):
    heavy = [m for m in _HEAVY if not (m == "numpy" and args in (["inspect", "--help"], ["score", "--help"]))]
    done = subprocess.run([sys.executable, "-c", _PROBE, ",".join(heavy), *args], capture_output=True, text=True,
                          timeout=60)
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"IMPORTED= EXIT={exit_code}", (args, last, done.stderr[-500:])
