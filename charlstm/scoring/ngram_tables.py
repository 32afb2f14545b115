"""The n-gram model's hashed count tables: bounded memory whatever the corpus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

# The largest N of `--baseline ngram:N`, owned by config (the command line shows it without numpy).
from ..config import MAX_NGRAM_ORDER as MAX_ORDER  # noqa: F401  (ngram reads it here)

#: Buckets each context length adds to the budget of each kind of table (contexts, pairs), at most.
MAX_BUCKETS = 1 << 20


#: The fewest it adds (small corpora): keeps chance collisions rare on a tiny text.
MIN_BUCKETS = 1 << 16


#: Buckets a key may try, from its home bucket on, before it is lost to a full table.
PROBES = 8


#: Distinct hashes the sizing pass keeps per context length to estimate how many keys it has.
SKETCH = 1 << 12


#: Training positions counted at a time.
BUILD_CHUNK = 1 << 18


#: Probabilities computed at a time when querying: rows × vocabulary, at most.
QUERY_CELLS = 1 << 20


#: D1, D2, D3+ where count of counts cannot estimate them (KenLM's --discount_fallback).
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


_STEP = np.uint64(0x100000001B3)                  # rolling-hash multiplier (odd: invertible mod 2**64)


_PAIR = np.uint64(0x9E3779B97F4A7C15)


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)


_ONE = np.uint32(1)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of x spread over the whole word (uint64 in, uint64 out)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _slots(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(home bucket, tag) of each key hash in a table of `size` buckets: the home from the top 32
    bits of the mixed hash (scaled to the size, which need not be a power of two), a 16-bit tag from
    1 to 65535 from its bottom bits, which tells the key that owns a bucket from others."""
    x = _mix(key)
    home = ((x >> _S32) * np.uint64(size)) >> _S32
    return home.astype(np.intp), np.maximum(x.astype(np.uint16), np.uint16(1))   # (tag 0 means empty)


def _context_key(g: np.ndarray, k: int) -> np.ndarray:
    return g + np.uint64(k)


def _pair_key(g: np.ndarray, chars: np.ndarray, k: int) -> np.ndarray:
    return g * _PAIR + chars + np.uint64(k << 32)


def _probe(home: np.ndarray, step: int, size: int) -> np.ndarray:
    """The step-th bucket after each home bucket, wrapping round the end of the table."""
    if not step:
        return home
    bucket = home + step
    bucket[bucket >= size] -= size
    return bucket


