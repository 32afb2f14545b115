"""runs/caches.py: the run folder's caches, checked by their content. The id cache is written once,
reused while the corpus is the same, made again when it changed or is damaged, only read when it may
not be written, and never replaced in a trained run; corpus.json has one reader and one check. (The
suffix array's cache: tests/scoring/test_novelty.py.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from charlstm.data.corpus import Corpus, prepare
from charlstm.runs.caches import CorpusCache, IndexCache, holds_prepared_corpus, read_corpus_meta
from charlstm.runs.folder import Run
from conftest import KINDS, plant, run_cli, within


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


def test_prepare_command_then_train_reuses_it(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:20_000])
    run = tmp_path / "run"
    prepared = run_cli("prepare", corpus, "--out", run)
    assert prepared.exit_code == 0, prepared.output
    assert "20,000 characters" in prepared.stderr and "uint8" in prepared.stderr
    stamp = (run / "corpus.ids.npy").stat().st_mtime_ns
    trained = run_cli("train", corpus, "--out", run, "--max-steps", "2", "--hidden-size", "16", "--preview", "0")
    assert trained.exit_code == 0, trained.output
    assert (run / "corpus.ids.npy").stat().st_mtime_ns == stamp


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


def test_a_damaged_id_cache_is_made_again_not_read_past_the_vocabulary(small_run, corpus):
    ids = np.load(small_run / "corpus.ids.npy").copy()
    ids[100:200] = 250                                             # past the 60-odd characters
    np.save(small_run / "corpus.ids.npy", ids)
    result = run_cli("train", corpus, "--resume", "--out", small_run, "--max-steps", "8")
    assert result.exit_code == 0, result.output
    assert json.loads((small_run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 8


@pytest.mark.parametrize("kind", KINDS)
def test_a_cache_file_of_another_kind_is_no_cache_and_is_never_waited_on(small_run, tmp_path, kind):
    import shutil

    assert run_cli("sample", small_run, "--novelty", "--length", "20").exit_code == 0  # the index cached too
    for name in ("corpus.json", "corpus.ids.npy", "corpus.sa.npy", "corpus.sa.json"):
        run = shutil.copytree(small_run, tmp_path / f"copy-{name}")
        plant(run / name, kind)
        with within(60):
            if name == "corpus.ids.npy":      # the index's key is the ids' hash: read through the one check
                assert IndexCache(Run(run)).load() == (None, "unreadable")
            assert CorpusCache(Run(run)).cached() is None or name.startswith("corpus.sa")
            if kind != "FIFO" and name != "corpus.ids.npy":
                continue
            result = run_cli("sample", run, "--novelty", "--length", "20")  # the corpus file read again instead
        assert result.exit_code == 0 and "memorisation check" in result.stderr, (name, result.output)
