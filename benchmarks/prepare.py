"""Preparing a corpus bigger than you would like to hold in memory: MB/s and peak RSS.

    python benchmarks/prepare.py [--mb 110] [--corpus FILE ...]

Without --corpus it builds a ≥100 MB corpus in a temp directory by repeating tiny-shakespeare and
the bundled corpora (Chinese and Python included, so ids need 16 bits), or pass real files, e.g.
the Linux source from `python corpora/build.py fetch c-code --dirs kernel mm lib fs net`.
Each measurement runs in a fresh process so its peak RSS is its own:
* `charlstm.data.corpus.prepare` timed inside its process (the preparation itself), and the whole
  `charlstm prepare` command (start-up and importing torch included);
* the naive route (read the whole text, build the vocabulary, encode in memory), timed the same way;
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
import sys, time
sys.path.insert(0, {root!r})
from charlstm.data.reading import read_corpus
from charlstm.data.vocab import Vocab
start = time.perf_counter()
text = read_corpus({files!r})
vocab = Vocab.from_text(text)
ids = vocab.encode(text)
print(time.perf_counter() - start)
"""

STREAMING = """
import sys, time
sys.path.insert(0, {root!r})
from charlstm.data.corpus import prepare
from charlstm.runs.caches import CorpusCache
from charlstm.runs.folder import Run
start = time.perf_counter()
corpus = prepare({files!r}, cache=CorpusCache(Run({out!r})))
print(time.perf_counter() - start)
"""


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one child process (its own rusage, from wait4); the seconds are
    the ones the child prints, if it prints a number."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read().decode()[-2000:]}")
        out.seek(0)
        try:
            seconds = float(out.read().decode().split()[-1])
        except (IndexError, ValueError):
            pass
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
        names = [str(f) for f in files]
        inner_s, inner_rss = run([sys.executable, "-c", STREAMING.format(root=str(ROOT), files=names, out=f"{tmp}/inner")], env)
        prep_s, prep_rss = run([*charlstm, "prepare", *map(str, files), "--out", f"{tmp}/run"], env)
        again_s, _ = run([*charlstm, "prepare", *map(str, files), "--out", f"{tmp}/run"], env)
        train_s, train_rss = run([*charlstm, "train", *map(str, files), "--out", f"{tmp}/run", "--max-steps",
                                  str(args.train_steps), "--eval-every", str(args.train_steps), "--preview", "0"], env)
        naive_s, naive_rss = run([sys.executable, "-c", NAIVE.format(root=str(ROOT), files=names)], env)
    print(f"{'':34}{'seconds':>9}{'MB/s':>9}{'peak RSS':>11}")
    print(f"{'prepare() itself (streaming)':34}{inner_s:9.2f}{size / inner_s:9.1f}{inner_rss:9.0f} MB")
    print(f"{'naive: read all, encode in memory':34}{naive_s:9.2f}{size / naive_s:9.1f}{naive_rss:9.0f} MB")
    print(f"{'charlstm prepare command':34}{prep_s:9.2f}{size / prep_s:9.1f}{prep_rss:9.0f} MB")
    print(f"{'charlstm prepare, cached':34}{again_s:9.1f}{size / again_s:9.1f}{'':>11}")
    print(f"{'charlstm train, ' + str(args.train_steps) + ' steps (mmap ids)':34}{train_s:9.1f}{'':>9}{train_rss:9.0f} MB")
    print("\nThe two command rows include starting Python and importing torch; the first two time the work alone.")


if __name__ == "__main__":
    main()
