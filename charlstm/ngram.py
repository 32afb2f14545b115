"""The character n-gram baseline of `charlstm score --baseline ngram:N`, built from a run's training text.

`NgramModel` is an interpolated Witten–Bell character model of order N (N − 1 characters of
context, N from 1 to MAX_ORDER = 20, as in Karpathy, Johnson & Fei-Fei 2015, §4.3):

    P_0(c)     = (C(c) + T_0 / V) / (C + T_0)                          (unigram, interpolated with uniform)
    P_k(c | h) = (C(h c) + T(h) · P_{k−1}(c | h')) / (C(h) + T(h))     when h (k characters) was seen
    P_k(c | h) = P_{k−1}(c | h')                                        when it was not

where h' is h without its oldest character, C(h c) the times c followed h in the training text,
C(h) = Σ_c C(h c) and T(h) the number of distinct characters that followed h. Every character of
the checkpoint's vocabulary gets a probability at every position, a character the training split
never holds included (through the uniform 1 / V share of the unigram), and they sum to 1.

Memory is bounded whatever the corpus: the counts of order k live in two hashed tables of a fixed
number of buckets (`buckets`, at most MAX_BUCKETS = 2**20, whatever the corpus size), one for
contexts and one for (context, character) pairs; a bucket holds a 16-bit tag of the key that owns
it and a 32-bit count: 12 MiB an order, 228 MiB for N = 20, plus the working set of one
BUILD_CHUNK of positions (≈ 50 MiB) and the training ids themselves (1 byte a character for a
vocabulary of up to 256, 2 beyond: 64 MiB for a 64 MiB ASCII corpus). Counting is
numpy-vectorised: a rolling 64-bit hash of each order's context, `np.bincount` into the tables, one
chunk at a time. A bucket belongs to the first key that lands in it; a key that finds its bucket
taken is not counted (a context reads as unseen, and the model backs off to a shorter one; a pair
reads as unseen and its share of C(h) goes to the shorter context as Witten–Bell's does). That
only happens once an order has more distinct keys than buckets (large corpora, high orders): the
model gets weaker there, like a pruned one, and its probabilities still sum to 1. Without lost
keys it is exactly the formula above (tests/test_ngram.py pins it to a brute-force count).

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
#: Buckets of each hashed table (context counts, pair counts) of each order, at most.
MAX_BUCKETS = 1 << 20
#: The fewest buckets of a table (small corpora): keeps chance collisions rare on a tiny text.
MIN_BUCKETS = 1 << 16
#: Training positions counted at a time.
BUILD_CHUNK = 1 << 20
#: Probabilities computed at a time when querying: rows × vocabulary, at most.
QUERY_CELLS = 1 << 20

_STEP = np.uint64(0x100000001B3)                  # rolling-hash multiplier (odd: invertible mod 2**64)
_PAIR = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of x spread over the whole word (uint64 in, uint64 out)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _shift(buckets: int) -> np.uint64:
    """The right shift that keeps the top log2(buckets) bits of a mixed hash: its bucket."""
    return np.uint64(64 - (buckets.bit_length() - 1)) if buckets else np.uint64(0)


def _slots(key: np.ndarray, shift: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, tag) of each key hash: the bucket from the top bits of the mixed hash, a 16-bit
    tag from 1 to 65535 from its bottom bits, which tells the key that owns a bucket from others."""
    x = _mix(key)
    return (x >> shift).astype(np.intp), np.maximum(x.astype(np.uint16), np.uint16(1))   # (0 means empty)


def _context_key(g: np.ndarray, k: int) -> np.ndarray:
    return g + np.uint64(k)


def _pair_key(g: np.ndarray, chars: np.ndarray, k: int) -> np.ndarray:
    return g * _PAIR + chars + np.uint64(k << 32)


def _claim(tags: np.ndarray, bucket: np.ndarray, tag: np.ndarray) -> np.ndarray:
    """Give each empty bucket to one of the keys that land in it (its tag is stored), and say
    which keys own the bucket they land in: only they are counted, so a key that lost its bucket
    to another reads as unseen (the model backs off) rather than borrowing the other's counts."""
    held = tags[bucket]
    empty = held == 0
    tags[bucket[empty]] = tag[empty]
    return tags[bucket] == tag


def table_buckets(train_chars: int, max_buckets: int = MAX_BUCKETS) -> int:
    """Buckets of each table: a power of two, about 4 per training position, from MIN_BUCKETS up
    to max_buckets (rounded down to a power of two), whatever the corpus size."""
    cap = 1 << max(0, int(max_buckets).bit_length() - 1)
    want = 1 << max(0, (4 * max(train_chars, 1) - 1).bit_length())
    return max(2, min(cap, max(want, MIN_BUCKETS)))


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


