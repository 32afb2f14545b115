"""data/vocab.py: characters to ids and back, exactly, for any text; the two encoding routes agree; the
vocabulary owns every decision about a character it never saw. (Rare characters folded into one
unknown symbol: test_rare_characters.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from charlstm.data.vocab import UNKNOWN, CharSet, Vocab
from charlstm.errors import NeuronError, UnknownCharactersError


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
@example("To be, or not to be")
@example("床前明月光，疑是地上霜。\n")
@example("emoji 😀🎉 ok")
@example("a\r\nb\r\n")
@example("tab\there")
def test_encode_decode_round_trips_any_unicode(text):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert len(ids) == len(text) and int(ids.max()) < len(vocab)
    assert vocab.decode(ids) == text
    assert sorted(vocab.chars) == vocab.chars  # code-point order: the same text gives the same ids


def test_vocab_round_trip_on_bundled_chinese(chinese_text):
    vocab = Vocab.from_text(chinese_text)
    assert len(vocab) > 300 and vocab.encode(chinese_text).dtype == np.uint16
    assert vocab.decode(vocab.encode(chinese_text)) == chinese_text


def test_encode_rejects_unknown_characters():
    vocab = Vocab.from_text("abc")
    with pytest.raises(KeyError, match="世"):
        vocab.encode("ab世")
    assert vocab.unknown("xaby世x") == ["x", "y", "世"]


def test_the_vocabulary_owns_every_unknown_character_policy():
    """error refuses (an UnknownCharactersError, a KeyError, not a NeuronError, naming no flag), skip
    drops, replace reads each unseen character as one substitute: the unknown symbol of a vocabulary
    that folds, else a space, else the first character; `read` is replace."""
    vocab = Vocab.from_text("ab c")
    with pytest.raises(UnknownCharactersError) as refused:
        vocab.admit("ab z 世", "error", "prime")
    assert str(refused.value) == "the prime has characters this model never saw: 'z', '世'"
    assert isinstance(refused.value, KeyError) and not isinstance(refused.value, NeuronError)
    assert vocab.admit("ab c", "error") == "ab c"
    assert vocab.admit("ab z 世c", "skip") == "ab  c"
    assert vocab.admit("ab z 世c", "replace") == vocab.read("ab z 世c") == "ab    c"
    assert Vocab(list("ba")).admit("xab", "replace") == "bab"
    folded = Vocab.from_text("aaa bbb c", min_count=2)
    assert folded.substitute == UNKNOWN and folded.admit("ab c z", "replace") == f"ab {UNKNOWN} {UNKNOWN}"
    assert folded.admit("ab c z", "skip") == "ab  "
    with pytest.raises(ValueError, match="policy must be one of error, skip, replace"):
        vocab.admit("ab", "drop")


def test_byte_route_and_code_point_route_agree():
    """ASCII/Latin-1 text takes bytes.translate, other text the code-point table; unsorted
    vocabularies, unknown characters and Latin-1 ids past 254 (no room for the 'unknown' mark)
    must all come out the same as a plain dictionary lookup."""
    latin = "".join(chr(c) for c in range(32, 256)) + "\n\r\t"
    wide = "".join(chr(0x4E00 + k) for k in range(300))
    for chars in (list("zyx ab\n\"'"), list(latin[::-1]), list(wide + latin)):   # the last: Latin-1 ids ≥ 300
        vocab = Vocab(chars)
        text = "".join(chars[(7 * k) % len(chars)] for k in range(5000))
        want = np.array([vocab.index[c] for c in text])
        assert np.array_equal(vocab.encode(text), want)
        narrow = "".join(c for c in text if ord(c) < 256)
        assert np.array_equal(vocab.encode(narrow), [vocab.index[c] for c in narrow])
    with pytest.raises(KeyError, match="q"):
        Vocab(list("zyx ab")).encode("ab q")
    with pytest.raises(KeyError, match="é"):
        Vocab(list("zyx ab")).encode("abé")


def test_charset_over_pieces_equals_set_of_the_whole():
    pieces = ["plain ascii\n", "café ÿ", "", "床前明月光 😀", "more ascii ~", "\x00\x7f\x80"]
    chars = CharSet()
    for piece in pieces:
        chars.add(piece)
    assert chars.chars() == sorted(set("".join(pieces)))


def test_a_vocabulary_grown_by_a_text_keeps_every_id_and_folds_only_new_rare_characters():
    """Vocab.extended: the base's characters keep their ids (present in the text or not, rare or not);
    the text's new characters follow in code point order, those under the count read as the base's
    unknown symbol, or as UNKNOWN added last when the base has none; prefix gives the base back."""
    base = Vocab(["z", "a", " "])
    text = "a" * 3 + "é" * 9 + "ß" * 9 + "!" + "b" * 4
    counts = CharSet()
    counts.add(text)
    grown = counts.vocab(5, base)
    assert grown.chars == ["z", "a", " ", "ß", "é", UNKNOWN] and grown.unknown_char == UNKNOWN
    assert grown.decode(grown.encode(text)) == "aaa" + "é" * 9 + "ß" * 9 + UNKNOWN * 5
    assert grown.prefix(3) == base
    assert counts.vocab(1, base).chars == ["z", "a", " ", "!", "b", "ß", "é"]
    folded = Vocab(["a", UNKNOWN, "b"], unknown=UNKNOWN)
    assert counts.vocab(5, folded) == Vocab(["a", UNKNOWN, "b", "ß", "é"], unknown=UNKNOWN)
    assert counts.vocab(5, folded).prefix(3) == folded
    assert Vocab.from_text("ab", 1, base=Vocab(["b", "a"])) == Vocab(["b", "a"])
