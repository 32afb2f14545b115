"""The LSTM against an n-gram baseline on one text: the error breakdown and the bracket-distance test.

After Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks", §4.3–4.4.
An *error* is a predicted character to which the LSTM gives probability below ERROR_P (0.5). Each
error is put in the first category of CATEGORIES whose test it passes, in that order, as the paper
peels its oracles off one after another (the definitions below are also written into the JSON):

  n-gram       the n-gram baseline gets it right: some order 1 … N of it (each interpolated model
               P_0 … P_{N−1}) gives the character p ≥ 0.5 — an error short context could fix
  memory       the character and the DYNAMIC_CONTEXT characters before it occurred together earlier
               in the last DYNAMIC_WINDOW characters of the text (the paper's dynamic n-long memory)
  rare word    the character is in a word seen fewer than RARE_COUNT times in the training text
  word start   the character begins a word (a word character after a non-word character)
  punctuation  the character is punctuation (Unicode category P…)
  rest         everything else (the paper's "boost")

Words are maximal runs of word characters (`\\w`: letters, digits, underscore), except that each
CJK ideograph, kana or hangul syllable is a word of its own (those scripts do not space words).

The bracket-distance test: every closing ), ] or } of the text whose opener is in the text, by the
distance from its opener (in characters); per band of distances, how often each model ranks the
closer first (accuracy) and the mean probability it gives it.

Pure numpy over per-character probabilities; nothing of models, files or the terminal.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

#: Bytes the comparison holds per character of the text at most: both models' probabilities, bits
#: and ids, the categories and oracles' arrays, and the text's code points (a Python list while made).
COMPARISON_BYTES = 256

#: The LSTM errs on a character it gives a probability below this.
ERROR_P = 0.5
#: Characters of context the memory oracle matches (with the character itself).
DYNAMIC_CONTEXT = 5
#: How far back (characters) the memory oracle looks.
DYNAMIC_WINDOW = 2000
#: A word seen fewer times than this in the training text is rare.
RARE_COUNT = 5
#: The LSTM "beats" the n-gram on a character where it needs this many bits fewer (and vice versa).
MARGIN_BITS = 1.0
#: Upper ends of the bands of opener-to-closer distances of the bracket test (the last is open).
BRACKET_BANDS = (5, 10, 20, 40, 80, 160)

CATEGORIES = ("n-gram", "memory", "rare word", "word start", "punctuation", "rest")

DEFINITIONS = {
    "error": f"a predicted character to which the LSTM gives p < {ERROR_P}; each error is counted in the first "
             "category below that it fits, in this order",
    "n-gram": f"some order 1..N of the n-gram baseline gives the character p >= {ERROR_P} (short context could fix it)",
    "memory": f"the character with its {DYNAMIC_CONTEXT} preceding characters occurred earlier within the last "
              f"{DYNAMIC_WINDOW} characters of the text (dynamic n-long memory)",
    "rare word": f"the character is in a word seen fewer than {RARE_COUNT} times in the training text",
    "word start": "the character is the first of a word (a word character after a non-word character)",
    "punctuation": "the character is punctuation (Unicode category P*)",
    "rest": "every other error (the paper's 'boost')",
    "word": "a maximal run of letters, digits and underscores; each CJK ideograph, kana or hangul syllable is a "
            "word of its own",
    "beats": f"a model beats the other on a character where it needs at least {MARGIN_BITS:g} bit fewer",
    "bracket test": "each closing ) ] } whose opener is in the text, by its distance from the opener; accuracy: "
                    "the model ranks the closer first; mean p: the probability it gives it",
}

#: The parameters of the analysis, as the JSON states them.
PARAMETERS = {"error_p": ERROR_P, "dynamic_context": DYNAMIC_CONTEXT, "dynamic_window": DYNAMIC_WINDOW,
              "rare_count": RARE_COUNT, "margin_bits": MARGIN_BITS, "bracket_bands": list(BRACKET_BANDS)}

_CJK = "\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
#: A word (see the module docstring).
WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class BracketBand:
    """Closing brackets whose opener is `low` … `high` characters back (high None: or more)."""

    low: int
    high: int | None
    count: int
    lstm_accuracy: float
    ngram_accuracy: float
    lstm_mean_p: float
    ngram_mean_p: float


@dataclass(frozen=True)
class Comparison:
    """Both models on one text, for each predicted character t = 1 … T − 1 (index t − 1)."""

    text: str
    order: int
    lstm_bits: np.ndarray          # (T − 1,)
    ngram_bits: np.ndarray         # (T − 1,)
    category: list[str]            # (T − 1,) "correct" or a name from CATEGORIES
    breakdown: dict[str, int]      # category → errors in it, in CATEGORIES order
    brackets: list[BracketBand]
    info: Mapping = field(default_factory=dict)

    @property
    def lstm_bpc(self) -> float:
        return float(self.lstm_bits.mean())

    @property
    def ngram_bpc(self) -> float:
        return float(self.ngram_bits.mean())

    @property
    def errors(self) -> int:
        return sum(self.breakdown.values())

    @property
    def lstm_wins(self) -> int:
        """Characters where the LSTM needs at least MARGIN_BITS fewer bits than the n-gram."""
        return int((self.ngram_bits - self.lstm_bits >= MARGIN_BITS).sum())

    @property
    def ngram_wins(self) -> int:
        return int((self.lstm_bits - self.ngram_bits >= MARGIN_BITS).sum())


def words(text: str) -> list[re.Match]:
    return list(WORD.finditer(text))


def word_counts(text: str, train_ids: np.ndarray, chars: Sequence[str], chunk: int = 1 << 22) -> dict[str, int]:
    """How often each word of `text` occurs in the training text (ids into `chars`), read `chunk`
    characters at a time (memory: the chunk and the words of `text`, whatever the corpus size).
    A word cut by a chunk boundary may be missed; its count can only come out low (more 'rare')."""
    wanted = {m.group() for m in words(text)}
    counts: Counter = Counter()
    code = np.array([ord(c) for c in chars], dtype=np.uint32)
    for start in range(0, len(train_ids), chunk):
        piece = code[train_ids[start : start + chunk]].tobytes().decode("utf-32-le")
        counts.update(w for w in WORD.findall(piece) if w in wanted)
    return {w: counts[w] for w in wanted}


def _memory_hits(text: str, context: int = DYNAMIC_CONTEXT, window: int = DYNAMIC_WINDOW) -> np.ndarray:
    """(T,) bool: text[t − context : t + 1] occurred, ending at some t' with t − window <= t' < t."""
    T, n = len(text), context + 1
    hits = np.zeros(T, dtype=bool)
    if T < n:
        return hits
    codes = np.array([ord(c) for c in text], dtype=np.uint64)
    key = np.zeros(T - n + 1, dtype=np.uint64)
    for j in range(n):  # a polynomial hash of each (context + 1)-gram, ending at t = n − 1 + i
        key = key * np.uint64(0x100000001B3) + codes[j : T - n + 1 + j] + np.uint64(1)
    end = np.arange(n - 1, T)
    order = np.lexsort((end, key))
    same = key[order[1:]] == key[order[:-1]]           # the previous occurrence of the same gram, in sorted order
    later, earlier = end[order[1:]], end[order[:-1]]
    near = same & (later - earlier <= window)
    hits[later[near]] = True
    return hits


def categorise(text: str, lstm_p: np.ndarray, ngram_best_p: np.ndarray, counts: Mapping[str, int]) -> list[str]:
    """(T − 1,) for the characters text[1:]: "correct" where the LSTM gives p >= ERROR_P, else the
    first category of CATEGORIES that fits (see the module docstring)."""
    T = len(text)
    memory = _memory_hits(text)
    rare, starts = np.zeros(T, dtype=bool), np.zeros(T, dtype=bool)
    for m in words(text):
        starts[m.start()] = True
        if counts.get(m.group(), 0) < RARE_COUNT:
            rare[m.start() : m.end()] = True
    out = []
    for t in range(1, T):
        i = t - 1
        if lstm_p[i] >= ERROR_P:
            out.append("correct")
        elif ngram_best_p[i] >= ERROR_P:
            out.append("n-gram")
        elif memory[t]:
            out.append("memory")
        elif rare[t]:
            out.append("rare word")
        elif starts[t]:
            out.append("word start")
        elif unicodedata.category(text[t]).startswith("P"):
            out.append("punctuation")
        else:
            out.append("rest")
    return out


def bracket_test(text: str, lstm_p: np.ndarray, lstm_right: np.ndarray, ngram_p: np.ndarray,
                 ngram_right: np.ndarray, bands: Sequence[int] = BRACKET_BANDS) -> list[BracketBand]:
    """Closing brackets matched to their openers (a stack per kind of bracket, so a stray closer of
    one kind does not unmatch the others), banded by distance; only bands that hold a closer."""
    stacks: dict[str, list[int]] = {o: [] for o in _PAIRS.values()}
    found: list[tuple[int, int]] = []                  # (position of the closer, distance)
    for pos, char in enumerate(text):
        if char in stacks:
            stacks[char].append(pos)
        elif char in _PAIRS and stacks[_PAIRS[char]]:
            found.append((pos, pos - stacks[_PAIRS[char]].pop()))
    if not found:
        return []
    at = np.array([p - 1 for p, _ in found])          # indices into the per-character arrays
    distance = np.array([d for _, d in found])
    edges = [1, *[b + 1 for b in bands]]
    out = []
    for i, low in enumerate(edges):
        high = edges[i + 1] - 1 if i + 1 < len(edges) else None
        pick = (distance >= low) & (distance <= high if high is not None else True)
        if pick.any():
            idx = at[pick]
            out.append(BracketBand(low, high, int(pick.sum()), float(lstm_right[idx].mean()),
                                   float(ngram_right[idx].mean()), float(lstm_p[idx].mean()),
                                   float(ngram_p[idx].mean())))
    return out


def compare(text: str, ids: np.ndarray, lstm_bits: np.ndarray, lstm_predicted: np.ndarray, ngram, order: int,
            word_counts: Mapping[str, int], info: Mapping | None = None) -> Comparison:
    """Both models on `text` (its ids): the LSTM's surprisal and most likely ids of text[1:]
    (score.TextScore), the n-gram's ngram.NgramScore of it, the training counts of the text's words."""
    lstm_bits = np.asarray(lstm_bits, dtype=np.float64)
    lstm_p = np.exp2(-lstm_bits)
    ids = np.asarray(ids)[1:]
    category = categorise(text, lstm_p, ngram.best_p, word_counts)
    tally = Counter(category)
    breakdown = {name: tally[name] for name in CATEGORIES}
    brackets = bracket_test(text, lstm_p, np.asarray(lstm_predicted) == ids, ngram.p, ngram.predicted == ids)
    return Comparison(text, order, lstm_bits, ngram.bits, category, breakdown, brackets, dict(info or {}))
