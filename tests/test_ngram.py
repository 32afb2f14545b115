"""`charlstm score --baseline ngram:N`: the n-gram model pinned to hand counts and a brute-force
Witten–Bell reference, its bounded tables, the error breakdown and bracket test, and the real CLI on
real tiny models (English, Python, Chinese)."""

from __future__ import annotations

import json
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm import checkpoint as ckpt
from charlstm.cli import main
from charlstm.data import Vocab, split
from charlstm.erroranalysis import (CATEGORIES, DEFINITIONS, RARE_COUNT, bracket_test, categorise, word_counts,
                                    words)
from charlstm.ngram import MAX_ORDER, NgramModel, table_buckets, training_ids
from charlstm.render import unescape_text
from conftest import CORPORA, TINY, assert_no_traceback


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def train_tiny(tmp_path, text: str, name: str, steps: int = 40):
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text(text, encoding="utf-8")
    out = tmp_path / "checkpoints" / name
    result = invoke("train", corpus, "--out", out, "--max-steps", steps, "--eval-every", steps, "--log-every", 10,
                    *TINY)
    assert result.exit_code == 0, result.output
    return out, corpus


def witten_bell(train: list[int], V: int, order: int, context: list[int], c: int) -> Fraction:
    """Interpolated Witten–Bell by direct counting, in exact fractions (the reference)."""
    n, uni = len(train), Counter(train)
    p = (uni[c] + Fraction(len(uni), V)) / (n + len(uni))
    for k in range(1, order):
        if len(context) < k:
            break
        h = tuple(context[-k:])
        follow = Counter(train[t] for t in range(k, n) if tuple(train[t - k : t]) == h)
        total = sum(follow.values())
        if total:
            p = (follow[c] + len(follow) * p) / (total + len(follow))
    return p


# ------------------------------------------------------------------------------ the model itself


def test_bits_per_char_matches_a_hand_count():
    # Training text "aab" over the vocabulary a, b, c (c never seen). Unigram: C(a)=2, C(b)=1, C=3,
    # T0=2 seen types: P0(a) = (2 + 2/3)/5 = 8/15, P0(b) = 1/3, P0(c) = 2/15. Bigram context "a" was
    # followed by a and b once each: C=2, T=2, so P1(a|a) = (1 + 2·8/15)/4 = 31/60, P1(b|a) = 25/60,
    # P1(c|a) = 4/60. Scoring "aab": predict a after a, then b after a.
    model = NgramModel.build(np.array([0, 0, 1], dtype=np.uint8), vocab_size=3, order=2)
    probs = model.probabilities(np.array([0, 0, 1]))
    assert probs[0] == pytest.approx([8 / 15, 5 / 15, 2 / 15], abs=1e-15)
    assert probs[1] == pytest.approx([31 / 60, 25 / 60, 4 / 60], abs=1e-15)
    score = model.score(np.array([0, 0, 1]))
    assert score.bits_per_char == pytest.approx((-math.log2(31 / 60) - math.log2(25 / 60)) / 2, abs=1e-12)
    unigram = NgramModel.build(np.array([0, 0, 1], dtype=np.uint8), vocab_size=3, order=1).score(np.array([0, 0, 1]))
    assert unigram.bits_per_char == pytest.approx((-math.log2(8 / 15) - math.log2(1 / 3)) / 2, abs=1e-12)
    assert unigram.best_p == pytest.approx([8 / 15, 1 / 3])
    assert score.best_p == pytest.approx([8 / 15, 25 / 60])                   # the better of P0 and P1


@pytest.mark.parametrize("order", [1, 2, 3, 6])
def test_every_probability_matches_brute_force_witten_bell(order, shakespeare_text):
    text = shakespeare_text[:300]
    vocab = Vocab.from_text(text + "#")                 # '#' is in the vocabulary but never in training
    train = vocab.encode(text[:250])
    query = vocab.encode(text[250:] + "#e")
    probs = NgramModel.build(train, len(vocab), order).probabilities(query)
    train_list = train.tolist()
    for t in range(0, len(query), 3):
        context = query[max(0, t - order + 1) : t].tolist()
        expected = [float(witten_bell(train_list, len(vocab), order, context, c)) for c in range(len(vocab))]
        assert probs[t] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert (probs > 0).all()


