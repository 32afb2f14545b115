"""scoring/novelty.py, the memorisation check: suffix array and matching statistics pinned to brute
force, and `charlstm sample --novelty` on a real trained run (the index cached in the run)."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from charlstm.data.vocab import Vocab
from charlstm.scoring.novelty import CorpusIndex, suffix_array
from charlstm.files import INDEX_FILE, INDEX_META
from charlstm.runs.caches import CorpusCache, IndexCache
from charlstm.runs.folder import Run

from conftest import KINDS, TINY, longest_matches, plant, refused, run_cli, within

UNICODE = "床前明月光，疑是地上霜。\r\n举头望明月，低头思故乡。🌙🌙 moon\r\nmoon 🌙 明月\r\n"


def _brute_share(corpus: str, text: str, n: int) -> float | None:
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return sum(g in corpus for g in grams) / len(grams) if grams else None


@pytest.mark.parametrize("alphabet", ["ab", "abc\n", UNICODE])
def test_suffix_array_is_the_sorted_suffixes(alphabet):
    rng = random.Random(len(alphabet))
    for _ in range(60):
        corpus = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        vocab = Vocab.from_text(corpus)
        ids = vocab.encode(corpus)
        expected = sorted(range(len(ids)), key=lambda i: ids[i:].tolist())
        assert suffix_array(ids).tolist() == expected


def test_suffix_array_of_a_periodic_corpus_and_of_wide_ids():
    ids = np.array([3, 1, 2] * 200 + [0], dtype=np.uint8)          # every suffix shares a long prefix with another
    assert suffix_array(ids).tolist() == sorted(range(len(ids)), key=lambda i: ids[i:].tolist())
    wide = np.random.default_rng(0).integers(0, 70_000, 500).astype(np.int32)  # beyond 16 bits: one char per key
    assert suffix_array(wide).tolist() == sorted(range(len(wide)), key=lambda i: wide[i:].tolist())


def _sorted_suffixes(ids: np.ndarray) -> list[int]:
    """The suffix array by definition: Python's list order is lexicographic, a prefix first."""
    return sorted(range(len(ids)), key=lambda i: ids[i:].tolist())


def _repetitive(dtype, low: int) -> list[np.ndarray]:
    """Ids where every suffix shares a long prefix with another: runs, periods, a period with a break."""
    a, b, c = low, low + 1, low + 2
    return [np.array(ids, dtype=dtype) for ids in
            ([a] * 700, [a, b] * 350, [a, b] * 300 + [a], [a, a, b] * 200 + [c] + [a, a, b] * 50, [b] * 300 + [a])]


