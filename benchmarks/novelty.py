"""The memorisation check on a large corpus: building the suffix array, and checking a 2,000-character text.

    python benchmarks/novelty.py [--mb 110] [--check-chars 2000] [--brute-chars 2000000]

Builds the ≥100 MB corpus of benchmarks/prepare.py (tiny-shakespeare and the bundled corpora,
repeated; Chinese included, so its ids are 16-bit), prepares it into a run folder's id cache, then:
* in a fresh process, so that its peak RSS is the build's own: opens the run's ids memory-mapped as
  `charlstm sample --novelty` does, times `novelty.suffix_array` over the whole corpus and caches
  it in the run (`IndexCache.store`); beside it, as a yardstick in that same process, one
  `np.argsort` of the ids as int64 keys (one round of a sort-based builder such as the numpy prefix
  doubling this replaced, which needed a round for every doubling of the longest repeat);
* in this process, with the index loaded memory-mapped from the run (`IndexCache.load`), as the
  CLI finds it: `CorpusIndex.check` of a 2,000-character text (half copied from the corpus, half
  shuffled) over the whole corpus;
* the baseline for the check, a brute-force search by Python's `in` (for each position, grow the
  match while the substring is in the corpus string) over the first --brute-chars characters only,
  against the index over that same prefix; both must give the same figures.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine
from prepare import build_corpus

#: The child that builds and caches the index: prints the seconds of the build, of caching it and of
#: the yardstick, its RSS just before building and its peak RSS after the build (MB), and what
#: caching said. The peak is the kernel's high-water mark of the child's own memory (VmHWM), which
#: starts afresh at exec: rusage's maxrss would carry over the parent's, forked before the exec.
BUILD = """
import sys, time
import numpy as np
sys.path.insert(0, {root!r})
from charlstm.scoring.novelty import suffix_array
from charlstm.runs.caches import CorpusCache, IndexCache
from charlstm.runs.folder import Run
import pydivsufsort  # loaded before the clock starts, as its code is part of "before"
run = Run({run!r})
ids = CorpusCache(run).cached()[0]
def status(field):
    line = next(x for x in open("/proc/self/status") if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024
rss = status("VmRSS")
start = time.perf_counter()
sa = suffix_array(ids)
build = time.perf_counter() - start
peak = status("VmHWM")
start = time.perf_counter()
cached = IndexCache(run).store(sa)
store = time.perf_counter() - start
del sa
start = time.perf_counter()
np.argsort(ids.astype(np.int64))
print(build, store, time.perf_counter() - start, rss, peak, cached)
"""


def brute_lengths(corpus: str, text: str) -> list[int]:
    out = []
    for i in range(len(text)):
        length = 0
        while i + length < len(text) and text[i : i + length + 1] in corpus:
            length += 1
        out.append(length)
    return out


def probe_text(corpus_chars: list[str], ids, length: int, seed: int = 0) -> str:
    """Half copied from the corpus (a stretch near its middle), half the same characters shuffled."""
    rng = random.Random(seed)
    start = len(ids) // 2
    copied = "".join(corpus_chars[int(i)] for i in ids[start : start + length // 2])
    shuffled = list("".join(corpus_chars[int(i)] for i in ids[start + length : start + length + length - len(copied)]))
    rng.shuffle(shuffled)
    return copied + "".join(shuffled)


def build_index(run: str) -> tuple[float, float, float, float, float]:
    """Seconds of the build, of caching it and of the argsort yardstick; the child's RSS before
    the build and its peak RSS (MB)."""
    code = BUILD.format(root=str(ROOT), run=run)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    words = child.stdout.split()
    if child.returncode != 0 or words[5:] != ["built", "and", "cached"]:
        sys.exit(f"the index build failed: {child.stdout}\n{child.stderr[-2000:]}")
    build_s, store_s, sort_s, rss_before, rss_peak = map(float, words[:5])
    return build_s, store_s, sort_s, rss_before, rss_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=110)
    parser.add_argument("--check-chars", type=int, default=2000)
    parser.add_argument("--brute-chars", type=int, default=2_000_000)
    args = parser.parse_args()

    from charlstm.data.corpus import prepare
    from charlstm.runs.caches import CorpusCache, IndexCache
    from charlstm.runs.folder import Run
    from charlstm.scoring.novelty import NGRAM_SIZES, CorpusIndex

    print(f"machine: {machine()}; load {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        files = build_corpus(Path(tmp), args.mb)
        corpus = prepare([str(f) for f in files], cache=CorpusCache(Run(f"{tmp}/run")))
        ids, chars = corpus.ids, corpus.vocab.chars
        print(f"corpus: {files[0].stat().st_size / 1e6:,.1f} MB, {len(ids):,} characters, ids {ids.dtype}\n")
        build_s, store_s, sort_s, rss_before, rss_peak = build_index(f"{tmp}/run")
        sa, how = IndexCache(Run(f"{tmp}/run")).load()
        if sa is None:
            sys.exit(f"the cached index did not load: {how}")
        index = CorpusIndex(ids, sa)
        text = probe_text(chars, ids, args.check_chars)
        started = time.perf_counter()
        full = index.check(text, chars)
        check_s = time.perf_counter() - started

        prefix_ids = ids[: args.brute_chars]
        prefix = "".join(chars[int(i)] for i in prefix_ids)
        small = CorpusIndex.build(prefix_ids)
        started = time.perf_counter()
        fast = small.check(text, chars)
        fast_s = time.perf_counter() - started
        started = time.perf_counter()
        brute = brute_lengths(prefix, text)
        brute_s = time.perf_counter() - started
        if fast.lengths.tolist() != brute:
            sys.exit("the index and the brute-force search disagree")

    print(f"{'':52}{'seconds':>10}")
    print(f"{'suffix array of the whole corpus':52}{build_s:10.2f}   "
          f"peak RSS {rss_peak:,.0f} MB (was {rss_before:,.0f} MB before)")
    print(f"{'caching it in the run (IndexCache.store)':52}{store_s:10.2f}")
    print(f"{'np.argsort of the ids as int64 (yardstick)':52}{sort_s:10.2f}   "
          f"(the build is {build_s / sort_s:.1f}× one argsort)")
    print(f"{f'check {len(text):,} chars against the whole corpus':52}{check_s:10.3f}")
    print(f"{f'check against the first {len(prefix_ids):,} chars, index':52}{fast_s:10.3f}")
    print(f"{f'check against the first {len(prefix_ids):,} chars, brute-force in':52}{brute_s:10.3f}"
          f"   ({brute_s / max(fast_s, 1e-9):,.0f}× the index; same figures)")
    shares = ", ".join(f"{n}-grams {100 * full.share(n):.1f}%" for n in NGRAM_SIZES)
    print(f"\nwhole corpus: longest copied {full.longest.length:,} characters; {shares}")


if __name__ == "__main__":
    main()