@pytest.mark.parametrize("order", [1, 4, MAX_ORDER])
def test_probabilities_sum_to_one_everywhere(order, chinese_text):
    vocab = Vocab.from_text(chinese_text)
    ids = vocab.encode(chinese_text)
    model = NgramModel.build(ids[:10_000], len(vocab), order)
    probs = model.probabilities(ids[10_000:10_600])          # text the model never counted, CJK vocabulary
    assert probs.shape == (600, len(vocab))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    crowded = NgramModel.build(ids[:10_000], len(vocab), order, max_buckets=256)   # collisions everywhere
    np.testing.assert_allclose(crowded.probabilities(ids[10_000:10_300]).sum(axis=1), 1.0, rtol=0, atol=1e-9)


def test_tables_stop_growing_at_their_cap(shakespeare_text):
    vocab = Vocab.from_text(shakespeare_text)
    ids = vocab.encode(shakespeare_text)
    small = NgramModel.build(ids[:6_000], len(vocab), 8, max_buckets=1 << 12)
    large = NgramModel.build(np.tile(ids, 3), len(vocab), 8, max_buckets=1 << 12)   # 30× the characters
    assert small.buckets == large.buckets == 1 << 12 and small.nbytes == large.nbytes
    assert small.nbytes == 12 * (1 << 12) * 7 + 8 * len(vocab)    # 2 tags of 16 bits, 2 counts of 32, an order
    # the default cap: 2**20 buckets whatever the corpus, 228 MiB of tables for N = 20
    assert table_buckets(64 << 20) == table_buckets(1 << 40) == 1 << 20 and table_buckets(10) == 1 << 16
    assert 12 * (1 << 20) * (MAX_ORDER - 1) == 228 * 2**20
    # collisions make it worse, never broken: a crowded model backs off, still better than a unigram
    train, held_out = ids[:-3_000], ids[-3_000:]
    unigram = NgramModel.build(train, len(vocab), 1).score(held_out).bits_per_char
    crowded = NgramModel.build(train, len(vocab), 8, max_buckets=1 << 10).score(held_out).bits_per_char
    roomy = NgramModel.build(train, len(vocab), 8).score(held_out).bits_per_char
    assert roomy < crowded < unigram - 0.5


def test_higher_orders_predict_real_text_better_than_a_unigram(shakespeare_text):
    vocab = Vocab.from_text(shakespeare_text)
    ids = vocab.encode(shakespeare_text)
    bpc = {n: NgramModel.build(ids[:-5_000], len(vocab), n).score(ids[-5_000:]).bits_per_char for n in (1, 3, 5)}
    assert bpc[5] < bpc[3] < bpc[1] < math.log2(len(vocab))


# ------------------------------------------------------------------------------ the error analysis


def test_categories_follow_the_stated_order():
    text = "the cat, the cat; zyx q"
    T = len(text)
    lstm_p = np.full(T - 1, 0.1)
    lstm_p[0] = 0.9                                              # 'h' right: not an error
    best = np.zeros(T - 1)
    best[1] = 0.7                                                # 'e': the n-gram gets it
    counts = {"the": 100, "cat": 100, "zyx": 1, "q": 100}
    cats = categorise(text, lstm_p, best, counts)
    at = {i + 1: c for i, c in enumerate(cats)}
    assert at[1] == "correct" and at[2] == "n-gram"
    second = text.index("the", 4)                                  # "the cat" again: memory from 6 chars back
    assert at[second + 5] == "memory"                            # 'a' of the second "cat": "the ca" came before
    assert at[text.index("zyx") + 1] == "rare word" and counts["zyx"] < RARE_COUNT
    assert at[text.index("q")] == "word start"
    assert at[text.index(",")] == "punctuation" and at[text.index(" ")] == "rest"
    assert set(cats) <= {"correct", *CATEGORIES} and set(CATEGORIES) <= set(DEFINITIONS)


def test_words_split_cjk_into_characters_and_count_in_the_training_text():
    found = [m.group() for m in words("床前明月光, moon_light 42")]
    assert found == ["床", "前", "明", "月", "光", "moon_light", "42"]
    chars = sorted(set("床前明月光 the cat"))
    vocab = Vocab(chars)
    train = vocab.encode("the cat the 床前 cat 月")
    exact = word_counts("the 月 光 cat", train, chars)
    assert exact == {"the": 2, "月": 1, "光": 0, "cat": 2}
    cut = word_counts("the 月 光 cat", train, chars, chunk=5)      # words cut by a chunk edge only count low
    assert all(cut[w] <= exact[w] for w in exact) and cut["月"] == 1


