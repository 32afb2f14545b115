"""Preparing a corpus bigger than you would like to hold in memory: MB/s and peak RSS.

    python benchmarks/prepare.py [--mb 110] [--corpus FILE ...]

Without --corpus it builds a ≥100 MB corpus in a temp directory by repeating tiny-shakespeare and
the bundled corpora (Chinese and Python included, so ids need 16 bits), or pass real files, e.g.
the Linux source from `python corpora/build.py fetch c-code --dirs kernel mm lib fs net`.
Each measurement runs in a fresh process so its peak RSS is its own:
* `charlstm prepare` (streaming, memory-mapped ids) vs the naive route (read the whole text,
  build the vocabulary, encode in memory), and
* `charlstm train` for a few steps on the prepared corpus (peak RSS of training).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, TINY_SHAKESPEARE, machine

NAIVE = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from charlstm.data import read_corpus, Vocab
text = read_corpus({files!r})
vocab = Vocab.from_text(text)
ids = vocab.encode(text)
print(len(ids), len(vocab))
"""


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def build_corpus(directory: Path, megabytes: int) -> list[Path]:
    parts = [TINY_SHAKESPEARE.read_bytes()] + [p.read_bytes() for p in sorted((ROOT / "corpora").glob("*.txt"))]
    block = b"".join(parts)
    path = directory / "big.txt"
    with open(path, "wb") as f:
        written = 0
        while written < megabytes * 1_000_000:
            f.write(block)
            written += len(block)
    return [path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=110)
    parser.add_argument("--corpus", nargs="*", default=None)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(f) for f in args.corpus] if args.corpus else build_corpus(Path(tmp), args.mb)
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"corpus: {size:,.1f} MB in {len(files)} file(s)\n")
        charlstm = [sys.executable, "-m", "charlstm"]
        prep_s, prep_rss = run([*charlstm, "prepare", *map(str, files), "--out", f"{tmp}/run"], env)
        again_s, _ = run([*charlstm, "prepare", *map(str, files), "--out", f"{tmp}/run"], env)
        train_s, train_rss = run([*charlstm, "train", *map(str, files), "--out", f"{tmp}/run", "--max-steps",
                                  str(args.train_steps), "--eval-every", str(args.train_steps), "--preview", "0"], env)
        naive_s, naive_rss = run([sys.executable, "-c", NAIVE.format(root=str(ROOT), files=[str(f) for f in files])], env)
    print(f"{'':34}{'seconds':>9}{'MB/s':>9}{'peak RSS':>11}")
    print(f"{'charlstm prepare (streaming)':34}{prep_s:9.1f}{size / prep_s:9.1f}{prep_rss:9.0f} MB")
    print(f"{'charlstm prepare, cached':34}{again_s:9.1f}{size / again_s:9.1f}{'':>11}")
    print(f"{'charlstm train, ' + str(args.train_steps) + ' steps (mmap ids)':34}{train_s:9.1f}{'':>9}{train_rss:9.0f} MB")
    print(f"{'naive: read all, encode in memory':34}{naive_s:9.1f}{size / naive_s:9.1f}{naive_rss:9.0f} MB")
    print("\nseconds include starting Python and importing torch (about 1-2 s per process).")


if __name__ == "__main__":
    main()
