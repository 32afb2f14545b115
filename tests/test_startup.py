"""The command line answers --help, --version and usage errors without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = ("import sys\nfrom charlstm.cli import main\nsys.argv = ['charlstm', *sys.argv[1:]]\n"
          "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\nelse:\n    code = 0\n"
          "heavy = sorted(m for m in ('torch', 'tqdm', 'safetensors') if m in sys.modules)\n"
          "print('IMPORTED=' + ','.join(heavy), 'EXIT=' + str(code))\n")


@pytest.mark.parametrize("args, exit_code", [
    (["--help"], 0),
    (["--version"], 0),
    (["train", "--help"], 0),
    (["prepare", "--help"], 0),
    (["sample", "--help"], 0),
    (["inspect", "--help"], 0),
    (["score", "--help"], 0),
    (["corpus", "--help"], 0),
    (["sample", "--top-k", "x"], 2),          # a usage error
    (["nonsense"], 2),
])
def test_no_torch_before_work(args, exit_code):
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60)
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"IMPORTED= EXIT={exit_code}", (args, last, done.stderr[-500:])


def test_help_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "charlstm.cli", "--help"], capture_output=True, text=True, timeout=60)
    for name in ("train", "prepare", "sample", "inspect", "score", "corpus"):
        assert f"  {name} " in done.stdout, done.stdout
