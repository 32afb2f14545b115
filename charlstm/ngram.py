"""The character n-gram baseline of `charlstm score --baseline ngram:N`, built from a run's training text.

`NgramModel` is an interpolated modified Kneser–Ney character model (Chen & Goodman 1998) of order
N: N − 1 characters of context, N from 1 to MAX_ORDER = 20, as in Karpathy, Johnson & Fei-Fei 2015,
§4.3. For a context h of k characters (h' is h without its oldest character):

    P_k(c | h) = (a(h c) − D_k(a(h c)) + γ(h) · P_{k−1}(c | h')) / a(h)   when h was seen
    P_k(c | h) = P_{k−1}(c | h')                                           when it was not
    P_0(c)     = (a(c) − D_0(a(c)) + γ · 1 / V) / a                       (interpolated with uniform)
    γ(h)       = Σ_c D_k(a(h c)) + (a(h) − Σ_c a(h c))

At the top order (k = N − 1) the counts are raw: a(h c) = C(h c), the times c followed h in the
training text, and a(h) = C(h). Below it they are continuation counts: a(h c) = N1+(· h c), how
many distinct characters came before h c (the start of the text counting as one), and
a(h) = Σ_c a(h c): a shorter context is asked when the longer one was rare, and then what counts is
in how many contexts c followed h, not how often. D_k(a) is 0 for a = 0 and D1, D2 or D3+ for
a = 1, 2, ≥ 3, estimated for each k from its count of counts n_i (keys with count i):
Y = n1 / (n1 + 2 n2), D_i = i − (i + 1) · Y · n_{i+1} / n_i; an estimate that is undefined or
outside (0, i] becomes i / 2 (KenLM's fallback). Every discount is positive, so a seen context
always passes mass down, and the uniform 1 / V reaches every character of the checkpoint's
vocabulary, one the training split never holds included: every character gets p > 0 at every
position, and they sum to 1. The last term of γ is 0 unless pairs were lost to full tables (below).
Witten–Bell, the smoothing this replaced, got worse above N ≈ 7 on held-out text; this one keeps
improving or levels off up to N = 20 (benchmarks/ngram.py measures both corpora).

Memory is bounded whatever the corpus, by the same bound as Witten–Bell's: hashed tables of context
counts and of (context, character) pair counts for each context length k = 1 … N − 1, (N − 1) ×
`buckets` buckets of each kind in all (`buckets` = table_buckets: about 4 per training position,
from MIN_BUCKETS to MAX_BUCKETS = 2**20); a bucket holds a 16-bit tag of the key owning it and a
32-bit count (raw at the top order, continuation below): 12 MiB an order, 228 MiB for N = 20.
Kneser–Ney needs no table more: n1, n2, n3+ of a context come from the counts of its pairs with all
V characters, which the query reads anyway, and a continuation count rises when a pair of the next
longer context claims its bucket (a character never seen before h c). A first pass estimates the
distinct keys of each context length (SKETCH hashes each) and `_shares` sizes the tables from that,
short contexts first. Building also holds 4 bytes per bucket of the largest pair table (at most a
third of the tables) and the working set of one BUILD_CHUNK of positions: 38–50 MiB together beside
the tables (tracemalloc's peak, N = 5 and 20, 1.1 and 4 MB corpora), besides the training ids (1 byte
a character for a vocabulary of up to 256, 2 beyond: 64 MiB for a 64 MiB ASCII corpus).

Counting is numpy-vectorised: a rolling 64-bit hash of each order's context, one chunk of positions
at a time. A key takes the first of PROBES buckets from its home that is empty or already its own;
one that finds them all taken is not counted: a context then reads as unseen and the model backs off;
a pair reads as unseen and its share of a(h) goes down with γ; and, as the lower order cannot tell
whether it was new, it counts as a new character before h c, so that where long n-grams do not fit
the shorter ones count every time the model falls back to them (measured on 3.8 MB of Python at
N = 20: 0.435 bits/char held out, 0.799 without). That only happens in full tables (large corpora, high
orders): the model gets weaker there, like a pruned one, and its probabilities still sum to 1.
Without lost keys it is exactly the formula above (tests/test_ngram.py pins it to a brute-force count).

`run_baseline` builds the model from the training split of a run (the part before the validation
tail, exactly as `data.split` cut it) and compares it with the LSTM on a text (erroranalysis.py).
Knows nothing of the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import CorpusError, NeuronError

#: The largest N of `--baseline ngram:N` (the paper's n-grams go up to 20).
MAX_ORDER = 20
#: Buckets each context length adds to the budget of each kind of table (contexts, pairs), at most.
MAX_BUCKETS = 1 << 20
#: The fewest it adds (small corpora): keeps chance collisions rare on a tiny text.
MIN_BUCKETS = 1 << 16
#: Buckets a key may try, from its home bucket on, before it is lost to a full table (3.8 MB of
#: Python at N = 20: 0.435 bits/char held out with 8, 0.491 with 4).
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
    first, while the budget lasts, and the longer ones share what is left: measured on 3.8 MB of
    Python at N = 20, 0.435 bits/char held out, against 0.709 for tables in proportion to need."""
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


