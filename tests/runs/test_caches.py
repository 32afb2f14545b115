"""runs/caches.py: the run folder's caches, checked by their content. The id cache is written once,
reused while the corpus is the same, made again when it changed or is damaged, only read when it may
not be written, and never replaced in a trained run; corpus.json has one reader and one check. (The
suffix array's cache: tests/scoring/test_novelty.py.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from charlstm.data.corpus import Corpus, prepare
from charlstm.runs.caches import CorpusCache, IndexCache, holds_prepared_corpus, read_corpus_meta
from charlstm.runs.folder import Run
from conftest import KINDS, QUICK, losses, plant, refused, run_cli, within


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


# ------------------------------------------------------------------- content checks: each damage, made again
#
# A damage is a function (path, array) -> None that leaves the .npy file at `path`, whose right content
# is `array`, damaged one way. "keyed": the record beside it (corpus.json, corpus.sa.json) is then
# rewritten to hold the damaged file's hash, so that the checks of content alone must find it.


def _with_header(path: Path, old: bytes, new: bytes) -> None:
    """The .npy file at `path` with `old` replaced by `new` in its header, which keeps its length."""
    data = path.read_bytes()
    end = data.index(b"\n") + 1
    text = data[: end - 1].replace(old, new).rstrip(b" ")             # the header without its padding
    assert old in data[:end] and len(text) < end
    path.write_bytes(text.ljust(end - 1, b" ") + b"\n" + data[end:])


def _put(index: int, value: int):
    def damage(path: Path, array: np.ndarray) -> None:
        wrong = array.copy()
        wrong[index] = value
        np.save(path, wrong)
    return damage


def _swapped(i: int, j: int):
    def damage(path: Path, array: np.ndarray) -> None:
        wrong = array.copy()
        wrong[[i, j]] = wrong[[j, i]]
        np.save(path, wrong)
    return damage


def _huge_shape(path: Path, array: np.ndarray) -> None:
    _with_header(path, f"({len(array)},)".encode(), b"(1099511627776,)")


FILE_DAMAGES = {  # what hurts any .npy cache
    "truncated": lambda path, array: path.write_bytes(path.read_bytes()[:-4]),
    "trailing bytes": lambda path, array: path.write_bytes(path.read_bytes() + bytes(8)),
    "emptied": lambda path, array: path.write_bytes(b""),
    "not an .npy file": lambda path, array: path.write_bytes(b"hello world\n" * 10),
    "float64": lambda path, array: np.save(path, array.astype(np.float64)),
    "big-endian": lambda path, array: np.save(path, array.astype(">i4")),
    "two-dimensional": lambda path, array: np.save(path, array.reshape(2, -1)),
    "a header claiming a huge shape": _huge_shape,
    "a header that does not parse": lambda path, array: _with_header(path, b"{'descr'", b"(((((((("),
    "a header of an object array": lambda path, array: _with_header(path, array.dtype.str.encode(), b"|O"),
    "format 9.9": lambda path, array: path.write_bytes(b"\x93NUMPY\x09\x09" + path.read_bytes()[8:]),
}
INDEX_DAMAGES = {
    **FILE_DAMAGES,
    "filled with -10**6": lambda path, array: np.save(path, np.full_like(array, -10**6)),
    "an entry equal to n": lambda path, array: _put(7, len(array))(path, array),
    "an entry far past n": lambda path, array: _put(-1, 2**31 - 1)(path, array),
    "a small negative entry": lambda path, array: _put(len(array) // 2, -3)(path, array),
    "zeros": lambda path, array: np.save(path, np.zeros_like(array)),
    "one position twice": lambda path, array: _put(100, int(array[5000]))(path, array),
    "shuffled": lambda path, array: np.save(path, np.random.default_rng(0).permutation(array)),
    "the positions in order": lambda path, array: np.save(path, np.arange(len(array), dtype=array.dtype)),
    "reversed": lambda path, array: np.save(path, array[::-1]),
    "two neighbours swapped": _swapped(1000, 1001),
    "two far entries swapped": _swapped(10, 30_000),
    "int16": lambda path, array: np.save(path, array.astype(np.int16)),
}
ID_DAMAGES = {
    **FILE_DAMAGES,
    "a negative id": lambda path, array: _put(5, -3)(path, array.astype(np.int16)),
    "a negative id, int8": lambda path, array: _put(0, -1)(path, array.astype(np.int8)),
    "an id past the vocabulary": _put(-1, 250),
    "an id one past the vocabulary": lambda path, array: _put(300, int(array.max()) + 1)(path, array),
    "uint16": lambda path, array: np.save(path, array.astype(np.uint16)),
}
#: Ids of the right type, each in the vocabulary, and not the corpus's: only corpus.json's hash of them tells.
STALE_IDS = {
    "another character in bounds": lambda path, array: _put(10, (int(array[10]) + 1) % (int(array.max()) + 1))(path, array),
    "shuffled": lambda path, array: np.save(path, np.random.default_rng(0).permutation(array)),
}


def _blake(path: Path) -> str:
    import hashlib

    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _key(record: Path, field: str, damaged: Path) -> None:
    """`record` (JSON) made to name the hash of `damaged` as it is now: only its content can tell."""
    meta = json.loads(record.read_text(encoding="utf-8"))
    meta[field] = _blake(damaged)
    record.write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, shakespeare_text):
    """A prepared corpus (60,000 characters) with its suffix array cached, without a model."""
    from charlstm.scoring.novelty import suffix_array

    folder = tmp_path_factory.mktemp("indexed")
    corpus = folder / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    run = Run(folder / "run")
    ids = prepare([corpus], cache=CorpusCache(run)).ids
    assert IndexCache(run).store(suffix_array(np.asarray(ids))) == "built and cached"
    return folder


@pytest.mark.parametrize("keyed", [False, True], ids=["as written", "keyed"])
@pytest.mark.parametrize("damage", INDEX_DAMAGES.values(), ids=INDEX_DAMAGES.keys())
def test_a_damaged_index_is_not_used_and_says_why(indexed, tmp_path, damage, keyed):
    run = Run(shutil.copytree(indexed / "run", tmp_path / "run"))
    ids, _ = CorpusCache(run).cached()
    sa_path = run.path / "corpus.sa.npy"
    right = np.load(sa_path)
    assert IndexCache(run).load(ids)[1] == "loaded"
    damage(sa_path, right)
    if keyed:
        _key(run.path / "corpus.sa.json", "sa_hash", sa_path)
    index = IndexCache(run)
    assert index.load(ids) == (None, "damaged")
    assert index.notice.startswith(f"{sa_path}: ") and index.notice.endswith("; not used (the index is built again)")
    assert "\n" not in index.notice
    assert CorpusCache(run).cached() is not None                    # the ids are not what is wrong


@pytest.mark.parametrize("damage, keyed", [*((d, k) for d in ID_DAMAGES.values() for k in (False, True)),
                                           *((d, False) for d in STALE_IDS.values())],
                         ids=[*(f"{n}-{k}" for n in ID_DAMAGES for k in ("as written", "keyed")), *STALE_IDS])
def test_a_damaged_id_cache_is_not_used_says_why_and_is_made_again(indexed, tmp_path, damage, keyed):
    run = Run(shutil.copytree(indexed / "run", tmp_path / "run"))
    ids_path = run.path / "corpus.ids.npy"
    right, right_bytes = np.load(ids_path), ids_path.read_bytes()
    damage(ids_path, right)
    if keyed:
        _key(run.path / "corpus.json", "ids_hash", ids_path)
    cache = CorpusCache(run)
    assert cache.cached() is None
    assert cache.notice.startswith(f"{ids_path}: ") and "\n" not in cache.notice
    remade = CorpusCache(run)
    again = prepare([indexed / "plays.txt"], cache=remade)
    assert isinstance(again.ids, np.memmap) and ids_path.read_bytes() == right_bytes
    assert remade.notice == cache.notice
    assert CorpusCache(run).cached() is not None and CorpusCache(run).notice is None


@pytest.mark.parametrize("field, value", [("ids_hash", 12), ("ids_hash", ["a"]), ("vocab", "dup")])
def test_corpus_json_fields_are_checked_by_type(indexed, tmp_path, field, value):
    run = Run(shutil.copytree(indexed / "run", tmp_path / "run"))
    meta = json.loads((run.path / "corpus.json").read_text(encoding="utf-8"))
    meta[field] = meta["vocab"][:-1] + [meta["vocab"][0]] if value == "dup" else value
    (run.path / "corpus.json").write_text(json.dumps(meta), encoding="utf-8")
    cache = CorpusCache(run)
    assert read_corpus_meta(run.path) is None and cache.cached() is None
    assert cache.notice.startswith(f"{run.path / 'corpus.json'}: ")


@pytest.mark.parametrize("record", ["{", "[1, 2]", '{"sa_hash": 7}', "\x00" * 10])
def test_a_damaged_index_record_is_not_used(indexed, tmp_path, record):
    run = Run(shutil.copytree(indexed / "run", tmp_path / "run"))
    ids, _ = CorpusCache(run).cached()
    (run.path / "corpus.sa.json").write_text(record, encoding="utf-8")
    index = IndexCache(run)
    assert index.load(ids) == (None, "damaged") and index.notice.startswith(f"{run.path / 'corpus.sa.json'}: ")


# ---------------------------------------------------------------------- the same, through the commands


@pytest.fixture(scope="module")
def novelty_run(trained_run, tmp_path_factory):
    """A copy of the trained run with its index cached, and the JSON record of a --novelty sample from it."""
    run = shutil.copytree(trained_run, tmp_path_factory.mktemp("novelty") / "run")
    clean = run_cli(*_NOVELTY, run)
    assert clean.exit_code == 0 and (run / "corpus.sa.npy").is_file(), clean.stderr
    return run, json.loads(clean.stdout)


_NOVELTY = ("sample", "--length", "400", "--seed", "5", "--temperature", "0.3", "--novelty", "--format", "json")


def _notices(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("charlstm: ")]


#: The damages the commands meet below (every one meets the cache itself, above).
THROUGH_COMMANDS = ["filled with -10**6", "an entry equal to n", "a small negative entry", "zeros", "shuffled",
                    "two neighbours swapped", "truncated", "float64", "a header claiming a huge shape",
                    "a header that does not parse"]


@pytest.mark.parametrize("damage", THROUGH_COMMANDS)
def test_sample_novelty_on_a_damaged_index_rebuilds_it_with_one_notice_and_the_right_figures(novelty_run, tmp_path,
                                                                                               damage):
    clean_run, clean = novelty_run
    run = shutil.copytree(clean_run, tmp_path / "run")
    sa_path = run / "corpus.sa.npy"
    INDEX_DAMAGES[damage](sa_path, np.load(sa_path))
    _key(run / "corpus.sa.json", "sa_hash", sa_path)                 # the content alone tells
    result = run_cli(*_NOVELTY, run)
    assert result.exit_code == 0, result.stderr
    [line] = _notices(result)
    assert line.startswith(f"charlstm: {sa_path}: ") and line.endswith("; not used (the index is built again)")
    record = json.loads(result.stdout)
    assert record["samples"] == clean["samples"] and record["corpus"]["index"] == "built and cached"
    again = run_cli(*_NOVELTY, run)
    assert _notices(again) == [] and json.loads(again.stdout)["corpus"]["index"] == "loaded"
    assert json.loads(again.stdout)["samples"] == clean["samples"]


@pytest.mark.parametrize("damage", ["an id past the vocabulary", "a negative id", "another character in bounds",
                                    "a header claiming a huge shape"])
def test_report_and_sample_on_a_damaged_id_cache_read_the_corpus_files_with_one_notice(novelty_run, tmp_path, damage):
    clean_run, clean = novelty_run
    run = shutil.copytree(clean_run, tmp_path / "run")
    ids_path = run / "corpus.ids.npy"
    {**ID_DAMAGES, **STALE_IDS}[damage](ids_path, np.load(ids_path))
    result = run_cli(*_NOVELTY, run)
    assert result.exit_code == 0, result.stderr
    [line] = _notices(result)
    assert line.startswith(f"charlstm: {ids_path}: ") and line.endswith("; not used (the corpus is read from its files again)")
    record = json.loads(result.stdout)
    assert record["samples"] == clean["samples"] and record["corpus"]["source"].startswith("the corpus files")
    report = run_cli("report", run, "--out", tmp_path / "report.html")       # the yardsticks and the check: said once
    assert report.exit_code == 0, report.stderr
    assert _notices(report) == [line]


def test_without_its_corpus_files_a_damaged_id_cache_is_one_error_line(novelty_run, tmp_path):
    clean_run, _ = novelty_run
    run = shutil.copytree(clean_run, tmp_path / "run")
    ID_DAMAGES["an id past the vocabulary"](run / "corpus.ids.npy", np.load(run / "corpus.ids.npy"))
    source = Path(json.loads((run / "corpus.json").read_text(encoding="utf-8"))["sources"][0])
    moved = tmp_path / "moved.txt"
    shutil.move(source, moved)
    try:
        result = run_cli(*_NOVELTY, run)
        assert refused(result, "training corpus is not at hand", "its copy there is damaged", "corpus.ids.npy")
        assert "charlstm: " not in result.stderr
        resumed = run_cli("train", "--resume", "--out", run, "--max-steps", "152")
        refused(resumed, str(source))
    finally:
        shutil.move(moved, source)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, shakespeare_text):
    """A run of three steps on 20,000 characters, and the losses of its resume to step 5 from a clean copy."""
    folder = tmp_path_factory.mktemp("quick")
    corpus = folder / "plays.txt"
    corpus.write_text(shakespeare_text[:20_000], encoding="utf-8")
    run = folder / "run"
    assert run_cli("train", corpus, "--out", run, *QUICK, "--threads", "1").exit_code == 0
    clean = shutil.copytree(run, folder / "clean")
    assert run_cli("train", corpus, "--resume", "--out", clean, "--max-steps", "5", "--threads", "1").exit_code == 0
    return corpus, run, losses(clean)


@pytest.mark.parametrize("damage", [*ID_DAMAGES.values(), *STALE_IDS.values()], ids=[*ID_DAMAGES, *STALE_IDS])
def test_train_resume_on_a_damaged_id_cache_makes_it_again_with_one_notice(quick_run, tmp_path, damage):
    corpus, trained, clean = quick_run
    run = shutil.copytree(trained, tmp_path / "run")
    ids_path = run / "corpus.ids.npy"
    right = ids_path.read_bytes()
    damage(ids_path, np.load(ids_path))
    result = run_cli("train", corpus, "--resume", "--out", run, "--max-steps", "5", "--threads", "1")
    assert result.exit_code == 0, result.output
    notices = [line for line in _notices(result) if "corpus.ids.npy" in line]
    assert len(notices) == 1 and notices[0].startswith(f"charlstm: {ids_path}: ")
    assert ids_path.read_bytes() == right and CorpusCache(Run(run)).cached() is not None
    assert losses(run) == clean                                      # trained on the corpus, not on the damage


# ----------------------------------------------------------------------------- big caches, small memory

#: Checks the caches of the run folder argv[1] in a process of its own; prints what it found and how far
#: its peak resident memory grew while checking (MB).
_CHECK = """
import json, resource, sys
from charlstm.runs.caches import CorpusCache, IndexCache
from charlstm.runs.folder import Run
run = Run(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cache = CorpusCache(run)
found = cache.cached()
index = IndexCache(run)
how = index.load(found[0])[1] if found is not None else None
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
print(json.dumps({"ids": cache.notice, "index": how, "why": index.notice, "grown": grown}))
"""


def _checked_in_a_process(run: Path) -> dict:
    import subprocess
    import sys

    from conftest import ENV

    done = subprocess.run([sys.executable, "-c", _CHECK, str(run)], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _big_prepared(run: Path, n: int) -> Path:
    """A prepared corpus of `n` ids, all 0 (of the vocabulary "ab"), written without holding them."""
    run.mkdir()
    (run / "corpus.json").write_text(json.dumps({"kind": "charlstm-corpus", "fingerprint": "f", "chars": n,
                                                 "vocab": ["a", "b"]}), encoding="utf-8")
    np.lib.format.open_memmap(run / "corpus.ids.npy", mode="w+", dtype=np.uint8, shape=(n,)).flush()
    return run / "corpus.ids.npy"


def test_a_big_id_cache_is_checked_in_small_pieces(tmp_path):
    """128 MiB of ids, the one past the vocabulary the last: found, while the checking process grows
    by a few MB (a pass over the memory map would map every page of it)."""
    n = 128 << 20
    ids = _big_prepared(tmp_path / "run", n)
    with open(ids, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\x02")
    found = _checked_in_a_process(tmp_path / "run")
    assert found["ids"] == f"{ids}: id 2 at position {n - 1:,} is not an index into its vocabulary of 2 characters; " \
                           f"not used (the corpus is read from its files again)"
    assert found["grown"] < 32, found


def test_a_big_index_is_checked_in_small_pieces(tmp_path):
    """A suffix array of 32 M entries (128 MiB) over ids all alike, whose suffixes compare as far as
    they go: checked in full for its bounds and positions, and sampled for its order within the
    comparison budget, while the checking process grows by a few tens of MB; then its last entry past
    the end is found the same way."""
    import hashlib

    n = 32 << 20
    ids = _big_prepared(tmp_path / "run", n)
    sa_path = tmp_path / "run" / "corpus.sa.npy"
    sa = np.lib.format.open_memmap(sa_path, mode="w+", dtype=np.int32, shape=(n,))
    for start in range(0, n, 1 << 22):                              # ids all alike: the shorter suffix first
        sa[start : start + (1 << 22)] = np.arange(n - 1 - start, max(n - 1 - start - (1 << 22), -1), -1)
    sa.flush()
    del sa
    key = {"kind": "charlstm-suffix-array", "version": 1, "ids_bytes": ids.stat().st_size,
           "ids_hash": hashlib.blake2b(ids.read_bytes(), digest_size=16).hexdigest()}
    (tmp_path / "run" / "corpus.sa.json").write_text(json.dumps(key), encoding="utf-8")
    found = _checked_in_a_process(tmp_path / "run")
    assert found["ids"] is None and found["index"] == "loaded" and found["grown"] < 48, found
    with open(sa_path, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(np.int32(n).tobytes())
    found = _checked_in_a_process(tmp_path / "run")
    assert found["index"] == "damaged" and found["grown"] < 48, found
    assert found["why"].startswith(f"{sa_path}: entry {n - 1:,} is {n:,}")


def test_caches_written_without_their_own_hashes_are_still_used_after_their_content_checks(indexed, tmp_path):
    """corpus.json without the ids' hash and corpus.sa.json without the index's (as charlstm wrote them
    before it recorded them): used, once their content passed; damaged, not used."""
    run = Run(shutil.copytree(indexed / "run", tmp_path / "run"))
    for record, field in (("corpus.json", "ids_hash"), ("corpus.sa.json", "sa_hash")):
        meta = json.loads((run.path / record).read_text(encoding="utf-8"))
        del meta[field]
        (run.path / record).write_text(json.dumps(meta), encoding="utf-8")
    ids, _ = CorpusCache(run).cached()
    assert IndexCache(run).load(ids)[1] == "loaded"
    sa_path = run.path / "corpus.sa.npy"
    INDEX_DAMAGES["two neighbours swapped"](sa_path, np.load(sa_path))
    index = IndexCache(run)
    assert index.load(ids) == (None, "damaged") and "are not in suffix order" in index.notice


@pytest.mark.parametrize("kind", KINDS)
def test_a_cache_file_of_another_kind_is_no_cache_and_is_never_waited_on(small_run, tmp_path, kind):
    import shutil

    assert run_cli("sample", small_run, "--novelty", "--length", "20").exit_code == 0  # the index cached too
    for name in ("corpus.json", "corpus.ids.npy", "corpus.sa.npy", "corpus.sa.json"):
        run = shutil.copytree(small_run, tmp_path / f"copy-{name}")
        plant(run / name, kind)
        with within(60):
            if name == "corpus.ids.npy":      # the index's key is the ids' hash: read through the one check
                assert IndexCache(Run(run)).load(np.zeros(0, np.int32)) == (None, "damaged")
            assert CorpusCache(Run(run)).cached() is None or name.startswith("corpus.sa")
            if kind != "FIFO" and name != "corpus.ids.npy":
                continue
            result = run_cli("sample", run, "--novelty", "--length", "20")  # the corpus file read again instead
        assert result.exit_code == 0 and "memorisation check" in result.stderr, (name, result.output)
