"""scoring/yardsticks.py: what a blind guess and a unigram model score, pinned to sums done by hand."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from charlstm.data.vocab import UNKNOWN, Vocab
from charlstm.scoring import yardsticks
from charlstm.scoring.yardsticks import Yardsticks, char_counts, entropy_bits, of_corpus


def test_the_unigram_figure_is_the_entropy_of_the_training_text_without_its_validation_tail(shakespeare_text):
    vocab = Vocab.from_text(shakespeare_text)
    found = of_corpus(vocab.encode(shakespeare_text), len(vocab), 0.1)
    training = shakespeare_text[: len(shakespeare_text) - round(len(shakespeare_text) * 0.1)]
    counts = Counter(training)
    assert found.unigram_bpc == pytest.approx(-sum(n / len(training) * math.log2(n / len(training))
                                                   for n in counts.values()), abs=1e-9)
    assert found.blind_bpc == pytest.approx(math.log2(len(vocab))) and found.unigram_bpc < found.blind_bpc
    assert found.note == f"counted over the {len(training):,} characters of the training text"


def test_counts_are_taken_a_slice_at_a_time(monkeypatch):
    ids = np.random.default_rng(0).integers(0, 7, size=10_001).astype(np.uint8)
    monkeypatch.setattr(yardsticks, "COUNT_SLICE", 1000)
    assert char_counts(ids, 7).tolist() == np.bincount(ids, minlength=7).tolist()
    assert entropy_bits(np.array([5, 5, 0, 0])) == pytest.approx(1.0)      # unseen characters cost nothing here


def test_a_folding_vocabulary_counts_rare_characters_as_its_unknown_symbol():
    vocab = Vocab(sorted({"a", "b", UNKNOWN}), unknown=UNKNOWN)
    folded = yardsticks._in_vocab(np.array([3, 1, 1, 5]), ["a", "x", "y", "b"], vocab)
    assert folded.tolist() == [3, 5, 2]                                     # a, b, then x and y as the unknown symbol
    assert yardsticks._in_vocab(np.array([1, 1]), ["a", "z"], Vocab(["a", "b"])) is None


def test_the_words_say_both_figures_or_why_one_is_missing():
    both = Yardsticks(65, 4.25, "counted over …")
    assert both.describe(3) == ("a blind guess among the 65 characters scores 6.022 bits/char, their frequencies "
                                "alone (a unigram model) 4.250")
    assert both.short() == "blind guess 6.02, unigram 4.25 bits/char"
    missing = Yardsticks(65, None, "no unigram figure: the training text is not at hand")
    assert missing.describe().endswith("6.02 bits/char; no unigram figure: the training text is not at hand")
    assert missing.to_dict()["unigram_bits_per_char"] is None and missing.short() == "blind guess 6.02 bits/char"
