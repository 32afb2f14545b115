"""data/corpus.py: preparing a corpus in bounded memory. Streaming in pieces equals reading the whole
text, an error names the exact byte, vocabularies past 65,535 characters work, and the ids go to the
cache prepare is given (the run folder's cache itself: tests/runs/test_caches.py)."""

from __future__ import annotations

import numpy as np
import pytest

from charlstm.data.corpus import Corpus, prepare
from charlstm.errors import CorpusError
from conftest import run_cli


def test_streaming_in_tiny_chunks_equals_in_memory(tmp_path, chinese_text, shakespeare_text):
    # Chunks of 7 bytes split multi-byte characters (Chinese, emoji) and CRLF pairs at every position.
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_bytes(("\ufeff" + chinese_text[:3000] + "😀🎉\r\n").encode("utf-8"))
    b.write_bytes(shakespeare_text[:5000].encode("utf-8"))
    streamed = prepare([a, b], chunk_bytes=7)
    whole = Corpus.from_text(chinese_text[:3000] + "😀🎉\r\n" + shakespeare_text[:5000])
    assert streamed.vocab == whole.vocab and streamed.fingerprint == whole.fingerprint
    np.testing.assert_array_equal(streamed.ids, whole.ids)


def test_other_encodings_hash_the_text_not_the_bytes(tmp_path):
    text = "Crème brûlée, señor.\r\nÀ bientôt!\n" * 50
    path = tmp_path / "latin.txt"
    path.write_bytes(text.encode("latin-1"))
    streamed = prepare([path], encoding="latin-1", chunk_bytes=5)
    whole = Corpus.from_text(text)
    assert streamed.fingerprint == whole.fingerprint and streamed.vocab == whole.vocab
    np.testing.assert_array_equal(streamed.ids, whole.ids)


def test_decoding_error_reports_the_exact_byte_across_chunks(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("é".encode() * 5000 + b"\xff tail")
    with pytest.raises(CorpusError, match="bad.txt: not valid utf-8 at byte offset 10000 .byte 0xff"):
        prepare([bad], chunk_bytes=333)


def test_more_than_65535_distinct_characters(tmp_path):
    chars = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000))           # CJK
    chars += "".join(chr(c) for c in range(0x20000, 0x20000 + 50_000))        # CJK extension B (astral plane)
    (tmp_path / "wide.txt").write_text(chars + "\n", encoding="utf-8")
    corpus = prepare([tmp_path / "wide.txt"], chunk_bytes=4096)
    assert len(corpus.vocab) == 70_001 and corpus.ids.dtype == np.int32
    assert corpus.vocab.decode(corpus.ids) == chars + "\n"


class _MemoryCache:
    """An IdCache of this test's own: what prepare asks of any cache."""

    def __init__(self, writable: bool) -> None:
        self.writable, self.kept, self.asked = writable, None, []

    def load(self, made):
        self.asked.append(("load", made))
        return self.kept[1] if self.kept is not None and self.kept[0].same_ids(made) else None

    def store(self, made, dtype, pieces):
        self.asked.append(("store", made))
        if not self.writable:
            return None
        self.kept = (made, np.concatenate(list(pieces)).astype(dtype))
        return self.kept[1]


def test_prepare_keeps_its_ids_in_the_cache_it_is_given(tmp_path, shakespeare_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_text[:3000], encoding="utf-8")
    whole = Corpus.from_text(shakespeare_text[:3000])
    cache = _MemoryCache(writable=True)
    first = prepare([corpus], cache=cache, chunk_bytes=500)
    made = cache.asked[0][1]
    assert [kind for kind, _ in cache.asked] == ["load", "store"] and first.ids is cache.kept[1]
    assert (made.fingerprint, made.chars, list(made.vocab)) == (whole.fingerprint, 3000, whole.vocab.chars)
    assert made.sources == (str(corpus.resolve()),) and made.encoding == "utf-8"
    again = prepare([corpus], cache=cache, chunk_bytes=500)
    assert [kind for kind, _ in cache.asked] == ["load", "store", "load"] and again.ids is first.ids
    refused = _MemoryCache(writable=False)              # a cache that may not be written: the ids in memory
    kept = prepare([corpus], cache=refused, chunk_bytes=500)
    assert [kind for kind, _ in refused.asked] == ["load", "store"]
    np.testing.assert_array_equal(kept.ids, whole.ids)


def test_a_long_single_line_trains(tmp_path):
    line = ("lorem ipsum dolor sit amet " * 200_000)[:5_000_000]  # 5 MB, no newline anywhere
    (tmp_path / "line.txt").write_text(line)
    result = run_cli("train", tmp_path / "line.txt", "--out", tmp_path / "run", "--hidden-size", "16", "--max-steps",
                     "2", "--preview", "0")
    assert result.exit_code == 0, result.output
