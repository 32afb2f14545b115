"""Preparing corpora in bounded memory: streaming equals in-memory, the cache is reused, huge vocabularies work."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm.cli import main
from charlstm.data.corpus import Corpus, prepare
from charlstm.errors import CorpusError
from charlstm.runs.caches import CorpusCache, holds_prepared_corpus, read_corpus_meta
from charlstm.runs.folder import Run


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
    cache = CorpusCache(Run(run))
    first = prepare([corpus], cache=cache)
    assert isinstance(first.ids, np.memmap) and (run / "corpus.ids.npy").is_file()
    stamp = (run / "corpus.ids.npy").stat().st_mtime_ns
    again = prepare([corpus], cache=cache)
    assert (run / "corpus.ids.npy").stat().st_mtime_ns == stamp  # reused, not rewritten
    np.testing.assert_array_equal(again.ids, first.ids)
    corpus.write_text("hello world!\n" * 1000)
    changed = prepare([corpus], cache=cache)
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


# ------------------------------------------------------------------ the id cache, given to prepare


def test_data_imports_nothing_of_the_run_folder():
    import subprocess
    import sys

    code = ("import sys, charlstm.data.corpus, charlstm.data.streams, charlstm.data.reading\n"
            "print(sorted(m for m in sys.modules if m.startswith('charlstm.runs')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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


def test_a_read_only_cache_reads_and_never_writes(tmp_path, shakespeare_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_text[:3000], encoding="utf-8")
    absent = tmp_path / "absent"
    ids = prepare([corpus], cache=CorpusCache(Run(absent), store=False)).ids
    assert not absent.exists() and not isinstance(ids, np.memmap)
    run = tmp_path / "run"
    prepare([corpus], cache=CorpusCache(Run(run)))
    before = sorted(os.listdir(run))
    read = prepare([corpus], cache=CorpusCache(Run(run), store=False))
    assert isinstance(read.ids, np.memmap) and sorted(os.listdir(run)) == before
    corpus.write_text(shakespeare_text[3000:6000], encoding="utf-8")
    other = prepare([corpus], cache=CorpusCache(Run(run), store=False))
    assert not isinstance(other.ids, np.memmap) and read_corpus_meta(run).fingerprint != other.fingerprint


def test_a_trained_runs_cache_of_its_own_text_is_never_replaced(tmp_path, shakespeare_text, chinese_text):
    corpus, other = tmp_path / "plays.txt", tmp_path / "poems.txt"
    corpus.write_text(shakespeare_text[:3000], encoding="utf-8")
    other.write_text(chinese_text[:2000], encoding="utf-8")
    run = tmp_path / "run"
    prepare([corpus], cache=CorpusCache(Run(run)))
    (run / "latest.safetensors").write_bytes(b"a trained run")
    files = {name: (run / name).read_bytes() for name in ("corpus.ids.npy", "corpus.json")}
    elsewhere = prepare([other], cache=CorpusCache(Run(run)))
    assert not isinstance(elsewhere.ids, np.memmap)
    np.testing.assert_array_equal(elsewhere.ids, Corpus.from_text(chinese_text[:2000]).ids)
    assert {name: (run / name).read_bytes() for name in files} == files


@pytest.mark.parametrize("damage, meta_valid", [
    (lambda meta: {**meta, "kind": "someone-else"}, False), (lambda meta: {**meta, "chars": str(meta["chars"])}, False),
    (lambda meta: {**meta, "chars": True}, False), (lambda meta: {**meta, "vocab": "".join(meta["vocab"])}, False),
    (lambda meta: {**meta, "vocab": meta["vocab"][:-2] + ["ab"]}, False), (lambda meta: {**meta, "fingerprint": None}, False),
    (lambda meta: {**meta, "sources": "plays.txt"}, False), (lambda meta: [meta], False),
    (lambda meta: {**meta, "chars": meta["chars"] + 1}, True),       # the ids file no longer holds that many
    (lambda meta: {**meta, "vocab": meta["vocab"][:-1]}, True),      # the largest id no longer indexes the vocabulary
])
def test_one_reader_of_corpus_json_and_one_check_of_the_ids(tmp_path, shakespeare_text, damage, meta_valid):
    import json

    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_text[:3000], encoding="utf-8")
    run = Run(tmp_path / "run")
    prepare([corpus], cache=CorpusCache(run))
    meta = json.loads((run.path / "corpus.json").read_text(encoding="utf-8"))
    assert CorpusCache(run).cached() is not None and holds_prepared_corpus(run.path)
    assert "kind" in meta
    del meta["kind"]                                     # a corpus.json written before the kind was recorded
    (run.path / "corpus.json").write_text(json.dumps(meta), encoding="utf-8")
    assert read_corpus_meta(run.path) is not None and CorpusCache(run).cached() is not None
    (run.path / "corpus.json").write_text(json.dumps(damage(meta)), encoding="utf-8")
    # what the claim, the id cache and the memorisation check each make of it: one verdict
    assert (read_corpus_meta(run.path) is not None) == holds_prepared_corpus(run.path) == meta_valid
    assert CorpusCache(run).cached() is None
    stamp = (run.path / "corpus.ids.npy").stat().st_mtime_ns
    remade = prepare([corpus], cache=CorpusCache(run))                       # made again, not read past the vocabulary
    assert (run.path / "corpus.ids.npy").stat().st_mtime_ns != stamp and isinstance(remade.ids, np.memmap)
    assert CorpusCache(run).cached() is not None