def test_bracket_test_bands_closers_by_distance_from_their_opener():
    text = "f(x) + g(a, [b]) + {k: (v)}" + " " * 3 + "(" + "y" * 30 + ")"
    T = len(text)
    closers = {i for i, c in enumerate(text) if c in ")]}"}
    lstm_right = np.array([i + 1 in closers for i in range(T - 1)])       # the LSTM gets every closer
    ngram_right = np.zeros(T - 1, dtype=bool)
    ngram_right[text.index("x)") + 1 - 1] = True                          # the n-gram only the nearest one
    p = np.where(lstm_right, 0.8, 0.1)
    bands = bracket_test(text, p, lstm_right, np.full(T - 1, 0.2), ngram_right)
    distances = {(b.low, b.high): b.count for b in bands}
    # f(x): 2; [b]: 2; g(…): 7; (v): 2; {…}: 7; ( 30 y ): 31
    assert distances == {(1, 5): 3, (6, 10): 2, (21, 40): 1}
    first = bands[0]
    assert first.lstm_accuracy == 1.0 and first.ngram_accuracy == pytest.approx(1 / 3)
    assert first.lstm_mean_p == pytest.approx(0.8) and first.ngram_mean_p == pytest.approx(0.2)
    assert bracket_test("no brackets here", p[:15], lstm_right[:15], p[:15], ngram_right[:15]) == []


# ------------------------------------------------------------------------------ the command line


def test_cli_compares_both_models_on_held_out_text(trained_run, shakespeare_text, tmp_path):
    passage = shakespeare_text[-700:]                     # the validation tail: neither model counted it
    path = tmp_path / "passage.txt"
    path.write_text(passage, encoding="utf-8")
    js = invoke("score", trained_run, "--text-file", path, "--baseline", "ngram:5", "--format", "json")
    assert_no_traceback(js)
    assert js.exit_code == 0, js.output
    data = json.loads(js.stdout)
    plain = json.loads(invoke("score", trained_run, "--text-file", path, "--format", "json").stdout)
    assert data["lstm_bits_per_char"] == pytest.approx(plain["bits_per_char"], abs=1e-6)
    # the baseline is built from the training split only, exactly as data.split cut it
    loaded = ckpt.load(ckpt.resolve(str(trained_run)))
    corpus_ids = loaded.vocab.encode(shakespeare_text)
    train, held = split(corpus_ids, loaded.run_info.train_config.val_fraction)
    assert len(held) >= 700 and np.array_equal(training_ids(loaded), train)
    direct = NgramModel.build(train, len(loaded.vocab), 5).score(loaded.vocab.encode(passage))
    assert data["ngram_bits_per_char"] == pytest.approx(direct.bits_per_char, abs=1e-6)
    assert data["ngram"]["training_chars"] == len(train)
    assert data["difference"] == pytest.approx(data["ngram_bits_per_char"] - data["lstm_bits_per_char"], abs=1e-5)
    assert len(data["lstm_bits"]) == len(data["ngram_bits"]) == len(data["category"]) == 699
    assert sum(row["errors"] for row in data["breakdown"]) == data["errors"] == \
        sum(c != "correct" for c in data["category"]) > 0
    assert [row["category"] for row in data["breakdown"]] == list(CATEGORIES)
    assert all(row["definition"] for row in data["breakdown"]) and "error" in data["definitions"]
    lstm_p = np.exp2(-np.array(data["lstm_bits"]))
    assert [c == "correct" for c in data["category"]] == list(lstm_p >= 0.5)

    tsv = invoke("score", trained_run, "--text-file", path, "--baseline", "ngram:5", "--format", "tsv")
    header, *rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert header == ["position", "char", "lstm_bits", "ngram_bits", "category"] and len(rows) == 699
    assert "".join(unescape_text(r[1]) for r in rows) == passage[1:]
    assert [float(r[3]) for r in rows] == pytest.approx(data["ngram_bits"], rel=1e-5, abs=1e-5)  # 6 digits
    assert [r[4] for r in rows] == data["category"]

    text = invoke("score", trained_run, "--text-file", path, "--baseline", "ngram:5")
    assert text.exit_code == 0, text.output
    assert f"LSTM     {data['lstm_bits_per_char']:.3f} bits per character" in text.stdout
    assert f"5-gram   {data['ngram_bits_per_char']:.3f} bits per character" in text.stdout
    assert "errors" in text.stdout and "rare word" in text.stdout


@pytest.mark.parametrize("value, message", [
    ("ngram:0", "the n-gram order must be from 1 to 20"),
    ("ngram:99", "the n-gram order must be from 1 to 20"),
    ("foo", "is not a baseline: give ngram:N"),
    ("ngram:", "is not a baseline: give ngram:N"),
])
def test_bad_baselines_are_one_line_usage_errors(trained_run, value, message):
    result = invoke("score", trained_run, "--text", "To be, or not", "--baseline", value)
    assert_no_traceback(result)
    assert result.exit_code == 2 and message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


