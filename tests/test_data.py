"""Corpus reading, vocabulary and BPTT batching on real text."""

from __future__ import annotations

import numpy as np
import pytest

from charlstm.data.vocab import UNKNOWN, CharSet, Vocab
from charlstm.errors import CorpusError, NeuronError, UnknownCharactersError
from charlstm.data.reading import corpus_files, read_corpus
from charlstm.data.streams import fit_layout, split, stream_batch


@pytest.mark.parametrize("text", ["To be, or not to be", "床前明月光，疑是地上霜。\n", "emoji 😀🎉 ok", "a\r\nb\r\n", "tab\there"])
def test_vocab_round_trip(text):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert len(ids) == len(text)
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


def test_streams_are_contiguous_across_batches(shakespeare_text):
    vocab = Vocab.from_text(shakespeare_text)
    ids = vocab.encode(shakespeare_text)
    layout = fit_layout(len(ids), batch_size=8, seq_len=50)
    x0, y0 = stream_batch(ids, layout, 0)
    x1, _ = stream_batch(ids, layout, 1)
    assert x0.shape == (8, 50)
    np.testing.assert_array_equal(y0[:, :-1], x0[:, 1:])       # targets are the next characters
    np.testing.assert_array_equal(x1[:, 0], y0[:, -1])          # batch k+1 continues batch k in every stream
    stream_len = len(ids) // 8
    for b in range(8):                                         # stream b is the b-th contiguous slice
        assert vocab.decode(x0[b]) == shakespeare_text[b * stream_len : b * stream_len + 50]


def test_short_corpus_shrinks_the_batch_or_is_refused():
    layout = fit_layout(1000, batch_size=64, seq_len=100)
    assert layout.batch_size == 4 and layout.seq_len == 100
    for step in range(3 * layout.batches_per_epoch):
        x, y = stream_batch(np.arange(1000), layout, step)
        assert x.shape == (4, 100) and y.shape == (4, 100)
        np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(CorpusError, match="cannot fill two windows of --seq-len 100"):
        fit_layout(200, batch_size=64, seq_len=100)


def test_split_is_contiguous():
    ids = np.arange(1000)
    train, val = split(ids, 0.1)
    assert len(val) == 100 and train[-1] + 1 == val[0]


def test_read_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_corpus([tmp_path / "missing.txt"])
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus([tmp_path / "empty.txt"])
    (tmp_path / "latin.txt").write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.txt: not valid utf-8 at byte offset 3"):
        read_corpus([tmp_path / "latin.txt"])
    assert read_corpus([tmp_path / "latin.txt"], encoding="latin-1") == "café ok"
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 20)
    with pytest.raises(CorpusError, match="an executable, not text"):
        read_corpus([tmp_path / "blob.bin"])
    (tmp_path / "nul.txt").write_bytes(b"text\x00with a NUL")
    with pytest.raises(CorpusError, match="binary file .NUL byte at offset 4"):
        read_corpus([tmp_path / "nul.txt"])


def test_directory_with_glob_and_bom(tmp_path):
    (tmp_path / "b.py").write_bytes("\ufeffprint(2)\r\n".encode("utf-8"))
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "notes.md").write_text("# not code\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.py").write_text("secret\n")
    assert [p.name for p in corpus_files([tmp_path], "*.py")] == ["a.py", "b.py"]
    assert read_corpus([tmp_path], glob="*.py") == "print(1)\nprint(2)\r\n"
    with pytest.raises(CorpusError, match="no files matching"):
        read_corpus([tmp_path], glob="*.rs")


def test_the_held_out_size_is_one_count_for_the_split_and_for_what_inspect_says(tmp_path):
    from charlstm.config import TrainConfig
    from charlstm.data.streams import MIN_HELD_OUT, held_out_size
    from charlstm.errors import ConfigError
    from charlstm.inspection.texts import TrainingCorpus, corpus_tail

    for n, fraction in [(1000, 0.1), (30, 0.01), (41, 0.05), (1000, 0.0), (7, 0.5)]:
        train, val = split(np.arange(n), fraction)
        assert len(val) == held_out_size(n, fraction) and len(train) + len(val) == n
    assert held_out_size(30, 0.01) == MIN_HELD_OUT and held_out_size(1000, 0.0) == 0
    path = tmp_path / "tiny.txt"
    path.write_text("abcdefghij" * 3, encoding="utf-8")
    _, note = corpus_tail(TrainingCorpus((path,), "utf-8", 30, 0.01), 20)
    assert f"the last {MIN_HELD_OUT} held out from training" in note        # what split held out, not round(0.3)
    with pytest.raises(ConfigError, match=r"val_fraction must be a number in \[0, 0.5\]"):  # the config's own bound
        split(np.arange(100), 0.6)
    assert TrainConfig(val_fraction=0.5).val_fraction == 0.5 and len(split(np.arange(100), 0.5)[1]) == 50


@pytest.mark.parametrize("text, message", [("", "corpus is empty"), ("a", "corpus is empty"),
                                           (" \n\t\u3000\r\n", "corpus holds only whitespace")])
def test_every_corpus_reader_applies_one_rule_of_what_a_corpus_is(tmp_path, text, message):
    from charlstm.data.corpus import prepare

    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    for read in (lambda: read_corpus([path]), lambda: prepare([path]), lambda: prepare([path], chunk_bytes=2)):
        with pytest.raises(CorpusError) as caught:
            read()
        assert str(caught.value).startswith(f"{path}: {message}")
