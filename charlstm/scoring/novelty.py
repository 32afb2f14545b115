"""The memorisation check: how much of a text is copied, exactly, from a corpus.

`suffix_array(ids)` sorts every suffix of a corpus's ids with libdivsufsort (pydivsufsort): at its
peak about 5 bytes per corpus character for byte ids, 12 for 16-bit ids (about twice that past
2**30 of them, whose 2**31 bytes need 64-bit positions); 4 kept (8 past 2**31 characters).
`CorpusIndex(ids, sa).check(text, chars)` finds, for every position i of a text, the longest
prefix of text[i:] that occurs somewhere in the corpus (its "matching statistics"), by one binary
search per position over the suffix array, all positions at once: O(m log n) probes for an
m-character text, each touching a few pages of the memory-mapped ids and index, plus the length
of each position's match (so a verbatim copy of k characters costs about k²/2 character
comparisons); memory O(m), never the corpus's size. From those
lengths come, exactly, the longest copied substring, the share of the text's n-grams found in the
corpus for each n, and the most-copied spans.

Knows nothing of models, files or the terminal: `runs/caches.py` caches the index beside the run's id
cache, `run_corpus` finds them for a checkpoint, the CLI renders the `Novelty` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import CharlstmError, CheckpointError, CorpusError
from ..files import is_regular

#: The n-gram sizes whose share is reported.
NGRAM_SIZES = (10, 20, 50)
#: A copied span shorter than this is not listed among the most-copied ones (nor highlighted).
MIN_SPAN = NGRAM_SIZES[0]
#: How many of the most-copied spans a report lists.
TOP_SPANS = 5


# --------------------------------------------------------------------------------------------
# The index


def suffix_array(ids: np.ndarray) -> np.ndarray:
    """The start of every suffix of `ids` (non-negative integers) in lexicographic order (a suffix
    that is a prefix of another sorts first), as int32 (int64 past 2**31 − 1 characters).

    libdivsufsort (through pydivsufsort) sorts bytes, in linear memory and about O(n log n) time.
    Wider ids are written big-endian, so that byte order is id order; of the byte suffixes, the
    ones that start on an id boundary are in the order of the id suffixes they spell.
    """
    ids = np.asarray(ids)
    n = len(ids)
    index_type = np.int32 if n < np.iinfo(np.int32).max else np.int64
    if n == 0:
        return np.empty(0, dtype=index_type)
    if ids.dtype.kind not in "ui" or int(ids.min()) < 0:
        raise ValueError(f"suffix_array takes non-negative integer ids, not {ids.dtype} from {ids.min()}")
    width = _symbol_width(int(ids.max()))
    from pydivsufsort import divsufsort

    symbols = _big_endian(ids, width)
    sa = divsufsort(symbols)
    del symbols
    if width == 1:
        return sa.astype(index_type, copy=False)
    return _at_boundaries(sa, width, index_type)


def _symbol_width(largest: int) -> int:
    """Bytes per id: 1, 2, 4 or 8, the fewest that hold `largest`."""
    width = 1
    while largest >= 1 << (8 * width):
        width *= 2
    return width


def _big_endian(ids: np.ndarray, width: int) -> np.ndarray:
    """The ids as a new, writable byte array, `width` big-endian bytes each: the ids may be a
    read-only memory map, which the binding refuses."""
    if width == 1:
        return np.array(ids, dtype=np.uint8)
    return np.array(ids, dtype=np.dtype(f">u{width}")).view(np.uint8)


#: Entries of a byte suffix array that `_at_boundaries` looks at in one go (4–8 MB of scratch).
_BOUNDARY_CHUNK = 1 << 20


def _at_boundaries(byte_sa: np.ndarray, width: int, index_type) -> np.ndarray:
    """The byte suffix array's entries that fall on an id boundary, as id positions, in order.
    Compacted into the front of `byte_sa` a chunk at a time (the write never overtakes the
    read), so the scratch is one chunk, not another array of `width` × n entries."""
    kept = 0
    for start in range(0, len(byte_sa), _BOUNDARY_CHUNK):
        chunk = byte_sa[start : start + _BOUNDARY_CHUNK]
        whole = chunk[chunk % width == 0] // width
        byte_sa[kept : kept + len(whole)] = whole
        kept += len(whole)
    return np.array(byte_sa[:kept], dtype=index_type)


@dataclass(frozen=True)
class Span:
    """A copied span: text[start:start + length] occurs in the corpus at corpus_at (in characters)."""

    start: int
    length: int
    corpus_at: int

    def to_dict(self, text: str) -> dict:
        return {"start": self.start, "length": self.length, "corpus_at": self.corpus_at,
                "text": text[self.start : self.start + self.length]}


@dataclass(frozen=True)
class Novelty:
    """The matching statistics of a text against a corpus, and what follows from them."""

    text: str
    corpus_chars: int
    lengths: np.ndarray        # (m,) the longest prefix of text[i:] found in the corpus
    corpus_at: np.ndarray      # (m,) a corpus position where it occurs (-1 for length 0)

    @property
    def longest(self) -> Span:
        if not len(self.lengths):
            return Span(0, 0, -1)
        i = int(np.argmax(self.lengths))
        return Span(i, int(self.lengths[i]), int(self.corpus_at[i]))

    def share(self, n: int) -> float | None:
        """The share of the text's n-grams found in the corpus (None when the text is shorter than n)."""
        count = len(self.lengths) - n + 1
        if count <= 0:
            return None
        return float(np.count_nonzero(self.lengths[:count] >= n)) / count

    def spans(self, minimum: int = MIN_SPAN) -> list[Span]:
        """Every maximal copied span of at least `minimum` characters (one not inside the span that
        starts a character earlier), longest first."""
        lengths = self.lengths
        previous = np.concatenate(([0], lengths[:-1]))
        starts = np.flatnonzero((lengths >= minimum) & (previous <= lengths))
        found = [Span(int(i), int(lengths[i]), int(self.corpus_at[i])) for i in starts]
        return sorted(found, key=lambda s: (-s.length, s.start))

    def top_spans(self, k: int = TOP_SPANS, minimum: int = MIN_SPAN) -> list[Span]:
        """The k longest copied spans that do not overlap one listed before them."""
        chosen: list[Span] = []
        for span in self.spans(minimum):
            if len(chosen) == k:
                break
            if all(span.start + span.length <= c.start or c.start + c.length <= span.start for c in chosen):
                chosen.append(span)
        return chosen

    def coverage(self, minimum: int = MIN_SPAN) -> np.ndarray:
        """(m,) for each character, the length of the longest copied span (of at least `minimum`)
        that covers it, else 0: what a highlight shows."""
        cover = np.zeros(len(self.lengths), dtype=np.int64)
        for span in self.spans(minimum):
            window = cover[span.start : span.start + span.length]
            np.maximum(window, span.length, out=window)
        return cover

    def to_dict(self, sizes: Sequence[int] = NGRAM_SIZES) -> dict:
        longest = self.longest
        return {"characters": len(self.text), "corpus_characters": self.corpus_chars,
                "longest_copied": longest.to_dict(self.text),
                "ngram_share": {str(n): self.share(n) for n in sizes},
                "top_spans": [s.to_dict(self.text) for s in self.top_spans()]}


