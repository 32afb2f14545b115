"""The memorisation check on a large corpus: building the suffix array, and checking a 2,000-character text.

    python benchmarks/novelty.py [--mb 110] [--check-chars 2000] [--brute-chars 2000000]

Builds the ≥100 MB corpus of benchmarks/prepare.py (tiny-shakespeare and the bundled corpora,
repeated), prepares it into a run folder's id cache, then times, in this one process:
* `novelty.suffix_array` over the whole corpus (and the peak RSS it reached);
* `CorpusIndex.check` of a 2,000-character text (half copied from the corpus, half shuffled) over
  the whole corpus;
* the baseline, a brute-force check by Python's `in` (for each position, grow the match while the
  substring is in the corpus string) over the first --brute-chars characters only, against the
  index over that same prefix; both must give the same figures.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import machine
from prepare import build_corpus


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=110)
    parser.add_argument("--check-chars", type=int, default=2000)
    parser.add_argument("--brute-chars", type=int, default=2_000_000)
    args = parser.parse_args()

    from charlstm.data import prepare
    from charlstm.novelty import NGRAM_SIZES, CorpusIndex, suffix_array

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        files = build_corpus(Path(tmp), args.mb)
        corpus = prepare([str(f) for f in files], cache_dir=f"{tmp}/run")
        ids, chars = corpus.ids, corpus.vocab.chars
        print(f"corpus: {files[0].stat().st_size / 1e6:,.1f} MB, {len(ids):,} characters, ids {ids.dtype}\n")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        sa = suffix_array(ids)
        build_s = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
          f"peak RSS {rss_after:,.0f} MB (was {rss_before:,.0f} MB before)")
    print(f"{f'check {len(text):,} chars against the whole corpus':52}{check_s:10.3f}")
    print(f"{f'check against the first {len(prefix_ids):,} chars, index':52}{fast_s:10.3f}")
    print(f"{f'check against the first {len(prefix_ids):,} chars, brute-force in':52}{brute_s:10.3f}"
          f"   ({brute_s / max(fast_s, 1e-9):,.0f}× the index; same figures)")
    shares = ", ".join(f"{n}-grams {100 * full.share(n):.1f}%" for n in NGRAM_SIZES)
    print(f"\nwhole corpus: longest copied {full.longest.length:,} characters; {shares}")


if __name__ == "__main__":
    main()
