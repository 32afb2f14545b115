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
the shorter ones count every time the model falls back to them (benchmarks/README.md, "The n-gram
baseline's tables"). That only happens in full tables (large corpora, high orders): the model gets weaker there, like a pruned one, and its probabilities still sum to 1.
Without lost keys it is exactly the formula above (tests/test_ngram.py pins it to a brute-force count).

`run_baseline` builds the model from the training split of a run (the part before the validation
tail, exactly as `data.streams.split` cut it) and compares it with the LSTM on a text (comparison.py).
Knows nothing of the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import memory
from ..errors import CheckpointError, CorpusError, NeuronError, UnknownCharactersError
from ..files import is_regular
from .ngram_tables import (
    BUILD_CHUNK,
    MAX_BUCKETS,
    MAX_ORDER,
    QUERY_CELLS,
    _context_hashes,
    _context_key,
    _count_chunk,
    _count_of_counts,
    _find,
    _interpolate,
    _pair_key,
    _slots,
    _Tables,
    discounts,
    table_buckets,
)


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


def training_ids(loaded) -> np.ndarray:
    """The ids (in the checkpoint's vocabulary) of the text the loaded model trained on: its corpus
    files read again, checked to be the same text (by fingerprint, when the checkpoint has one), and
    cut where `data.streams.split` cut it, so the validation tail stays out of the baseline as it stayed out
    of training. A missing or changed corpus is a one-line error."""
    from ..data.corpus import prepare
    from ..data.streams import split
    from ..inspection.texts import training_corpus

    corpus = training_corpus(loaded)
    if not corpus.paths:
        raise NeuronError("this checkpoint does not record the corpus it was trained on; the n-gram baseline is "
                          "built from that text")
    if any(str(p) == "-" for p in corpus.paths):
        raise CorpusError("this model was trained on standard input, which cannot be read again; the n-gram "
                          "baseline is built from the training text")
    for path in corpus.paths:
        if not is_regular(path, CorpusError, follow=True):
            raise CorpusError(f"{path}: the training corpus is gone; the n-gram baseline is built from it (put it "
                              "back, or score without --baseline)")
    prepared = prepare([str(p) for p in corpus.paths], encoding=corpus.encoding)
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
        # every character of the corpus, in the checkpoint's ids, as its vocabulary reads them (a
        # vocabulary that folds rare characters reads them as its unknown symbol, as training did)
        try:
            table = loaded.vocab.encode("".join(prepared.vocab.chars)).astype(np.int64)
        except UnknownCharactersError:
            raise changed from None
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
    from .bits import TEXT_SCORE_BYTES, score_text, surprisal_need
    from .comparison import COMPARISON_BYTES, compare, word_counts

    def refusal(need: memory.Need) -> str:
        return (f"{len(text):,} characters is too long to compare with the n-gram: the comparison holds at most "
                f"{need.most_chars():,} characters in the memory budget of {memory.megabytes(memory.budget())}; "
                f"give a shorter text")

    need = surprisal_need(model.config, TEXT_SCORE_BYTES + COMPARISON_BYTES)
    memory.plan(need, len(text), 1, refusal)                    # before the n-gram is built
    baseline = build_baseline(loaded, order, max_buckets)      # first: a missing corpus is reported at once
    lstm = score_text(model, loaded.vocab, text)
    ids = loaded.vocab.encode(text)
    ngram = baseline.model.score(ids)
    counts = word_counts(text, baseline.train_ids, loaded.vocab.chars)
    return compare(text, ids, lstm_bits=lstm.bits, lstm_predicted=lstm.predicted, ngram=ngram, order=order,
                   word_counts=counts, info={"buckets": baseline.model.buckets, "table_bytes": baseline.model.nbytes,
                                             "training_chars": int(len(baseline.train_ids)),
                                             "smoothing": "interpolated modified Kneser-Ney"})
