"""inspection/atlas.py, `inspect --atlas`: every unit against every feature in one pass, pinned to the
per-feature search, with chance levels that an unrelated feature cannot beat and a unit trained to
track quotes does; a text too long to map is refused in one line naming the most that fits, and that
much fits (peak memory measured in a real process)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from charlstm.runs import checkpoint as ckpt
from charlstm.inspection.analysis import feature_values, find_neurons, top_windows
from charlstm.inspection.atlas import SATURATED_SHARE, TRACKS_MARGIN, TRACKS_MIN_R, build_atlas, builtin_features, untrained_like, verdict
from charlstm.inspection.correlation import correlations
from charlstm.inspection.saturation import saturation_share
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.probes.recipes import rank_units
from charlstm.inspection.tracing import trace
from charlstm.config import TrainConfig
from charlstm.training.loop import train

from conftest import MEMORY_BOUND_MB, error_line, long_text, measured, quoted_lines, run_cli

MIXED = 'Line one "quoted" (a, b)\r\n  # comment 中文 诗 🙂 "more"\r\nURL www.x.org @me #tag 42\n' * 8


@pytest.fixture(scope="module")
def probe_text() -> str:
    return quoted_lines(150, seed=1)


@pytest.fixture(scope="module")
def mixed_trace():
    torch.manual_seed(3)
    vocab = Vocab.from_text(MIXED)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=12, embedding_size=6, num_layers=2)).eval()
    return trace(model, vocab, MIXED, vectors=["hidden", "cell", "forget"])


def test_atlas_of_a_trained_model_names_the_unit_the_probe_finds(quote_run, probe_text):
    loaded = ckpt.load(ckpt.resolve(quote_run))
    model = loaded.model(torch.device("cpu"))
    result = trace(model, loaded.vocab, probe_text, vectors=["hidden"])
    baseline = trace(untrained_like(model), loaded.vocab, probe_text, vectors=["hidden"])
    atlas = build_atlas(result, builtin_features(probe_text), ["hidden"], baseline=baseline)

    # The probe (recipes.rank_units, the per-feature search) and the atlas agree on the top quote unit.
    probe_best = rank_units(model, loaded.vocab, probe_text, "double-quote", vector="hidden")[0]
    (layer, vector, unit, r), = atlas.ranking("double-quote", 1)
    assert (layer, unit) == (probe_best.layer, probe_best.unit) and vector == "hidden"
    assert r == pytest.approx(probe_best.r, abs=1e-4) and abs(r) > 0.85

    # That unit's own row names double-quote and earns "tracks": far above both chance levels.
    row = next(u for u in atlas.units if (u.layer, u.unit) == (layer, unit))
    assert row.feature == "double-quote" and row.verdict == "tracks"
    assert atlas.shift_chance["double-quote"] < 0.25 < atlas.untrained_chance["double-quote"]
    assert row.chance == atlas.chance["double-quote"] == max(atlas.shift_chance["double-quote"],
                                                             atlas.untrained_chance["double-quote"])
    assert abs(row.r) >= row.chance + TRACKS_MARGIN
    # Units that carry state first, then those that react to the character read, then constant ones; within
    # each, by the share of what chance leaves unexplained that the label's r explains.
    order = [(u.verdict == "constant", u.kind != "state", -u.gain) for u in atlas.units]
    assert order == sorted(order) and {u.kind for u in atlas.units} == {"state", "input"}
    # Features constant on this text (no digits, no brackets) are set apart, never matched.
    assert {"digit", "bracket-depth", "url"} <= set(atlas.absent)
    assert not {u.feature for u in atlas.units} & set(atlas.absent)

    # The untrained model's atlas against its own chance: nothing is said to track anything.
    own = build_atlas(baseline, builtin_features(probe_text), ["hidden"], baseline=baseline)
    assert not [u for u in own.units if u.verdict in ("tracks", "weak")], own.units[:3]
    assert own.chance["double-quote"] >= max(abs(r) for *_, r in own.ranking("double-quote", 16)) - 1e-6


def test_atlas_correlations_equal_the_per_feature_search(mixed_trace):
    features = builtin_features(MIXED, {"regex:[0-9]+": "[0-9]+", "count:e": None})
    atlas = build_atlas(mixed_trace, features, ["hidden", "cell", "forget"])
    assert "regex:[0-9]+" in atlas.features and "count:e" in atlas.features
    assert len(atlas.units) == 2 * 3 * 12 and len(atlas.keys) == 72
    for name in atlas.features:
        reference = np.concatenate([correlations(mixed_trace.layers[layer - 1][vector], features[name])
                                    for layer in (1, 2) for vector in ("hidden", "cell", "forget")])
        np.testing.assert_allclose(atlas.r[:, atlas.features.index(name)], reference, atol=2e-5)
        found = find_neurons(mixed_trace, features[name], "cell", top=1).ranked[0]
        best = max(((layer, unit, r) for layer, vector, unit, r in atlas.ranking(name, 72) if vector == "cell"),
                   key=lambda x: abs(x[2]))
        assert (best[0], best[1]) == (found.layer, found.unit) and best[2] == pytest.approx(found.r, abs=2e-5)
    # Each unit's feature is the one explaining most of what its chance level leaves unexplained, on the first
    # half of the text: by r for a unit that reacts to the input, by r beyond the character read for the others.
    half = len(MIXED) // 2
    ids = np.unique(np.array([ord(c) for c in MIXED]), return_inverse=True)[1]
    def beyond(column):                                                 # the column minus its mean per character
        means = np.bincount(ids, weights=column) / np.bincount(ids)
        return column - means[ids]
    for u in atlas.units:
        x = mixed_trace.values(u.layer, u.vector, u.unit).numpy().astype(np.float64)
        state = u.kind == "state"
        columns = [beyond(features[n]) if state else features[n] for n in atlas.features]
        level = np.array([(atlas.partial_chance if state else atlas.chance)[n] for n in atlas.features])
        first = np.array([correlations((beyond(x) if state else x)[:half, None], c[:half])[0] for c in columns])
        nothing_left = np.array([state and np.ptp(beyond(features[n])) < 1e-9 for n in atlas.features])
        score = np.where(nothing_left, -np.inf, (first**2 - level**2) / (1 - level**2))
        assert u.feature == atlas.features[int(np.argmax(score))], (u, score)


def test_find_and_the_atlas_share_one_chance_level(mixed_trace):
    """The same shifts of the same feature against the same units: the same chance, to float32 precision."""
    for name in ("double-quote", "whitespace", "column"):
        feature = feature_values(name, MIXED)
        for vector in ("hidden", "cell"):
            found = find_neurons(mixed_trace, feature, vector, shifts=8, seed=5)
            atlas = build_atlas(mixed_trace, {name: feature}, [vector], shifts=8, seed=5)
            assert found.chance == pytest.approx(atlas.shift_chance[name], abs=1e-5) and found.chance > 0


def test_chance_holds_an_unrelated_feature_down(mixed_trace):
    """A feature of coin flips, unrelated to the text: no unit may be said to track it or even be above it."""
    rng = np.random.default_rng(0)
    noise = (rng.random(len(MIXED)) < 0.5).astype(np.float64)
    atlas = build_atlas(mixed_trace, {"noise": noise}, ["hidden", "cell"])
    assert atlas.chance["noise"] > 0.05                   # the best of 48 units × 16 shifts is not 0
    assert all(u.verdict in ("", "saturated", "constant") for u in atlas.units), atlas.units[:3]
    # ... while the same units against a real feature of the text do stand out.
    real = build_atlas(mixed_trace, builtin_features(MIXED), ["hidden"])
    assert real.units[0].verdict in ("tracks", "weak") and real.units[0].excess >= TRACKS_MARGIN


def test_contexts_are_top_windows_in_the_direction_of_r(shakespeare_text):
    text = shakespeare_text[:4000]              # no repeats, so no tied peaks
    torch.manual_seed(5)
    vocab = Vocab.from_text(text)
    result = trace(CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=12, embedding_size=6, num_layers=2)).eval(),
                   vocab, text, vectors=["cell"])
    atlas = build_atlas(result, builtin_features(text), ["cell"], contexts=3, width=10)
    assert {u.label_r >= 0 for u in atlas.units} == {True, False}
    for u in atlas.units:
        values = result.values(u.layer, "cell", u.unit)
        positive, negative = top_windows(values, 3, 10)
        expected = positive if u.label_r >= 0 else negative
        assert [w.peak for w in u.contexts] == [w.peak for w in expected]
        assert [(w.start, w.end) for w in u.contexts] == [(w.start, w.end) for w in expected]


def test_verdicts_and_saturation():
    assert verdict(0.9, 0.2, 0.0, False) == "tracks"
    assert verdict(0.45, 0.2, 0.0, False) == "weak"                  # above chance, under r = 0.5
    assert verdict(TRACKS_MIN_R + 0.01, TRACKS_MIN_R - 0.05, 0.0, False) == ""   # strong r, but within the margin
    assert verdict(-0.8, 0.75, 0.0, False) == ""                     # a high chance level holds even r = 0.8 down
    assert verdict(0.25, 0.2, 0.0, False) == ""
    assert verdict(0.25, 0.2, SATURATED_SHARE, False) == "saturated"
    assert verdict(0.9, 0.2, 1.0, False) == "tracks"                 # tracking beats saturation
    assert verdict(0.0, 0.2, 0.0, True) == "constant"
    gates = torch.tensor([[0.05, 0.5], [0.95, 0.5], [0.5, 0.5], [0.02, 0.99]])
    assert saturation_share("forget", gates).tolist() == [0.75, 0.25]
    assert saturation_share("hidden", torch.tensor([[0.95], [-0.95], [0.2], [0.0]])).tolist() == [0.5]
    assert saturation_share("cell", torch.tensor([[3.0], [-1.0], [1.2], [-2.0]])).tolist() == [0.5]


# ---------------------------------------------------------------------------------------- the CLI


def test_cli_atlas_json_tsv_and_terminal(quote_run, probe_text, tmp_path):
    probe = tmp_path / "probe.txt"
    probe.write_text(probe_text, encoding="utf-8")
    result = run_cli("inspect", str(quote_run), "--atlas", "--text-file", str(probe), "--format", "json",
                                  "--find-regex", '"[^"\n]*"')
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["characters"] == len(probe_text) and doc["vectors"] == ["cell"] and len(doc["units"]) == 16
    assert sorted(u["unit"] for u in doc["units"]) == list(range(16))
    names = [f["feature"] for f in doc["features"]]
    assert "double-quote" in names and 'regex:"[^"\n]*"' in names
    quote = next(f for f in doc["features"] if f["feature"] == "double-quote")
    assert quote["chance"] == max(quote["shift_chance"], quote["untrained_chance"]) and quote["tracking"] >= 1
    best = doc["units"][0]
    assert best["rank"] == 1 and best["verdict"] == "tracks" and best["excess"] >= TRACKS_MARGIN
    context = best["contexts"][0]
    assert probe_text[context["start"] : context["end"]] == context["text"] and len(best["contexts"]) == 3
    assert "untrained model" in doc["rule"]

    tsv = run_cli("inspect", str(quote_run), "--atlas", "--text-file", str(probe), "--format", "tsv")
    assert tsv.exit_code == 0, tsv.output
    header, *rows = tsv.stdout.splitlines()
    assert header.split("\t") == ["rank", "layer", "vector", "unit", "feature", "r", "chance", "excess", "saturation",
                                  "verdict", "context", "kind", "partial_r", "partial_chance", "heldout_r",
                                  "input_share", "gain", "ablation_bpc", "promotes", "suppresses", "ablation_chars"]
    assert len(rows) == 16 and all(len(row.split("\t")) == 21 for row in rows)
    assert rows[0].split("\t")[3] == str(best["unit"]) and "\\n" in tsv.stdout   # contexts escaped, one line each

    # The terminal table at 80 columns: every number whole, the rule stated.
    table = run_cli("inspect", str(quote_run), "--atlas", "--text-file", str(probe), "--top", "4")
    assert table.exit_code == 0, table.output
    assert f"{best['r']:+.3f}" in table.stdout and f"{best['chance']:.3f}" in table.stdout
    assert "… 12 more units" in table.stdout and "tracks" in table.stdout and "chance: the largest |r|" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_cli_atlas_on_chinese_emoji_and_crlf(tmp_path):
    corpus = tmp_path / "mixed.txt"
    corpus.write_bytes(MIXED.encode("utf-8"))
    run = tmp_path / "run"
    train(MIXED * 4, run, ModelConfig(vocab_size=1, hidden_size=8, embedding_size=4, num_layers=2),
          TrainConfig(batch_size=4, seq_len=32, max_steps=3, time_budget=None, eval_every=3, log_every=1,
                      preview_chars=0, warmup_steps=1))
    result = run_cli("inspect", str(run), "--atlas", "--text-file", str(corpus), "--vector",
                                       "hidden,cell", "--layer", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["layers"] == [2] and doc["vectors"] == ["hidden", "cell"] and len(doc["units"]) == 16
    assert {"comment", "url", "hashtag", "mention", "digit"} <= {f["feature"] for f in doc["features"]}
    for unit in doc["units"]:
        for context in unit["contexts"]:
            assert MIXED[context["start"] : context["end"]] == context["text"]
    text = run_cli("inspect", str(run), "--atlas", "--text-file", str(corpus))
    assert text.exit_code == 0 and "atlas of 16 cell units" in text.stdout


def test_cli_atlas_refuses_clearly(quote_run):
    # Nothing varies in "\n\n\n": one line, non-zero exit, no traceback.
    flat = run_cli("inspect", str(quote_run), "--atlas", "--text", "\n\n\n\n")
    assert flat.exit_code != 0 and "no feature varies" in flat.output
    bad = run_cli("inspect", str(quote_run), "--atlas", "--find-regex", "(unclosed")
    assert bad.exit_code != 0 and "invalid regular expression" in bad.output
    both = run_cli("inspect", str(quote_run), "--atlas", "--stats")
    assert both.exit_code == 2 and "cannot be combined" in both.output


def test_find_table_keeps_its_columns_whole_in_80_columns(quote_run, probe_text, tmp_path):
    """The --find table piped (80 columns): headers and r values are never cut to 'la…' or '-0.7…'."""
    probe = tmp_path / "probe.txt"
    probe.write_text(probe_text, encoding="utf-8")
    result = run_cli("inspect", str(quote_run), "--find", "double-quote", "--text-file", str(probe),
                                       "--top", "12")
    assert result.exit_code == 0, result.output
    found = find_neurons(trace(*_model(quote_run), probe_text, vectors=["hidden"]), feature_values("double-quote", probe_text),
                         top=12)
    lines = result.stdout.splitlines()
    assert "…" not in "".join(lines[:8])
    header = next(line for line in lines if "layer" in line)
    assert "unit" in header and " r " in header
    for unit in found.ranked:
        assert f"{unit.r:+.3f}" in result.stdout
    assert max(len(line) for line in lines) <= 80


def _model(run):
    from charlstm.runtime import load_model

    loaded, model, _ = load_model(str(run), None)
    return model, loaded.vocab


def test_the_atlas_of_a_long_text_is_refused_in_one_line_and_what_it_names_fits(tiny_run, tmp_path,
                                                                                   shakespeare_text):
    """The atlas keeps every unit of two models and every feature at every character: a text too
    long for that is refused in one line, within the bound, naming the longest that fits; the
    atlas of a text that long runs within the bound."""
    big = long_text(tmp_path / "big.txt", 3_000_000, shakespeare_text)
    code, out, err, peak = measured("inspect", tiny_run, "--atlas", "--text-file", big, "--threads", "1", cwd=tmp_path,
                                    timeout=600)
    assert code == 1 and out == "" and peak < MEMORY_BOUND_MB
    line = error_line(err)
    fits = re.fullmatch(r"Error: 3,000,000 characters is too long to map: 1 layer\(s\) × 1 vector\(s\) × 8 units hold "
                        r"at most ([\d,]+) characters in the memory budget of 768 MiB; give a shorter text or --length, "
                        r"or pick fewer layers and vectors", line)
    assert fits, line
    most = int(fits.group(1).replace(",", ""))
    code, out, err, peak = measured("inspect", tiny_run, "--atlas", "--format", "json", "--text-file",
                                    long_text(tmp_path / "most.txt", most, shakespeare_text), "--threads", "1",
                                    cwd=tmp_path, timeout=600)
    assert code == 0, err[-2000:]
    assert json.loads(out)["characters"] == most and peak < MEMORY_BOUND_MB