@dataclass(frozen=True)
class NgramScore:
    """What the n-gram model makes of a text, for each predicted character t = 1 … T − 1 (the first
    is context only, as for the LSTM): p[t − 1] = P_{N−1}(text[t] | up to N − 1 characters before it),
    best_p[t − 1] = the largest of P_0 … P_{N−1} of that character (the paper's 'any n-gram of
    order 1 … N' oracle; the lower orders are the ones the model interpolates, on continuation
    counts), predicted[t − 1] = the id the model finds most likely there."""

    p: np.ndarray           # (T − 1,)
    best_p: np.ndarray      # (T − 1,)
    predicted: np.ndarray   # (T − 1,)

    @property
    def bits(self) -> np.ndarray:
        return -np.log2(self.p)

    @property
    def bits_per_char(self) -> float:
        return float(self.bits.mean()) if len(self.p) else float("nan")


class NgramModel:
    """Hashed counts of a training text, answering P(c | context) for every c of the vocabulary."""

    def __init__(self, order: int, vocab_size: int, unigram: np.ndarray, context_tags: list[np.ndarray],
                 context_counts: list[np.ndarray], pair_tags: list[np.ndarray], pair_counts: list[np.ndarray],
                 buckets: int, train_chars: int):
        self.order, self.vocab_size, self.train_chars = order, vocab_size, train_chars
        self.buckets = buckets                      # what each context length adds to each kind of table
        self.unigram = unigram                      # (V,) a(c): continuation counts, raw when N = 1
        # order − 1 tables each (context length k at k − 1): the tag of the context / pair owning a
        # bucket (0: empty), and its count a()
        self.context_tags, self.context_counts = context_tags, context_counts
        self.pair_tags, self.pair_counts = pair_tags, pair_counts
        # (N, 3): D1, D2, D3+ of each context length 0 … N − 1
        self.discounts = np.stack([discounts(_count_of_counts(c)) for c in (unigram, *pair_counts)])
        self._cuts = np.hstack([np.zeros((order, 1)), self.discounts])             # a count 0 loses nothing
        self.base = _interpolate(unigram[None, :], np.array([float(unigram.sum())]),
                                 self._cuts[0], np.full((1, vocab_size), 1.0 / vocab_size))[0]   # (V,) P_0

    @classmethod
    def build(cls, ids: np.ndarray, vocab_size: int, order: int, max_buckets: int = MAX_BUCKETS,
              chunk: int = BUILD_CHUNK) -> "NgramModel":
        """Count the ids (a training text) for an order-`order` model: a pass that sizes the tables,
        (order − 1) × table_buckets(len(ids), max_buckets) buckets of each kind, then one that
        counts, `chunk` positions at a time."""
        if not 1 <= order <= MAX_ORDER:
            raise NeuronError(f"an n-gram order must be from 1 to {MAX_ORDER}, not {order}")
        if len(ids) < 1:
            raise CorpusError("the training text is empty: nothing to build an n-gram model from")
        if len(ids) and int(ids.max()) >= vocab_size:
            raise NeuronError("the training text has ids beyond the vocabulary")
        buckets = table_buckets(len(ids), max_buckets) if order > 1 else 0
        tables = _Tables.planned(ids, vocab_size, order, buckets, chunk) if order > 1 else None
        unigram = np.zeros(vocab_size, dtype=np.int64)
        for start in range(0, len(ids), chunk):
            _count_chunk(ids, start, min(len(ids), start + chunk), order - 1, tables, unigram)
        if tables is None:
            return cls(order, vocab_size, unigram, [], [], [], [], buckets, len(ids))
        return cls(order, vocab_size, unigram, tables.context_tags, tables.context_counts, tables.pair_tags,
                   tables.pair_counts, buckets, len(ids))

    @property
    def nbytes(self) -> int:
        """Bytes the count tables hold (they do not grow with the corpus beyond MAX_BUCKETS a context length)."""
        tables = (*self.context_tags, *self.context_counts, *self.pair_tags, *self.pair_counts)
        return sum(t.nbytes for t in tables) + self.unigram.nbytes

    def _rows(self, ids: np.ndarray, start: int, stop: int, targets: np.ndarray | None = None):
        """(probabilities (m, V), best (m,) or None) for the targets t in [start, stop) of ids:
        P(· | ids[max(0, t − N + 1) : t]), and with `targets` the best P_k of targets[i] over k."""
        m, V = stop - start, self.vocab_size
        probs = np.tile(self.base, (m, 1))                                            # (m, V)
        best = self.base[targets].copy() if targets is not None else None
        every = np.arange(V, dtype=np.uint64)
        for k, first, g in _context_hashes(ids, start, stop, self.order - 1):
            tags = self.context_tags[k - 1]
            context = _find(tags, *_slots(_context_key(g, k), len(tags)))
            seen = np.flatnonzero(context >= 0)
            if not len(seen):
                continue
            context_total = self.context_counts[k - 1][context[seen]].astype(np.float64)               # (r,) a(h)
            tags = self.pair_tags[k - 1]
            pair = _find(tags, *_slots(_pair_key(g[seen, None], every[None, :], k), len(tags)))         # (r, V)
            counts = np.where(pair >= 0, self.pair_counts[k - 1][pair], np.uint32(0))                  # (r, V)
            # a(h) below Σ a(h c) only if a chance tag match lent a pair another's count: count what was found
            total = np.maximum(context_total, counts.sum(axis=1))
            keep = total > 0
            rows = first + seen[keep]
            probs[rows] = _interpolate(counts[keep], total[keep], self._cuts[k], probs[rows])
            if best is not None:
                best[rows] = np.maximum(best[rows], probs[rows, targets[rows]])
        return probs, best

    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        """(T, V): row t is P(· | the up to N − 1 ids before t), for every t (row 0: the unigram).
        For small texts (tests, inspection); `score` reads long texts in bounded memory."""
        ids, step = np.asarray(ids), self._step()
        if not len(ids):
            return np.zeros((0, self.vocab_size))
        return np.concatenate([self._rows(ids, s, min(len(ids), s + step))[0] for s in range(0, len(ids), step)])

    def score(self, ids: np.ndarray) -> NgramScore:
        """The n-gram's view of ids[1:] given what precedes each (see NgramScore), in chunks."""
        ids = np.asarray(ids)
        p, best, predicted = [], [], []
        for start in range(1, len(ids), self._step()):
            stop = min(len(ids), start + self._step())
            targets = ids[start:stop].astype(np.intp)
            probs, top = self._rows(ids, start, stop, targets)
            p.append(probs[np.arange(len(targets)), targets])
            best.append(top)
            predicted.append(probs.argmax(axis=1))
        if not p:
            raise NeuronError("need at least 2 characters to score (the first one is only context)")
        return NgramScore(np.concatenate(p), np.concatenate(best), np.concatenate(predicted))

    def _step(self) -> int:
        return max(1, QUERY_CELLS // self.vocab_size)




# ------------------------------------------------------------------------------ a run's training text


def training_ids(loaded) -> np.ndarray:
    """The ids (in the checkpoint's vocabulary) of the text the loaded model trained on: its corpus
    files read again, checked to be the same text (by fingerprint, when the checkpoint has one), and
    cut where `data.split` cut it, so the validation tail stays out of the baseline as it stayed out
    of training. A missing or changed corpus is a one-line error."""
    from .data import prepare, split
    from .errors import CheckpointError
    from .texts import training_corpus

    corpus = training_corpus(loaded)
    if not corpus.paths:
        raise NeuronError("this checkpoint does not record the corpus it was trained on; the n-gram baseline is "
                          "built from that text")
    if any(str(p) == "-" for p in corpus.paths):
        raise CorpusError("this model was trained on standard input, which cannot be read again; the n-gram "
                          "baseline is built from the training text")
    for path in corpus.paths:
        if not path.is_file():
            raise CorpusError(f"{path}: the training corpus is gone; the n-gram baseline is built from it (put it "
                              "back, or score without --baseline)")
    prepared = prepare([str(p) for p in corpus.paths], encoding=corpus.encoding, cache_dir=None)
    try:
        recorded = loaded.run_info.corpus_fingerprint if loaded.run_info is not None else None
    except CheckpointError:
        recorded = None
    changed = CorpusError(f"{corpus.paths[0]}{' and others' if len(corpus.paths) > 1 else ''}: the training corpus "
                          "changed since the model was trained; the n-gram baseline must be built from the same text")
    if recorded is not None and recorded != prepared.fingerprint:
        raise changed
    ids = prepared.ids
    if prepared.vocab.chars != loaded.vocab.chars:
        # every character of the corpus, in the checkpoint's ids; a vocabulary that folds rare
        # characters into one unknown symbol reads them as that symbol, as training did
        index, unknown = loaded.vocab.index, getattr(loaded.vocab, "unknown_char", None)
        if any(c not in index for c in prepared.vocab.chars) and unknown is None:
            raise changed
        table = np.array([index.get(c, index.get(unknown, -1)) for c in prepared.vocab.chars], dtype=np.int64)
        ids = table[ids]
    train, _ = split(ids, corpus.val_fraction)
    return train


@dataclass(frozen=True)
class Baseline:
    """An n-gram baseline built for a run, and what it was built from."""

    model: NgramModel
    train_ids: np.ndarray


def build_baseline(loaded, order: int, max_buckets: int = MAX_BUCKETS) -> Baseline:
    """The order-`order` n-gram model of the loaded run's training split."""
    train = training_ids(loaded)
    return Baseline(NgramModel.build(train, len(loaded.vocab), order, max_buckets), train)


def run_baseline(loaded, model, text: str, order: int, max_buckets: int = MAX_BUCKETS):
    """`charlstm score --baseline ngram:N`: the LSTM and the n-gram of the run's training text on
    `text` (already checked against the vocabulary), compared (an erroranalysis.Comparison)."""
    from .erroranalysis import compare, word_counts
    from .score import score_text

    baseline = build_baseline(loaded, order, max_buckets)      # first: a missing corpus is reported at once
    lstm = score_text(model, loaded.vocab, text)
    ids = loaded.vocab.encode(text)
    ngram = baseline.model.score(ids)
    counts = word_counts(text, baseline.train_ids, loaded.vocab.chars)
    return compare(text, ids, lstm_bits=lstm.bits, lstm_predicted=lstm.predicted, ngram=ngram, order=order,
                   word_counts=counts, info={"buckets": baseline.model.buckets, "table_bytes": baseline.model.nbytes,
                                             "training_chars": int(len(baseline.train_ids)),
                                             "smoothing": "interpolated modified Kneser-Ney"})