@pytest.fixture(scope="module")
def python_run(tmp_path_factory):
    text = (CORPORA / "python-sample.py.txt").read_text(encoding="utf-8")[:40_000]
    return train_tiny(tmp_path_factory.mktemp("py"), text, "code", steps=60)[0], text


def test_cli_bracket_test_on_python(python_run):
    run, text = python_run
    snippet = text[-1500:]                                # held out
    data = json.loads(invoke("score", run, "--text", snippet, "--baseline", "ngram:7", "--format", "json").stdout)
    closers = sum(snippet.count(c) for c in ")]}")
    assert data["brackets"] and 0 < sum(b["count"] for b in data["brackets"]) <= closers
    for band in data["brackets"]:
        assert 0 <= band["lstm_accuracy"] <= 1 and 0 <= band["ngram_accuracy"] <= 1 and band["low"] >= 1
    shown = invoke("score", run, "--text", snippet, "--baseline", "ngram:7")
    assert "closing brackets by distance from their opener" in shown.stdout
    assert "7-gram accuracy" in shown.stdout


def test_cli_on_chinese(tmp_path, chinese_text):
    run, _ = train_tiny(tmp_path, chinese_text, "poems", steps=20)
    vocab = ckpt.load(ckpt.resolve(str(run))).vocab
    passage = "".join(c for c in chinese_text[-600:] if c in vocab.index)[-300:]   # (rare characters may be folded)
    assert len(passage) == 300 and sum("\u4e00" <= c <= "\u9fff" for c in passage) > 200
    result = invoke("score", run, "--text", passage, "--baseline", "ngram:3", "--format", "json")
    assert_no_traceback(result)
    data = json.loads(result.stdout)
    assert data["text"] == passage and len(data["category"]) == 299
    assert math.isfinite(data["ngram_bits_per_char"]) and data["ngram_bits_per_char"] > 0
    tsv = invoke("score", run, "--text", passage, "--baseline", "ngram:3", "--format", "tsv")
    assert "".join(unescape_text(line.split("\t")[1]) for line in tsv.stdout.splitlines()[1:]) == passage[1:]
    shown = invoke("score", run, "--text", passage, "--baseline", "ngram:3")
    assert shown.exit_code == 0 and "3-gram" in shown.stdout


def test_a_missing_or_changed_corpus_is_a_one_line_error(tmp_path, shakespeare_text):
    run, corpus = train_tiny(tmp_path, shakespeare_text[:8_000], "gone", steps=5)
    corpus.write_text(shakespeare_text[:8_000].replace("the", "teh"), encoding="utf-8")
    changed = invoke("score", run, "--text", "To be, or not", "--baseline", "ngram:3")
    assert_no_traceback(changed)
    assert changed.exit_code == 1 and "the training corpus changed since the model was trained" in changed.stderr
    corpus.unlink()
    gone = invoke("score", run, "--text", "To be, or not", "--baseline", "ngram:3")
    assert_no_traceback(gone)
    assert gone.exit_code == 1 and "the training corpus is gone" in gone.stderr and corpus.name in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1


def test_a_model_trained_on_stdin_cannot_have_a_baseline(tmp_path, shakespeare_text):
    out = tmp_path / "piped"
    trained = invoke("train", "-", "--out", out, "--max-steps", 3, "--eval-every", 3, *TINY,
                     input=shakespeare_text[:6_000])
    assert trained.exit_code == 0, trained.output
    result = invoke("score", out, "--text", "To be, or not", "--baseline", "ngram:3")
    assert_no_traceback(result)
    assert result.exit_code == 1 and "trained on standard input" in result.stderr


def test_help_states_the_definitions_the_analysis_uses():
    from charlstm.erroranalysis import DYNAMIC_CONTEXT, DYNAMIC_WINDOW, ERROR_P

    shown = " ".join(invoke("score", "--help").stdout.split())
    assert f"gives p < {ERROR_P}" in shown and f"p >= {ERROR_P}" in shown
    assert f"its {DYNAMIC_CONTEXT} preceding characters occurred in the last {DYNAMIC_WINDOW} characters" in shown
    assert f"seen fewer than {RARE_COUNT} times" in shown and f"from 1 to {MAX_ORDER}" in shown
    from charlstm.cli.params import NgramBaseline

    assert NgramBaseline.MAX_ORDER == MAX_ORDER