@dataclass(frozen=True)
class NgramScore:
    """What the n-gram model makes of a text, for each predicted character t = 1 … T − 1 (the first
    is context only, as for the LSTM): p[t − 1] = P_{N−1}(text[t] | up to N − 1 characters before it),
    best_p[t − 1] = the largest of P_0 … P_{N−1} of that character (the paper's 'any n-gram of
    order 1 … N' oracle), predicted[t − 1] = the id the model finds most likely there."""

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
                 train_chars: int):
        self.order, self.vocab_size, self.train_chars = order, vocab_size, train_chars
        self.unigram = unigram                      # (V,) counts of each character
        # order − 1 tables each, (buckets,): the tag of the context / pair owning a bucket (0: empty),
        # and the count of the context / pair owning it
        self.context_tags, self.context_counts = context_tags, context_counts
        self.pair_tags, self.pair_counts = pair_tags, pair_counts
        self.buckets = len(context_tags[0]) if context_tags else 0
        self._shift = _shift(self.buckets)
        seen = unigram > 0
        types = int(seen.sum())
        self.base = (unigram + types / vocab_size) / (unigram.sum() + types)       # (V,) P_0

    @classmethod
    def build(cls, ids: np.ndarray, vocab_size: int, order: int, max_buckets: int = MAX_BUCKETS,
              chunk: int = BUILD_CHUNK) -> "NgramModel":
        """Count the ids (a training text) for an order-`order` model: one pass, `chunk` positions
        at a time, into tables of table_buckets(len(ids), max_buckets) buckets."""
        if not 1 <= order <= MAX_ORDER:
            raise NeuronError(f"an n-gram order must be from 1 to {MAX_ORDER}, not {order}")
        if len(ids) < 1:
            raise CorpusError("the training text is empty: nothing to build an n-gram model from")
        if len(ids) and int(ids.max()) >= vocab_size:
            raise NeuronError("the training text has ids beyond the vocabulary")
        buckets = table_buckets(len(ids), max_buckets) if order > 1 else 0
        context_tags = [np.zeros(buckets, dtype=np.uint16) for _ in range(order - 1)]
        context_counts = [np.zeros(buckets, dtype=np.uint32) for _ in range(order - 1)]
        pair_tags = [np.zeros(buckets, dtype=np.uint16) for _ in range(order - 1)]
        pair_counts = [np.zeros(buckets, dtype=np.uint32) for _ in range(order - 1)]
        shift = _shift(buckets)
        unigram = np.zeros(vocab_size, dtype=np.int64)
        for start in range(0, len(ids), chunk):
            stop = min(len(ids), start + chunk)
            targets = ids[start:stop].astype(np.uint64)
            unigram += np.bincount(ids[start:stop], minlength=vocab_size)
            for k, first, g in _context_hashes(ids, start, stop, order - 1):
                bucket, tag = _slots(_context_key(g, k), shift)
                owned = _claim(context_tags[k - 1], bucket, tag)
                context_counts[k - 1] += np.bincount(bucket[owned], minlength=buckets).astype(np.uint32)
                bucket, tag = _slots(_pair_key(g, targets[first:], k), shift)
                owned = _claim(pair_tags[k - 1], bucket, tag)
                pair_counts[k - 1] += np.bincount(bucket[owned], minlength=buckets).astype(np.uint32)
        return cls(order, vocab_size, unigram, context_tags, context_counts, pair_tags, pair_counts, len(ids))

    @property
    def nbytes(self) -> int:
        """Bytes the count tables hold (they do not grow with the corpus beyond MAX_BUCKETS a table)."""
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
            bucket, tag = _slots(_context_key(g, k), self._shift)
            seen = np.flatnonzero(self.context_tags[k - 1][bucket] == tag)
            if not len(seen):
                continue
            context_total = self.context_counts[k - 1][bucket[seen]].astype(np.float64)                # (r,) C(h)
            bucket, tag = _slots(_pair_key(g[seen, None], every[None, :], k), self._shift)             # (r, V)
            owned = self.pair_tags[k - 1][bucket] == tag
            counts = np.where(owned, self.pair_counts[k - 1][bucket], 0).astype(np.float64)            # (r, V)
            found, types = counts.sum(axis=1), (counts > 0).sum(axis=1)
            # Pairs that lost their bucket to another pair are missing from `found`: their share of C(h)
            # goes to the lower order with the Witten-Bell share (exact Witten-Bell when nothing is lost).
            backoff = types + np.maximum(context_total - found, 0.0)
            keep = found > 0
            rows = first + seen[keep]
            counts, found, backoff = counts[keep], found[keep], backoff[keep]
            probs[rows] = (counts + backoff[:, None] * probs[rows]) / (found + backoff)[:, None]
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
                                             "smoothing": "interpolated Witten-Bell"})
