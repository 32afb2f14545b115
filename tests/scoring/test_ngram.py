"""scoring/ngram.py and comparison.py, `charlstm score --baseline ngram:N`: the n-gram model pinned to
hand counts and a brute-force interpolated modified Kneser–Ney reference, its bounded tables, the
error breakdown and bracket test, and the real CLI on real tiny models (English, Python, Chinese); a
comparison too long for memory refused in one line."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
import pytest

from charlstm.runs import checkpoint as ckpt
from charlstm.data.vocab import Vocab
from charlstm.data.streams import split
from charlstm.scoring.comparison import CATEGORIES, DEFINITIONS, RARE_COUNT, bracket_test, categorise, word_counts, words
from charlstm.scoring.ngram_tables import FALLBACK_DISCOUNTS, MAX_ORDER, discounts, table_buckets
from charlstm.scoring.ngram import NgramModel, training_ids
from conftest import CORPORA, MEMORY_BOUND_MB, TINY, error_line, long_text, measured, run_cli, unescape_text


def train_tiny(tmp_path, text: str, name: str, steps: int = 40):
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text(text, encoding="utf-8")
    out = tmp_path / "checkpoints" / name
    result = run_cli("train", corpus, "--out", out, "--max-steps", steps, "--eval-every", steps, "--log-every", 10,
                    *TINY)
    assert result.exit_code == 0, result.output
    return out, corpus


def kn_counts(train: list[int], order: int, j: int) -> dict[tuple, int]:
    """a(h c) of every (j + 1)-gram h c of the training text: how often it occurs at the top order
    (j = order − 1), else how many distinct characters come before it (the text's start is one)."""
    grams = range(j, len(train))
    if j == order - 1:
        return dict(Counter(tuple(train[t - j : t + 1]) for t in grams))
    before = defaultdict(set)
    for t in grams:
        before[tuple(train[t - j : t + 1])].add(train[t - j - 1] if t > j else None)
    return {gram: len(chars) for gram, chars in before.items()}


def kn_discount(table: dict[tuple, int]):
    """D(a) of one order, from its count of counts (Chen & Goodman; i / 2 where undefined or out of (0, i])."""
    n = [sum(a == i for a in table.values()) for i in (1, 2, 3, 4)]
    d = [Fraction(i, 2) for i in (1, 2, 3)]
    if n[0] + 2 * n[1]:
        y = Fraction(n[0], n[0] + 2 * n[1])
        for i in (1, 2, 3):
            if n[i - 1] and 0 < i - (i + 1) * y * n[i] / n[i - 1] <= i:
                d[i - 1] = i - (i + 1) * y * n[i] / n[i - 1]
    return lambda a: d[min(a, 3) - 1] if a else 0


def kneser_ney(train: list[int], V: int, order: int, context: list[int], c: int) -> Fraction:
    """Interpolated modified Kneser–Ney by direct counting, in exact fractions (the reference)."""
    p = Fraction(1, V)
    for j in range(min(order - 1, len(context)) + 1):
        h = tuple(context[len(context) - j :])
        table = kn_counts(train, order, j)
        cut = kn_discount(table)
        follow = {gram[-1]: a for gram, a in table.items() if gram[:-1] == h}
        if follow:
            a = follow.get(c, 0)
            p = (a - cut(a) + sum(map(cut, follow.values())) * p) / sum(follow.values())
    return p


# ------------------------------------------------------------------------------ the model itself


def test_bits_per_char_matches_a_hand_count():
    # Training text "aaab" over the vocabulary a, b, c (c never seen), N = 2.
    # Unigram, on continuation counts: a follows the start and a (2 distinct), b follows a (1), c none:
    # n1 = n2 = 1, so Y = 1/3, D1 = 1 − 2·Y·n2/n1 = 1/3, D2 = 2 − 3·Y·n3/n2 = 2; γ = D2 + D1 = 7/3 of a = 3:
    # P0(a) = (2 − 2 + 7/3 · 1/3)/3 = 7/27, P0(b) = (1 − 1/3 + 7/9)/3 = 13/27, P0(c) = 7/27.
    # Bigram, on raw counts: "a" was followed by a twice and b once (C = 3), the same n1, n2 and so D1, D2:
    # γ = 7/3, P1(a|a) = (0 + 7/3 · 7/27)/3 = 49/243, P1(b|a) = (2/3 + 7/3 · 13/27)/3 = 145/243, P1(c|a) = 49/243.
    model = NgramModel.build(np.array([0, 0, 0, 1], dtype=np.uint8), vocab_size=3, order=2)
    np.testing.assert_allclose(model.discounts[:, :2], [[1 / 3, 2], [1 / 3, 2]], rtol=1e-15)
    probs = model.probabilities(np.array([0, 0, 0, 1]))
    assert probs[0] == pytest.approx([7 / 27, 13 / 27, 7 / 27], abs=1e-15)
    assert probs[1] == pytest.approx([49 / 243, 145 / 243, 49 / 243], abs=1e-15)
    score = model.score(np.array([0, 0, 0, 1]))               # predict a after a twice, then b after a
    assert score.bits_per_char == pytest.approx(-(2 * math.log2(49 / 243) + math.log2(145 / 243)) / 3, abs=1e-12)
    assert score.best_p == pytest.approx([7 / 27, 7 / 27, 145 / 243])        # the better of P0 and P1
    # N = 1 on "aab" counts raw: C(a) = 2, C(b) = 1 give the same D1, D2 and the same P0
    unigram = NgramModel.build(np.array([0, 0, 1], dtype=np.uint8), vocab_size=3, order=1).score(np.array([0, 0, 1]))
    assert unigram.p == pytest.approx([7 / 27, 13 / 27]) and unigram.best_p == pytest.approx([7 / 27, 13 / 27])


def test_discounts_follow_count_of_counts_and_fall_back_where_undefined():
    n1, n2, n3, n4 = 400, 150, 70, 40
    y = n1 / (n1 + 2 * n2)
    assert discounts([n1, n2, n3, n4]) == pytest.approx([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
    assert discounts([0, 0, 0, 0]) == pytest.approx(FALLBACK_DISCOUNTS)          # nothing to estimate from
    assert discounts([1, 0, 5, 0]) == pytest.approx([1, 1.0, 3])                 # D2: n2 = 0, so i / 2
    assert discounts([10, 1, 100, 0])[1] == 1.0                                  # D2 = 2 − 3·Y·100 < 0: i / 2


@pytest.mark.parametrize("order", [1, 2, 3, 6])
def test_every_probability_matches_brute_force_kneser_ney(order, shakespeare_text):
    text = shakespeare_text[:300]
    vocab = Vocab.from_text(text + "#")                 # '#' is in the vocabulary but never in training
    train = vocab.encode(text[:250])
    query = vocab.encode(text[250:] + "#e")
    probs = NgramModel.build(train, len(vocab), order).probabilities(query)
    chunked = NgramModel.build(train, len(vocab), order, chunk=7).probabilities(query)  # counts cross chunk edges
    assert np.array_equal(probs, chunked)
    train_list = train.tolist()
    for t in range(0, len(query), 3):
        context = query[max(0, t - order + 1) : t].tolist()
        expected = [float(kneser_ney(train_list, len(vocab), order, context, c)) for c in range(len(vocab))]
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
    crowded_probs = crowded.probabilities(ids[10_000:10_300])
    np.testing.assert_allclose(crowded_probs.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    unseen = np.setdiff1d(np.arange(len(vocab)), ids[:10_000])                   # characters training never had
    assert len(unseen) > 20 and (probs[:, unseen] > 0).all() and (crowded_probs[:, unseen] > 0).all()


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


def test_a_long_context_does_not_predict_held_out_code_worse_than_a_short_one():
    # Witten-Bell got worse above N = 7 (2.281 bits/char at N = 5, 2.746 at N = 10 here); Kneser-Ney does not
    text = (CORPORA / "python-sample.py.txt").read_text(encoding="utf-8")
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    cut = len(ids) - len(ids) // 20                                   # the last 5% held out
    train, held_out = ids[:cut], ids[cut:]
    bpc = {n: NgramModel.build(train, len(vocab), n).score(held_out).bits_per_char for n in (5, 10)}
    assert bpc[10] <= bpc[5]


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
    js = run_cli("score", trained_run, "--text-file", path, "--baseline", "ngram:5", "--format", "json")
    assert js.exit_code == 0, js.output
    data = json.loads(js.stdout)
    plain = json.loads(run_cli("score", trained_run, "--text-file", path, "--format", "json").stdout)
    assert data["lstm_bits_per_char"] == pytest.approx(plain["bits_per_char"], abs=1e-6)
    # the baseline is built from the training split only, exactly as streams.split cut it
    loaded = ckpt.load(ckpt.resolve(str(trained_run)))
    corpus_ids = loaded.vocab.encode(shakespeare_text)
    train, held = split(corpus_ids, loaded.run_info.train_config.val_fraction)
    assert len(held) >= 700 and np.array_equal(training_ids(loaded), train)
    direct = NgramModel.build(train, len(loaded.vocab), 5).score(loaded.vocab.encode(passage))
    assert data["ngram_bits_per_char"] == pytest.approx(direct.bits_per_char, abs=1e-6)
    assert data["ngram"]["training_chars"] == len(train)
    assert data["difference"] == pytest.approx(data["ngram_bits_per_char"] - data["lstm_bits_per_char"], abs=1e-5)
    assert data["yardsticks"] == plain["yardsticks"]                       # the same yardsticks as a plain score
    assert len(data["lstm_bits"]) == len(data["ngram_bits"]) == len(data["category"]) == 699
    assert sum(row["errors"] for row in data["breakdown"]) == data["errors"] == \
        sum(c != "correct" for c in data["category"]) > 0
    assert [row["category"] for row in data["breakdown"]] == list(CATEGORIES)
    assert all(row["definition"] for row in data["breakdown"]) and "error" in data["definitions"]
    lstm_p = np.exp2(-np.array(data["lstm_bits"]))
    assert [c == "correct" for c in data["category"]] == list(lstm_p >= 0.5)

    tsv = run_cli("score", trained_run, "--text-file", path, "--baseline", "ngram:5", "--format", "tsv")
    header, *rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert header == ["position", "char", "lstm_bits", "ngram_bits", "category"] and len(rows) == 699
    assert "".join(unescape_text(r[1]) for r in rows) == passage[1:]
    assert [float(r[3]) for r in rows] == pytest.approx(data["ngram_bits"], rel=1e-5, abs=1e-5)  # 6 digits
    assert [r[4] for r in rows] == data["category"]

    text = run_cli("score", trained_run, "--text-file", path, "--baseline", "ngram:5")
    assert text.exit_code == 0, text.output
    assert f"LSTM     {data['lstm_bits_per_char']:.3f} bits per character" in text.stdout
    assert f"5-gram   {data['ngram_bits_per_char']:.3f} bits per character" in text.stdout
    blind = data["yardsticks"]["blind_guess_bits_per_char"]
    assert f"for scale: a blind guess among the {len(loaded.vocab)} characters scores {blind:.3f}" in " ".join(
        text.stdout.split())
    assert "errors" in text.stdout and "rare word" in text.stdout


@pytest.mark.parametrize("value, message", [
    ("ngram:0", "the n-gram order must be from 1 to 20"),
    ("ngram:99", "the n-gram order must be from 1 to 20"),
    ("foo", "is not a baseline: give ngram:N"),
    ("ngram:", "is not a baseline: give ngram:N"),
])
def test_bad_baselines_are_one_line_usage_errors(trained_run, value, message):
    result = run_cli("score", trained_run, "--text", "To be, or not", "--baseline", value)
    assert result.exit_code == 2 and message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


@pytest.fixture(scope="module")
def python_run(tmp_path_factory):
    text = (CORPORA / "python-sample.py.txt").read_text(encoding="utf-8")[:40_000]
    return train_tiny(tmp_path_factory.mktemp("py"), text, "code", steps=60)[0], text


def test_cli_bracket_test_on_python(python_run):
    run, text = python_run
    snippet = text[-1500:]                                # held out
    data = json.loads(run_cli("score", run, "--text", snippet, "--baseline", "ngram:7", "--format", "json").stdout)
    closers = sum(snippet.count(c) for c in ")]}")
    assert data["brackets"] and 0 < sum(b["count"] for b in data["brackets"]) <= closers
    for band in data["brackets"]:
        assert 0 <= band["lstm_accuracy"] <= 1 and 0 <= band["ngram_accuracy"] <= 1 and band["low"] >= 1
    shown = run_cli("score", run, "--text", snippet, "--baseline", "ngram:7")
    assert "closing brackets by distance from their opener" in shown.stdout
    assert "7-gram accuracy" in shown.stdout


def test_cli_on_chinese(tmp_path, chinese_text):
    run, _ = train_tiny(tmp_path, chinese_text, "poems", steps=20)
    vocab = ckpt.load(ckpt.resolve(str(run))).vocab
    passage = "".join(c for c in chinese_text[-600:] if c in vocab.index)[-300:]   # (rare characters may be folded)
    assert len(passage) == 300 and sum("\u4e00" <= c <= "\u9fff" for c in passage) > 200
    result = run_cli("score", run, "--text", passage, "--baseline", "ngram:3", "--format", "json")
    data = json.loads(result.stdout)
    assert data["text"] == passage and len(data["category"]) == 299
    assert math.isfinite(data["ngram_bits_per_char"]) and data["ngram_bits_per_char"] > 0
    tsv = run_cli("score", run, "--text", passage, "--baseline", "ngram:3", "--format", "tsv")
    assert "".join(unescape_text(line.split("\t")[1]) for line in tsv.stdout.splitlines()[1:]) == passage[1:]
    shown = run_cli("score", run, "--text", passage, "--baseline", "ngram:3")
    assert shown.exit_code == 0 and "3-gram" in shown.stdout


def test_a_missing_or_changed_corpus_is_a_one_line_error(tmp_path, shakespeare_text):
    run, corpus = train_tiny(tmp_path, shakespeare_text[:8_000], "gone", steps=5)
    corpus.write_text(shakespeare_text[:8_000].replace("the", "teh"), encoding="utf-8")
    changed = run_cli("score", run, "--text", "To be, or not", "--baseline", "ngram:3")
    assert changed.exit_code == 1 and "the training corpus changed since the model was trained" in changed.stderr
    corpus.unlink()
    gone = run_cli("score", run, "--text", "To be, or not", "--baseline", "ngram:3")
    assert gone.exit_code == 1 and "the training corpus is gone" in gone.stderr and corpus.name in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1


def test_a_model_trained_on_stdin_cannot_have_a_baseline(tmp_path, shakespeare_text):
    out = tmp_path / "piped"
    trained = run_cli("train", "-", "--out", out, "--max-steps", 3, "--eval-every", 3, *TINY,
                     input=shakespeare_text[:6_000])
    assert trained.exit_code == 0, trained.output
    result = run_cli("score", out, "--text", "To be, or not", "--baseline", "ngram:3")
    assert result.exit_code == 1 and "trained on standard input" in result.stderr


def test_help_states_the_definitions_the_analysis_uses():
    from charlstm.scoring.comparison import DYNAMIC_CONTEXT, DYNAMIC_WINDOW, ERROR_P

    shown = " ".join(run_cli("score", "--help").stdout.split())
    assert f"gives p < {ERROR_P}" in shown and f"p >= {ERROR_P}" in shown
    assert f"its {DYNAMIC_CONTEXT} preceding characters occurred in the last {DYNAMIC_WINDOW} characters" in shown
    assert f"seen fewer than {RARE_COUNT} times" in shown and f"from 1 to {MAX_ORDER}" in shown
    from charlstm.cli.params import NgramBaseline

    assert NgramBaseline.MAX_ORDER == MAX_ORDER


def test_a_comparison_too_long_for_memory_is_refused_in_one_line_before_the_n_gram_is_built(tiny_run, tmp_path,
                                                                                            shakespeare_text):
    path = long_text(tmp_path / "long.txt", 8_000_000, shakespeare_text)
    code, out, err, peak = measured("score", tiny_run, "--text-file", path, "--baseline", "ngram:3", "--threads", "1",
                                    cwd=tmp_path, timeout=600)
    assert code == 1 and out == "" and peak < MEMORY_BOUND_MB
    assert re.fullmatch(r"Error: 8,000,000 characters is too long to compare with the n-gram: the comparison holds at "
                        r"most [\d,]+ characters in the memory budget of 768 MiB; give a shorter text", error_line(err))