def _claim(tags: np.ndarray, home: np.ndarray, tag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bucket each key owns (−1: none) and whether it claimed it just now (the key is new to the
    table). A key tries its home bucket and the PROBES − 1 after it, and stops at the first that
    holds its tag or is empty (it takes that one; of keys that land in the same empty bucket at once,
    one takes it and the others go on). So a frequent key is not lost to one rare key that hashed
    alike, and a key finds no bucket only once its PROBES buckets all belong to others."""
    slot = np.full(len(home), -1, dtype=np.intp)
    claimed = np.zeros(len(home), dtype=bool)
    todo = np.arange(len(home))
    for step in range(PROBES):
        bucket = _probe(home, step, len(tags))
        held = tags[bucket]
        empty = held == 0
        tags[bucket] = np.where(empty, tag, held)          # (keys that found a bucket taken write it back)
        mine = tags[bucket] == tag
        hit, rest = np.flatnonzero(mine), np.flatnonzero(~mine)
        slot[todo[hit]] = bucket[hit]
        claimed[todo[hit[empty[hit]]]] = True
        if not len(rest):
            break
        todo, home, tag = todo[rest], home[rest], tag[rest]
    return slot, claimed


def _find(tags: np.ndarray, home: np.ndarray, tag: np.ndarray) -> np.ndarray:
    """The bucket each key owns (−1: none), along the path `_claim` took: an empty bucket ends it.
    Most keys end at their home bucket, so that step is done on whole arrays."""
    held = tags[home]
    slot = np.where(held == tag, home, -1)
    todo = np.flatnonzero((held != tag) & (held != 0))
    home, tag, flat = home.ravel()[todo], tag.ravel()[todo], slot.reshape(-1)
    for step in range(1, PROBES):
        if not len(todo):
            break
        bucket = _probe(home, step, len(tags))
        held = tags[bucket]
        hit = held == tag
        flat[todo[hit]] = bucket[hit]
        rest = ~hit & (held != 0)
        todo, home, tag = todo[rest], home[rest], tag[rest]
    return slot


def _first_of_each(bucket: np.ndarray, mask: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """The positions where `mask` holds, one per bucket (a key repeated within a chunk claims its
    bucket once): `scratch` (one entry a bucket) keeps the last position written to each."""
    where = np.flatnonzero(mask)
    scratch[bucket[where]] = where
    return where[scratch[bucket[where]] == where]


def table_buckets(train_chars: int, max_buckets: int = MAX_BUCKETS) -> int:
    """Buckets each context length adds to the tables: a power of two, about 4 per training
    position, from MIN_BUCKETS up to max_buckets (rounded down to a power of two), whatever the
    corpus size."""
    cap = 1 << max(0, int(max_buckets).bit_length() - 1)
    want = 1 << max(0, (4 * max(train_chars, 1) - 1).bit_length())
    return max(2, min(cap, max(want, MIN_BUCKETS)))


class _Distinct:
    """How many distinct keys a stream of key hashes holds, in bounded memory: the distinct mixed
    hashes below a limit are kept (at most SKETCH of them; the limit comes down to keep it so), and
    their number scaled by the share of all hashes below the limit is the estimate (exact for a
    text of at most 8 × SKETCH positions, whose limit starts above every hash)."""

    def __init__(self, positions: int):
        self.limit = np.uint64(min(2**64 - 1, (2**64 // max(positions, 1)) * 8 * SKETCH))
        self.kept = np.zeros(0, dtype=np.uint64)

    def add(self, x: np.ndarray) -> None:
        self.kept = np.unique(np.concatenate([self.kept, x[x < self.limit]]))
        if len(self.kept) > SKETCH:
            self.limit, self.kept = self.kept[SKETCH], self.kept[:SKETCH]

    @property
    def estimate(self) -> int:
        return int(len(self.kept) * (2**64 / (float(self.limit) + 1)))


def _distinct_pairs(ids: np.ndarray, top: int, chunk: int) -> list[int]:
    """Estimated distinct (context, character) pairs of each context length 1 … top in ids."""
    sketches = [_Distinct(len(ids)) for _ in range(top)]
    for start in range(0, len(ids), chunk):
        stop = min(len(ids), start + chunk)
        wide = ids[start:stop].astype(np.uint64)
        for k, first, g in _context_hashes(ids, start, stop, top):
            sketches[k - 1].add(_mix(_pair_key(g, wide[first:], k)))
    return [s.estimate for s in sketches]


def _shares(need: list[int], budget: int) -> list[int]:
    """Buckets of each table, `budget` in all. Each context length wants twice its distinct keys (a
    table half full, where probing seldom fails). When all fit, each gets its want scaled up to the
    budget. Otherwise the short contexts, whose few keys are each seen often, get theirs, shortest
    first, while the budget lasts, and the longer ones share what is left (benchmarks/README.md,
    "The n-gram baseline's tables")."""
    want = [2 * max(1, n) for n in need]
    if sum(want) <= budget:
        share = [w * budget // sum(want) for w in want]
    else:
        share, left = [], budget
        for i, w in enumerate(want):
            if w > left:
                share += [max(1, left // (len(want) - i))] * (len(want) - i)
                break
            share.append(w)
            left -= w
    share[share.index(max(share))] += budget - sum(share)
    return share


def discounts(count_of_counts) -> np.ndarray:
    """D1, D2, D3+ of one order from n1 … n4 (how many keys have count 1 … 4): Chen & Goodman's
    estimate, which makes the discounted mass match what held-out counts would give; where it is
    undefined or out of (0, i] (tiny or odd tables), FALLBACK_DISCOUNTS. Positive, so that a seen
    context always leaves mass for characters it was never followed by."""
    n = [float(x) for x in count_of_counts]
    out = np.array(FALLBACK_DISCOUNTS)
    if n[0] + 2 * n[1] > 0:
        y = n[0] / (n[0] + 2 * n[1])
        for i in (1, 2, 3):
            if n[i - 1] > 0:
                d = i - (i + 1) * y * n[i] / n[i - 1]
                if 0 < d <= i:
                    out[i - 1] = d
    return out


def _count_of_counts(counts: np.ndarray) -> np.ndarray:
    """n1 … n4: how many keys of a table have count 1, 2, 3, 4."""
    return np.bincount(np.minimum(counts, 5).astype(np.intp), minlength=6)[1:5]


def _interpolate(counts: np.ndarray, total: np.ndarray, cut: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """One order of interpolated Kneser–Ney for r seen contexts: counts (r, V) a(h c) (unsigned
    integers), total (r,) a(h) (at least Σ_c a(h c)), cut (4,) the discount of a count 0, 1, 2, ≥ 3,
    lower (r, V) the shorter context's P. Rows sum to 1 when `lower`'s do: what is cut, and what
    lost pairs held, goes to `lower`."""
    d = np.take(cut, np.minimum(counts, 3))
    gamma = d.sum(axis=1) + (total - counts.sum(axis=1))
    out = lower * gamma[:, None]
    out += counts
    out -= d
    out /= total[:, None]
    return out


def _context_hashes(ids: np.ndarray, start: int, stop: int, orders: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """For targets t in [start, stop): (k, first, g) for k = 1 … orders, where g[i] hashes the k
    characters ids[t − k : t] of target t = start + first + i (targets with fewer than k characters
    before them, t < k, are left out: `first` of them)."""
    low = max(0, start - orders)
    window = ids[low:stop].astype(np.uint64)
    offset, n = start - low, stop - start
    g = np.zeros(n, dtype=np.uint64)
    for k in range(1, orders + 1):
        first = min(n, max(0, k - start))
        if first == n:
            return
        g[first:] = g[first:] * _STEP + window[offset - k + first : offset - k + n] + np.uint64(1)
        yield k, first, g[first:]


@dataclass
class _Tables:
    """The hashed tables of context lengths 1 … N − 1 (index k − 1), and the build's scratch."""

    context_tags: list[np.ndarray]     # uint16: the tag of the context owning a bucket, 0 if none
    context_counts: list[np.ndarray]   # uint32: a(h) of that context
    pair_tags: list[np.ndarray]        # uint16: the same for (context, character) pairs
    pair_counts: list[np.ndarray]      # uint32: a(h c)
    scratch: np.ndarray                # building only: a position per bucket of the largest pair table

    @classmethod
    def planned(cls, ids: np.ndarray, vocab_size: int, order: int, buckets: int, chunk: int) -> "_Tables":
        """Empty tables, (order − 1) × buckets of each kind, shared among the context lengths by
        `_shares` from the estimated distinct keys of each (the distinct contexts of length k are
        the distinct pairs of length k − 1, and at most V for k = 1)."""
        pairs = _distinct_pairs(ids, order - 1, chunk)
        contexts = [vocab_size, *pairs[:-1]]
        context_sizes, pair_sizes = (_shares(need, (order - 1) * buckets) for need in (contexts, pairs))
        return cls([np.zeros(n, dtype=np.uint16) for n in context_sizes],
                   [np.zeros(n, dtype=np.uint32) for n in context_sizes],
                   [np.zeros(n, dtype=np.uint16) for n in pair_sizes],
                   [np.zeros(n, dtype=np.uint32) for n in pair_sizes],
                   np.zeros(max(pair_sizes), dtype=np.min_scalar_type(-chunk)))   # holds any position of a chunk


@dataclass
class _Slots:
    """The buckets the keys of one context length k own in one chunk."""

    k: int
    first: int
    context: np.ndarray     # the bucket each context owns, −1 for none
    pair: np.ndarray        # the bucket each pair owns, −1 for none


def _add(counts: np.ndarray, slot: np.ndarray) -> None:
    """One more to the count of each bucket a key owns (−1, no bucket: nothing)."""
    np.add.at(counts, slot[slot >= 0], _ONE)


def _credit(tables: _Tables, at: _Slots, where: np.ndarray) -> None:
    """One more distinct character before the pairs (and their contexts) at positions `where` of
    context length at.k: continuation counts."""
    _add(tables.pair_counts[at.k - 1], at.pair[where])
    _add(tables.context_counts[at.k - 1], at.context[where])


def _count_chunk(ids: np.ndarray, start: int, stop: int, top: int, tables: _Tables | None,
                 unigram: np.ndarray) -> None:
    """Count the targets ids[start:stop]: raw counts at context length `top` (N − 1), continuation
    counts below it and in `unigram` (raw there only when N = 1). A pair (x h c) of length k that
    claims a bucket was never seen before, so h c of length k − 1 gains a character before it; one
    that finds no bucket (a full table) may be new and is counted as new, so that where the long
    n-grams do not fit the shorter ones count what the model falls back to them for. The pair at
    the very start of the text (target t = k) has no character before it and counts once."""
    targets = ids[start:stop]
    if top == 0:
        unigram += np.bincount(targets, minlength=len(unigram))
        return
    if start == 0:
        unigram[ids[0]] += 1
    wide, below = targets.astype(np.uint64), None
    for k, first, g in _context_hashes(ids, start, stop, top):
        tags = tables.context_tags[k - 1]
        context, _ = _claim(tags, *_slots(_context_key(g, k), len(tags)))
        tags = tables.pair_tags[k - 1]
        pair, claimed = _claim(tags, *_slots(_pair_key(g, wide[first:], k), len(tags)))
        here = _Slots(k, first, context, pair)
        if k == top:
            _add(tables.context_counts[k - 1], context)
            _add(tables.pair_counts[k - 1], pair)
        elif start <= k:
            _credit(tables, here, np.zeros(1, dtype=np.intp))
        new = np.concatenate([_first_of_each(pair, claimed, tables.scratch), np.flatnonzero(pair < 0)])
        if below is None:
            unigram += np.bincount(targets[first + new], minlength=len(unigram))
        else:
            _credit(tables, below, new + (first - below.first))
        below = here