#: `_compare` gathers windows of characters for every comparison at once, then finishes the ones
#: still equal after _SLICE_AFTER-wide windows one by one with slices; a round gathers at most
#: _WINDOW_BUDGET characters.
_SLICE_AFTER, _WINDOW_BUDGET = 256, 1 << 20


class CorpusIndex:
    """A corpus's ids and their suffix array (either may be memory-mapped): answers which parts
    of a text occur in the corpus. Only reads."""

    def __init__(self, ids: np.ndarray, sa: np.ndarray) -> None:
        if sa.shape != ids.shape:
            raise ValueError(f"suffix array of {len(sa)} entries for {len(ids)} ids")
        self.ids, self.sa, self.n = ids, sa, len(ids)

    @classmethod
    def build(cls, ids: np.ndarray) -> "CorpusIndex":
        return cls(ids, suffix_array(ids))

    def matching_statistics(self, text_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each i, the longest l with text_ids[i:i + l] in the corpus, and a corpus position of it.

        The longest prefix of text[i:] shared with any corpus suffix is shared with one of the two
        suffixes beside the place where text[i:] would sort among them. So one binary search per
        position, all positions at once in numpy: each probe compares text[i:] with a suffix from
        the prefix both bounds already share with it (the lcp of the lower and upper bound, tracked),
        a window of characters at a time. At the end the two lcps are the answer. A text id of −2
        (a character the corpus lacks) matches nothing.
        """
        pattern = np.asarray(text_ids, dtype=np.int64)
        m, n = len(pattern), self.n
        lengths = np.zeros(m, dtype=np.int64)
        where = np.full(m, -1, dtype=np.int64)
        if m == 0 or n == 0:
            return lengths, where
        lo, hi = np.zeros(m, dtype=np.int64), np.full(m, n, dtype=np.int64)
        lo_lcp, hi_lcp = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)
        positions = np.arange(m, dtype=np.int64)
        while True:
            active = np.flatnonzero(lo < hi)
            if not active.size:
                break
            mid = (lo[active] + hi[active]) // 2
            below, lcp = self._compare(np.asarray(self.sa[mid], dtype=np.int64), positions[active],
                                       np.minimum(lo_lcp[active], hi_lcp[active]), pattern)
            up, down = active[below], active[~below]                    # suffix < text: search above it
            lo[up], lo_lcp[up] = mid[below] + 1, lcp[below]
            hi[down], hi_lcp[down] = mid[~below], lcp[~below]
        left = np.where(lo > 0, lo_lcp, 0)                               # lcp with the suffix just below
        right = np.where(lo < n, hi_lcp, 0)                              # … and with the one just above
        lengths = np.maximum(left, right)
        pick = np.where(left >= right, lo - 1, lo).clip(0, n - 1)
        where = np.where(lengths > 0, np.asarray(self.sa[pick], dtype=np.int64), -1)
        return lengths, where

    def _compare(self, starts: np.ndarray, at: np.ndarray, skip: np.ndarray,
                 pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For corpus suffixes `starts` against text suffixes pattern[at:], known to share their
        first `skip` characters: (suffix sorts below the text suffix, their lcp). The corpus's end
        sorts below every character, the text's end below that, so every comparison ends."""
        n, m = self.n, len(pattern)
        below = np.zeros(len(starts), dtype=bool)
        lcp = skip.copy()
        pending, width = np.arange(len(starts)), 16
        while pending.size:
            if width >= _SLICE_AFTER:                 # the long matches left: contiguous slices, one by one
                for row in pending:
                    lcp[row], below[row] = self._extend(int(starts[row]), int(at[row]), int(lcp[row]), pattern, width)
                break
            cols = np.arange(width)
            c = starts[pending, None] + lcp[pending, None] + cols               # (P, W) corpus positions
            t = at[pending, None] + lcp[pending, None] + cols                   # (P, W) text positions
            corpus = np.where(c < n, np.asarray(self.ids[np.minimum(c, n - 1)], dtype=np.int64), -4)
            text = np.where(t < m, pattern[np.minimum(t, m - 1)], -5)
            same = corpus == text
            done = ~same.all(axis=1)
            first = np.argmin(same, axis=1)                                      # first difference
            rows = pending[done]
            lcp[rows] += first[done]
            below[rows] = corpus[done, first[done]] < text[done, first[done]]
            lcp[pending[~done]] += width
            pending = pending[~done]
            width = max(16, min(width * 4, _WINDOW_BUDGET // max(pending.size, 1)))
        return below, lcp

    def _extend(self, start: int, at: int, lcp: int, pattern: np.ndarray, chunk: int) -> tuple[int, bool]:
        """One comparison as `_compare` makes it, by contiguous slices from `lcp` on."""
        n, m = self.n, len(pattern)
        while True:
            corpus = self.ids[start + lcp : start + lcp + chunk]
            text = pattern[at + lcp : at + lcp + chunk]
            k = min(len(corpus), len(text))
            differ = np.flatnonzero(corpus[:k] != text[:k])
            if differ.size:
                d = int(differ[0])
                return lcp + d, int(corpus[d]) < int(text[d])
            lcp += k
            if start + lcp >= n or at + lcp >= m:           # an end: the text's sorts lowest, then the corpus's
                return lcp, at + lcp < m
            chunk *= 4

    def check(self, text: str, chars: Sequence[str]) -> Novelty:
        """The memorisation figures of `text` against this corpus, whose ids index `chars`."""
        index = {c: i for i, c in enumerate(chars)}
        text_ids = np.fromiter((index.get(c, -2) for c in text), dtype=np.int64, count=len(text))
        lengths, where = self.matching_statistics(text_ids)
        return Novelty(text=text, corpus_chars=self.n, lengths=lengths, corpus_at=where)


# --------------------------------------------------------------------------------------------
# A checkpoint's corpus and its cached index


@dataclass(frozen=True)
class RunCorpus:
    """The corpus a checkpoint was trained on, indexed, and where it came from."""

    index: CorpusIndex
    chars: list[str]
    source: str                # e.g. "the run folder's copy of the corpus (… characters)", for the report
    cached: str                # "loaded", "built and cached", "built (not cached: …)"


def run_corpus(loaded, checkpoint_path: str | Path, notice: Callable[[str], None] | None = None) -> RunCorpus:
    """The training corpus of a loaded checkpoint with its suffix array: the run folder's id cache
    (the index cached beside it, rebuilt when the ids change or it is damaged), else the corpus
    files named in the checkpoint, read again (and indexed in memory). A cache found damaged is
    told to `notice` in one line. A one-line CharlstmError when neither is at hand, or when what is
    there is not the text the model was trained on."""
    from ..inspection.texts import training_corpus
    from ..runs.caches import CorpusCache, IndexCache
    from ..runs.folder import Run

    say = notice or (lambda line: None)
    info = _run_info(loaded)
    fingerprint = info.corpus_fingerprint if info is not None else None
    run = Run(Path(checkpoint_path).parent)
    cache = CorpusCache(run)
    found = cache.cached()
    if found is not None and (fingerprint is None or found[1].fingerprint == fingerprint):
        ids, chars = found[0], list(found[1].vocab)
        index = IndexCache(run)
        sa, cached = index.load(ids)
        if sa is None:
            if index.notice:
                say(index.notice)
            sa = suffix_array(ids)
            cached = index.store(sa)
        return RunCorpus(CorpusIndex(ids, sa), chars, f"the run folder's copy of the corpus ({len(ids):,} characters)",
                         cached)
    corpus = training_corpus(loaded)
    if not corpus.paths or any(str(p) == "-" or not is_regular(p, CorpusError, follow=True) for p in corpus.paths):
        kept = f"its copy there is damaged: {cache.damage}" if cache.damage else "the run folder keeps no copy of it"
        raise CharlstmError(f"{run}: the training corpus is not at hand ({kept}, and its files are gone or were "
                            f"stdin); the memorisation check needs it")
    if cache.notice:
        say(cache.notice)
    from ..data.corpus import prepare

    prepared = prepare([str(p) for p in corpus.paths], encoding=corpus.encoding)
    if fingerprint is not None and prepared.fingerprint != fingerprint:
        raise CharlstmError(f"{corpus.paths[0]}: the corpus files changed since the model was trained on them; "
                            f"the memorisation check needs the text it was trained on")
    name = corpus.paths[0].name if len(corpus.paths) == 1 else f"{len(corpus.paths)} files"
    return RunCorpus(CorpusIndex.build(prepared.ids), prepared.vocab.chars,
                     f"the corpus files ({name}, {len(prepared):,} characters)", "built in memory (not a run folder)")


def _run_info(loaded):

    try:
        return loaded.run_info
    except CheckpointError:
        return None
