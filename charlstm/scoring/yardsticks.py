"""Yardsticks for a bits-per-character figure: what two models that read no context score.

A blind guess among the V characters of the vocabulary costs log2 V bits on every character. A
unigram model, which knows only how often each character occurs in the training text, scores the
entropy of those frequencies. A model's figure reads against the two, whatever the size of the
vocabulary: the same figure is poor for a small alphabet and good for thousands of characters.

The one owner of both figures and of their words, for the live view, the closing line of
`charlstm train`, the report and `charlstm score`. The training text is the corpus without its
validation tail, cut where `data.streams.split` cuts it, in the model's ids (characters folded
into the unknown symbol count as that symbol). Reads ids with numpy; knows nothing of torch or
of the terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data.streams import split
from ..errors import CharlstmError, CheckpointError

#: Ids counted at a time: np.bincount widens its input to 8 bytes an id, so a large corpus is
#: counted in slices rather than copied whole.
COUNT_SLICE = 1 << 24


@dataclass(frozen=True)
class Yardsticks:
    """The blind guess and the unigram figure of one vocabulary and its training text."""

    vocab_size: int
    unigram_bpc: float | None       # None: the training text was not at hand
    note: str                       # which text the unigram figure counts, or why there is none

    @property
    def blind_bpc(self) -> float:
        return math.log2(self.vocab_size)

    def describe(self, digits: int = 2) -> str:
        """'a blind guess among the 65 characters scores 6.02 bits/char, their frequencies alone (a
        unigram model) 4.87'; without a unigram figure, the note says why."""
        blind = f"a blind guess among the {self.vocab_size:,} characters scores {self.blind_bpc:.{digits}f} bits/char"
        if self.unigram_bpc is None:
            return f"{blind}; {self.note}"
        return f"{blind}, their frequencies alone (a unigram model) {self.unigram_bpc:.{digits}f}"

    def short(self, digits: int = 2) -> str:
        """'blind guess 6.02, unigram 4.87 bits/char', for a line with little room."""
        unigram = "" if self.unigram_bpc is None else f", unigram {self.unigram_bpc:.{digits}f}"
        return f"blind guess {self.blind_bpc:.{digits}f}{unigram} bits/char"

    def to_dict(self) -> dict:
        """The figures for a JSON document, rounded to 6 decimals like score's own."""
        return {"vocab_size": self.vocab_size, "blind_guess_bits_per_char": round(self.blind_bpc, 6),
                "unigram_bits_per_char": None if self.unigram_bpc is None else round(self.unigram_bpc, 6),
                "unigram_note": self.note}


def char_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """(V,) how often each id occurs in `ids` (memory-mapped ones are read a slice at a time)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(ids), COUNT_SLICE):
        counts += np.bincount(ids[start : start + COUNT_SLICE], minlength=vocab_size)[:vocab_size]
    return counts


def entropy_bits(counts: np.ndarray) -> float:
    """Bits per character of a unigram model with these counts, on the text they were counted in."""
    seen = counts[counts > 0].astype(np.float64)
    p = seen / seen.sum()
    return float(-(p * np.log2(p)).sum())


def of_training_ids(train_ids: np.ndarray, vocab_size: int) -> Yardsticks:
    """The yardsticks of the training text `train_ids` (already without its validation tail)."""
    return _of_counts(char_counts(train_ids, vocab_size))


def _of_counts(counts: np.ndarray) -> Yardsticks:
    """The yardsticks of a training text's (V,) character counts."""
    return Yardsticks(len(counts), entropy_bits(counts),
                      f"counted over the {int(counts.sum()):,} characters of the training text")


def of_corpus(ids: np.ndarray, vocab_size: int, val_fraction: float) -> Yardsticks:
    """The yardsticks of a whole encoded corpus, cut as training cuts it (`charlstm train`)."""
    train, _ = split(ids, val_fraction)
    return of_training_ids(train, vocab_size)


def of_run(loaded, checkpoint_path: str | Path, notice: Callable[[str], None] | None = None) -> Yardsticks:
    """The yardsticks of a loaded checkpoint: the blind guess from its vocabulary; the unigram
    figure from its run folder's copy of the corpus (checked by fingerprint), else from the corpus
    files it names, read again (as the n-gram baseline reads them), else none, and the note says so.
    A copy found damaged is told to `notice` in one line."""
    from ..runs.caches import CorpusCache
    from ..runs.folder import Run
    from .ngram import training_ids

    vocab_size = len(loaded.vocab)
    try:
        info = loaded.run_info
    except CheckpointError:
        info = None
    cache = CorpusCache(Run(Path(checkpoint_path).parent), store=False)
    found = cache.cached()
    if cache.notice and notice is not None:
        notice(cache.notice)
    try:
        if info is not None and found is not None and found[1].fingerprint == info.corpus_fingerprint:
            ids, chars = found[0], found[1].vocab
            train, _ = split(ids, info.train_config.val_fraction)
            counts = _in_vocab(char_counts(train, len(chars)), chars, loaded.vocab)
            if counts is not None:
                return _of_counts(counts)
        return of_training_ids(training_ids(loaded), vocab_size)
    except CharlstmError:
        kept = "'s copy of it is damaged" if cache.damage else " keeps no copy of it"
        return Yardsticks(vocab_size, None, f"no unigram figure: the training text is not at hand (the run folder"
                                            f"{kept}, and its files are gone, changed or unnamed)")


def _in_vocab(counts: np.ndarray, chars: Sequence[str], vocab) -> np.ndarray | None:
    """Counts of the characters `chars` as the vocabulary reads them (a character it lacks as its
    unknown symbol); None when it lacks one and has no unknown symbol (not the model's text)."""
    if list(chars) == vocab.chars:
        return counts
    folded = np.zeros(len(vocab), dtype=np.int64)
    unknown = vocab.index.get(vocab.unknown_char) if vocab.unknown_char is not None else None
    for char, count in zip(chars, counts):
        at = vocab.index.get(char, unknown)
        if at is None:
            return None
        folded[at] += count
    return folded
