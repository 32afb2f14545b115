"""Preparing corpora in bounded memory: streaming equals in-memory, the cache is reused, huge vocabularies work."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm.cli import main
from charlstm.data.corpus import Corpus, prepare
from charlstm.errors import CorpusError


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


def test_cache_is_written_reused_and_invalidated(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world\n" * 1000)
    run = tmp_path / "run"
    first = prepare([corpus], cache_dir=run)
    assert isinstance(first.ids, np.memmap) and (run / "corpus.ids.npy").is_file()
    stamp = (run / "corpus.ids.npy").stat().st_mtime_ns
    again = prepare([corpus], cache_dir=run)
    assert (run / "corpus.ids.npy").stat().st_mtime_ns == stamp  # reused, not rewritten
    np.testing.assert_array_equal(again.ids, first.ids)
    corpus.write_text("hello world!\n" * 1000)
    changed = prepare([corpus], cache_dir=run)
    assert changed.fingerprint != first.fingerprint and "!" in changed.vocab


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


def test_prepare_command_then_train_reuses_it(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:20_000])
    run = tmp_path / "run"
    prepared = CliRunner().invoke(main, ["prepare", str(corpus), "--out", str(run)])
    assert prepared.exit_code == 0, prepared.output
    assert "20,000 characters" in prepared.stderr and "uint8" in prepared.stderr
    stamp = (run / "corpus.ids.npy").stat().st_mtime_ns
    trained = CliRunner().invoke(main, ["train", str(corpus), "--out", str(run), "--max-steps", "2", "--hidden-size", "16",
                                        "--preview", "0"])
    assert trained.exit_code == 0, trained.output
    assert (run / "corpus.ids.npy").stat().st_mtime_ns == stamp