@pytest.mark.parametrize("dtype, low", [(np.uint8, 0), (np.uint16, 0), (np.uint16, 200), (np.uint16, 65_000)])
def test_the_library_builder_equals_sorted_suffixes(dtype, low, monkeypatch, tmp_path):
    """Byte ids, 16-bit ids that fit a byte, and 16-bit ids that need both bytes (crossing 256, near 65,535)."""
    import charlstm.scoring.novelty as novelty

    rng = np.random.default_rng(low + 1)
    cases = _repetitive(dtype, low) + [
        rng.integers(low, low + span, size, endpoint=True).astype(dtype)
        for span in (1, 3, 200) for size in (2, 17, 500)]
    for ids in cases:
        got = suffix_array(ids)
        assert got.dtype == np.int32 and got.tolist() == _sorted_suffixes(ids), ids[:8]
    monkeypatch.setattr(novelty, "_BOUNDARY_CHUNK", 7)             # compaction across many chunks
    for ids in cases:
        assert suffix_array(ids).tolist() == _sorted_suffixes(ids)
    np.save(tmp_path / "ids.npy", cases[3])                          # the run's ids come memory-mapped, read-only
    assert suffix_array(np.load(tmp_path / "ids.npy", mmap_mode="r")).tolist() == _sorted_suffixes(cases[3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_the_empty_and_the_one_character_corpus(dtype):
    assert suffix_array(np.array([], dtype=dtype)).tolist() == []
    assert suffix_array(np.array([], dtype=dtype)).dtype == np.int32
    assert suffix_array(np.array([5], dtype=dtype)).tolist() == [0]
    assert suffix_array(np.array([1000 if dtype != np.uint8 else 200], dtype=dtype)).tolist() == [0]


def test_negative_ids_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        suffix_array(np.array([3, -1, 2], dtype=np.int32))


@pytest.mark.parametrize("alphabet", ["ab", UNICODE])
def test_matching_statistics_match_brute_force(alphabet):
    rng = random.Random(7)
    for _ in range(80):
        corpus = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        vocab = Vocab.from_text(corpus)
        index = CorpusIndex.build(vocab.encode(corpus))
        text = "".join(rng.choice(alphabet + "xyz") for _ in range(rng.randint(0, 40)))  # some chars not in corpus
        check = index.check(text, vocab.chars)
        assert check.lengths.tolist() == longest_matches(corpus, text)
        for i, (length, at) in enumerate(zip(check.lengths, check.corpus_at)):
            assert corpus[at : at + length] == text[i : i + length] if length else at == -1


def test_memorisation_figures_on_real_text_against_brute_force(shakespeare_text):
    corpus = shakespeare_text[:20_000] + UNICODE
    vocab = Vocab.from_text(corpus)
    index = CorpusIndex.build(vocab.encode(corpus))
    # A made-up text: a long copied passage, a short one, Unicode copied, and invented words between.
    copied = corpus[5_000:5_130]
    text = "Zounds, quoth the zyxt " + copied + " flibber " + corpus[900:925] + " 举头望明月，低头 qqq"
    check = index.check(text, vocab.chars)
    lengths = longest_matches(corpus, text)
    assert check.lengths.tolist() == lengths
    assert check.longest.length == max(lengths) >= len(copied)
    assert copied in text[check.longest.start : check.longest.start + check.longest.length]
    for n in (1, 5, 10, 20, 50, 200):
        assert check.share(n) == pytest.approx(_brute_share(corpus, text, n)), n
    assert check.share(len(text) + 1) is None
    # The most-copied spans, longest first, do not overlap and are really in the corpus.
    spans = check.top_spans()
    assert spans[0].length == check.longest.length and spans == sorted(spans, key=lambda s: -s.length)
    for span in spans:
        piece = text[span.start : span.start + span.length]
        assert corpus[span.corpus_at : span.corpus_at + span.length] == piece and span.length >= 10
    cover = check.coverage()
    assert cover[check.longest.start] == check.longest.length and cover[:5].tolist() == [0] * 5
    record = check.to_dict()
    assert record["longest_copied"]["text"] == text[check.longest.start : check.longest.start + check.longest.length]
    assert record["ngram_share"]["20"] == pytest.approx(_brute_share(corpus, text, 20))


def test_an_empty_text_and_a_text_of_unknown_characters():
    vocab = Vocab.from_text("hello world")
    index = CorpusIndex.build(vocab.encode("hello world"))
    assert index.check("", vocab.chars).longest.length == 0
    check = index.check("ZZZZ", vocab.chars)
    assert check.lengths.tolist() == [0, 0, 0, 0] and check.share(2) == 0.0 and check.top_spans() == []


# ----------------------------------------------------------------------------- the real command


def _corpus_text(run) -> str:
    ids = np.load(run / "corpus.ids.npy")
    chars = json.loads((run / "corpus.json").read_text(encoding="utf-8"))["vocab"]
    return "".join(chars[i] for i in ids)


def test_sample_novelty_keeps_stdout_clean_and_caches_the_index(run_copy):
    plain = run_cli("sample", str(run_copy), "--length", "300", "--seed", "3")
    checked = run_cli("sample", str(run_copy), "--length", "300", "--seed", "3", "--novelty")
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout == plain.stdout                       # the report is on stderr, not in the sample
    assert "memorisation check" in checked.stderr and "20-grams in corpus" in checked.stderr
    assert "index built and cached" in checked.stderr
    assert (run_copy / INDEX_FILE).is_file() and (run_copy / INDEX_META).is_file()
    again = run_cli("sample", str(run_copy), "--length", "300", "--seed", "3", "--novelty")
    assert "index loaded" in again.stderr and again.stdout == plain.stdout


def test_sample_novelty_json_figures_are_exact(run_copy):
    result = run_cli("sample", str(run_copy), "--length", "400", "--seed", "5", "--num-samples", "2",
                     "--temperature", "0.5", "--novelty", "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    corpus = _corpus_text(run_copy)
    assert len(record["samples"]) == 2
    for sample in record["samples"]:
        text, figures = sample["text"], sample["novelty"]
        assert len(text) == 400 == figures["characters"]
        lengths = longest_matches(corpus, text)
        assert figures["longest_copied"]["length"] == max(lengths)
        assert figures["longest_copied"]["text"] in corpus
        for n in ("10", "20", "50"):
            assert figures["ngram_share"][n] == pytest.approx(_brute_share(corpus, text, int(n)))
    assert record["corpus"]["index"] in ("built and cached", "loaded")


def test_a_stale_index_is_rebuilt(run_copy):
    run = Run(run_copy)
    ids, _ = CorpusCache(run).cached()
    IndexCache(run).store(np.zeros(len(ids), dtype=np.int32))     # a wrong index, properly keyed …
    (run_copy / INDEX_META).write_text(json.dumps({"kind": "charlstm-suffix-array", "ids_bytes": 1}))  # … then stale
    assert IndexCache(run).load(ids) == (None, "stale")
    result = run_cli("sample", str(run_copy), "--length", "50", "--novelty", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["corpus"]["index"] == "built and cached"
    sa, how = IndexCache(run).load(ids)
    assert how == "loaded" and sa.tolist() == suffix_array(np.asarray(ids)).tolist()


def test_without_a_corpus_novelty_is_a_one_line_error(run_copy, tmp_path):
    (run_copy / "corpus.ids.npy").unlink()
    sources = json.loads((run_copy / "corpus.json").read_text(encoding="utf-8"))["sources"]
    moved = tmp_path / "moved.txt"
    shutil.move(sources[0], moved)
    try:
        result = run_cli("sample", run_copy, "--length", "20", "--novelty")
        assert result.exit_code == 1 and "training corpus is not at hand" in result.output
        assert len(result.output.strip().splitlines()) == 1
    finally:
        shutil.move(moved, sources[0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_corpus_replaced_by_a_file_of_another_kind_is_named_not_called_gone(small_run, corpus, kind):
    (small_run / "corpus.ids.npy").unlink()                  # no copy in the run: the corpus file is read again
    plant(corpus, kind)
    said = f"{corpus}: not a regular file ({KINDS[kind]})"
    with within(60):
        refused(run_cli("sample", small_run, "--length", "20", "--novelty"), said)
        refused(run_cli("score", small_run, "--baseline", "ngram:3", "--text", "To be, or not"), said)
        refused(run_cli("score", small_run), said)                # its held-out text: the corpus's end
        refused(run_cli("inspect", small_run, "--find", "whitespace"), said)


def test_without_an_id_cache_the_corpus_files_are_read_again(run_copy):
    corpus = _corpus_text(run_copy)
    (run_copy / "corpus.ids.npy").unlink()
    result = run_cli("sample", str(run_copy), "--length", "200", "--seed", "2", "--novelty", "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["corpus"]["source"].startswith("the corpus files (plays.txt")
    assert record["corpus"]["index"] == "built in memory (not a run folder)"
    text = record["samples"][0]["text"]
    assert record["samples"][0]["novelty"]["longest_copied"]["length"] == max(longest_matches(corpus, text))
    assert not (run_copy / INDEX_FILE).exists()


def test_novelty_on_a_chinese_run_with_crlf(tmp_path):
    text = (UNICODE * 40)
    (tmp_path / "poems.txt").write_bytes(text.encode("utf-8"))
    out = tmp_path / "run"
    trained = run_cli("train", str(tmp_path / "poems.txt"), "--out", str(out), "--max-steps", "30", "--eval-every", "30",
                      *TINY)
    assert trained.exit_code == 0, trained.stderr
    result = run_cli("sample", str(out), "--length", "300", "--seed", "4", "--temperature", "0.3", "--novelty",
                     "--format", "json")
    assert result.exit_code == 0, result.stderr
    sample = json.loads(result.stdout)["samples"][0]
    lengths = longest_matches(text, sample["text"])
    assert sample["novelty"]["longest_copied"]["length"] == max(lengths)
    for n in ("10", "20"):
        assert sample["novelty"]["ngram_share"][n] == pytest.approx(_brute_share(text, sample["text"], int(n)))
    shown = run_cli("sample", str(out), "--length", "300", "--seed", "4", "--temperature", "0.3", "--novelty")
    # (CliRunner's stdout turns \r\n into \n; the JSON keeps the sample exactly, CRLF included.)
    assert shown.stdout.rstrip("\n") == sample["text"].replace("\r\n", "\n").rstrip("\n")
    assert "memorisation check" in shown.stderr and "\r\n" in sample["text"]


def test_a_run_locked_by_another_process_is_checked_but_not_written(run_copy):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write('4242'); f.flush(); print('held', flush=True); "
                               "time.sleep(60)", str(run_copy / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("sample", str(run_copy), "--length", "100", "--novelty", "--format", "json")
        assert result.exit_code == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["corpus"]["index"].startswith("built (not cached: ") and "another process" in record["corpus"]["index"]
        assert not (run_copy / INDEX_FILE).exists() and not list(run_copy.glob(".corpus.sa*"))
        assert record["samples"][0]["novelty"]["characters"] == 100
    finally:
        holder.kill()
        holder.wait()
