"""inspection/atlas.py, what a unit carries beyond the character it reads: the probe models' counting
units found unprompted (from the features proposals.py proposes) at |r| ≥ 0.9 beyond the character and on
the half of the text the label was not found on; units that only react to the input listed apart; a label
that does not hold on the held-out half earns no verdict."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from charlstm.config import CELLS, ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.inspection.atlas import build_atlas, builtin_features, verdict
from charlstm.inspection.effects import unit_effects
from charlstm.inspection.tracing import trace
from charlstm.model.network import CharModel
from charlstm.probes import recipes, tasks
from charlstm.runs import checkpoint as ckpt


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """The counter and selective-counter probe models, trained by their recipes (a few seconds each), and a
    held-out text of 300 lines of each task."""
    root = tmp_path_factory.mktemp("probes")
    out = {}
    for task in ("counter", "selective-counter"):
        recipes.train_probe(task, root / task)
        text = root / f"{task}.txt"
        text.write_text("".join(line + "\n" for line in tasks.generate(task, 300, 99)), encoding="utf-8")
        out[task] = (root / task, text)
    return out


@pytest.mark.parametrize("task", ["counter", "selective-counter"])
def test_the_counting_unit_is_found_unprompted(probes, task):
    run, text = probes[task]
    result = run_cli("inspect", str(run), "--atlas", "--vector", "cell", "--text-file", str(text), "--format", "json",
                     "--threads", "1")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "balance:ab" in [f["feature"] for f in doc["features"]]          # proposed from the text, not named
    best = doc["units"][0]
    assert best["kind"] == "state" and best["feature"] == "balance:ab" and best["verdict"] == "tracks"
    assert abs(best["partial_r"]) >= 0.9 and abs(best["heldout_r"]) >= 0.9
    assert np.sign(best["partial_r"]) == np.sign(best["heldout_r"])


def test_the_terminal_lists_state_units_apart_from_input_units(probes):
    run, text = probes["counter"]
    result = run_cli("inspect", str(run), "--atlas", "--text-file", str(text), "--threads", "1",
                     env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    state, inputs = out.index("units that carry state"), out.index("units that react to the")
    assert state < out.index("balance:ab", state) < inputs
    assert "held-out" in out and "r|char" in out
    # In 80 columns, with a vector column too, the verdict and the ablation stay; less wanted columns go first.
    narrow = run_cli("inspect", str(run), "--atlas", "--vector", "forget,hidden", "--text-file", str(text),
                     "--top", "3", "--threads", "1", env={"COLUMNS": "80"})
    header = next(line for line in narrow.stdout.splitlines() if line.startswith("#"))
    assert header.split()[:8] == ["#", "layer", "vector", "unit", "feature", "r", "verdict", "ablation"]
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80


def test_a_label_that_does_not_hold_on_the_other_half_earns_no_verdict():
    text = ('Line one "quoted" (a, b)\n  # comment "more"\nURL www.x.org @me #tag 42\n' * 30)
    torch.manual_seed(3)
    vocab = Vocab.from_text(text)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=12, embedding_size=6, num_layers=1)).eval()
    result = trace(model, vocab, text, vectors=["cell"])
    unit = result.values(1, "cell", 4).numpy().astype(np.float64)
    half = len(text) // 2
    rng = np.random.default_rng(0)
    # The unit itself on the first half, noise on the second: a perfect label where it is found, none elsewhere.
    fake = np.concatenate([unit[:half], rng.permutation(unit[half:])])
    atlas = build_atlas(result, {**builtin_features(text), "fake": fake}, ["cell"])
    row = next(u for u in atlas.units if u.unit == 4)
    assert row.feature == "fake" and abs(row.label_r) > 0.45
    # Over the whole text alone it would pass; on the held-out half it does not.
    assert verdict(row.label_r, row.label_chance, 0.0, False, kind=row.kind) in ("reacts", "weak")
    assert abs(row.heldout_r) < 0.2 and row.verdict in ("", "saturated")


# ----------------------------------------------------------------------------------- causal effects


def test_holding_the_counting_unit_at_its_mean_costs_more_than_the_median_unit(probes):
    run, text = probes["counter"]
    result = run_cli("inspect", str(run), "--atlas", "--vector", "cell", "--text-file", str(text), "--format", "json",
                     "--threads", "1")
    doc = json.loads(result.stdout)
    costs = [u["ablation_bpc"] for u in doc["units"]]
    best = doc["units"][0]
    assert best["ablation_bpc"] > 0.3 and best["ablation_bpc"] > np.median(costs) + 0.2
    # a, b, X and the line break: two characters each way, never one on both lists
    assert len(best["promotes"]) == len(best["suppresses"]) == 2 and not set(best["promotes"]) & set(best["suppresses"])
    assert doc["ablation"]["characters"] == len(text.read_text()) - 1      # ten units: the whole text
    # A cell whose mean changes nothing the model predicts names no character it promotes.
    idle = [u for u in doc["units"] if abs(u["ablation_bpc"]) < 1e-3]
    assert len(idle) >= 5 and all(u["promotes"] == u["suppresses"] == "" for u in idle)


def test_ablation_is_the_model_with_the_unit_pinned_and_promotes_read_the_output_layer(probes):
    """Against the model stepped alone with `--ablate`'s edit at the unit's mean, character by character."""
    run, text_path = probes["counter"]
    loaded = ckpt.load(ckpt.resolve(run))
    model, vocab = loaded.model(torch.device("cpu")), loaded.vocab
    text = text_path.read_text()[:600]
    keys = [(1, "cell", 6), (1, "hidden", 6), (1, "forget", 6)]
    values = trace(model, vocab, text, vectors=["cell", "hidden"])
    means = [float(values.values(1, v, 6).mean()) for v in ("cell", "hidden")] + [0.5]
    effects = unit_effects(model, vocab, text, keys, means)
    ids = vocab.encode(text)

    def bits(edits):
        stepper, state, total = model.stepper(), model.stepper().init_state(1), 0.0
        for t in range(len(ids) - 1):
            logits, state, _ = stepper.step(torch.tensor([int(ids[t])]), state, edits=edits)
            total -= float(torch.log_softmax(logits.double(), -1)[0, ids[t + 1]]) / np.log(2)
        return total / (len(ids) - 1)

    assert effects.ablation_bpc[0] == pytest.approx(bits({(0, 6): means[0]}) - bits(None), abs=1e-5)

    # A hidden unit is pinned after each step: the output layer and the next step read the mean.
    stepper = model.stepper()
    hs, cs, total = [torch.zeros(1, 10)], [torch.zeros(1, 10)], 0.0
    with torch.inference_mode():
        for t in range(len(ids) - 1):
            stepper.advance(torch.tensor([int(ids[t])]), hs, cs)
            hs[0] = hs[0].clone()
            hs[0][0, 6] = means[1]
            logits = torch.addmm(stepper.head_b, hs[0], stepper.head_w)
            total -= float(torch.log_softmax(logits.double(), -1)[0, ids[t + 1]]) / np.log(2)
    assert effects.ablation_bpc[1] == pytest.approx(total / (len(ids) - 1) - bits(None), abs=1e-5)
    assert np.isnan(effects.ablation_bpc[2]) and effects.promotes[2] == ""          # a gate is not pinned
    column = model.head.weight[:, 6].detach().numpy()                               # the last layer's hidden 6
    assert effects.promotes[1] == "".join(vocab.chars[i] for i in np.argsort(-column)[:2])     # 4 characters: 2 each
    assert effects.suppresses[1] == "".join(vocab.chars[i] for i in np.argsort(column)[:2])


def test_many_units_are_ablated_over_stretches_within_the_budget():
    from charlstm.config import ATLAS_ABLATION_STEPS
    from charlstm.inspection.effects import MIN_ABLATION_CHARS, STRETCH, _stretches

    assert _stretches(3_000, 10, ATLAS_ABLATION_STEPS) == [(0, 2_999)]
    parts = _stretches(20_000, 1024, ATLAS_ABLATION_STEPS)
    each = sum(end - start for start, end in parts)
    assert MIN_ABLATION_CHARS <= each and each * 1025 <= ATLAS_ABLATION_STEPS + 1025 * STRETCH
    assert all(end - start <= STRETCH for start, end in parts) and parts[-1][1] <= 19_999
    assert all(b[0] >= a[1] for a, b in zip(parts, parts[1:]))                       # spread, not overlapping


@pytest.mark.parametrize("cell", CELLS)
def test_ablation_of_either_layer_of_a_deeper_model_is_the_stepper_with_the_unit_pinned(cell):
    """Every cell kind: the state `--ablate` pins (the cell state of an LSTM, the hidden state of a GRU or RNN)."""
    text = ('Line one "quoted" (a, b)\n  # comment "more"\nURL www.x.org @me #tag 42\n' * 4)
    torch.manual_seed(1)
    vocab = Vocab.from_text(text)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2,
                                  cell=cell)).eval()
    vector = "cell" if model.config.has_cell_state else "hidden"
    keys, means = [(1, vector, 3), (2, vector, 5), (2, vector, 1)], [0.4, -0.3, 0.2]
    effects = unit_effects(model, vocab, text, keys, means)
    ids = vocab.encode(text)

    def bits(edits):
        stepper = model.stepper()
        state, total = stepper.init_state(1), 0.0
        for t in range(len(ids) - 1):
            logits, state, _ = stepper.step(torch.tensor([int(ids[t])]), state, edits=edits)
            total -= float(torch.log_softmax(logits.double(), -1)[0, ids[t + 1]]) / np.log(2)
        return total / (len(ids) - 1)

    plain = bits(None)
    for (layer, _, unit), mean, got in zip(keys, means, effects.ablation_bpc):
        assert got == pytest.approx(bits({(layer - 1, unit): mean}) - plain, abs=1e-5)


def test_the_units_listed_first_are_ablated_over_more_text():
    from charlstm.inspection.effects import LEADING_CHARS, MIN_ABLATION_CHARS

    text = ('Line one "quoted" (a, b)\n  # comment "more"\nURL www.x.org @me #tag 42\n' * 80)
    torch.manual_seed(1)
    vocab = Vocab.from_text(text)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2)).eval()
    keys = [(layer, "cell", unit) for layer in (1, 2) for unit in range(8)]
    effects = unit_effects(model, vocab, text, keys, [0.0] * 16, steps=1_000, leading=[5, 12])
    assert effects.characters == MIN_ABLATION_CHARS < LEADING_CHARS < len(text)
    assert [int(effects.per_unit[k]) for k in (5, 12)] == [len(text) - 1] * 2       # two units: the whole text
    assert {int(c) for k, c in enumerate(effects.per_unit) if k not in (5, 12)} == {MIN_ABLATION_CHARS}
    alone = unit_effects(model, vocab, text, [keys[12]], [0.0], steps=1_000, leading=[0])
    assert alone.ablation_bpc[0] == pytest.approx(effects.ablation_bpc[12], abs=1e-6)


def test_a_proposed_feature_of_a_tab_is_shown_as_its_glyph():
    from rich.console import Console

    from charlstm.inspection.atlas import atlas_features
    from charlstm.views.atlas import atlas_output

    text = "".join(f"\t{'x' * (k % 5)}\t(a)\ty\n" for k in range(200))
    torch.manual_seed(0)
    vocab = Vocab.from_text(text)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=6, embedding_size=4, num_layers=1)).eval()
    atlas = build_atlas(trace(model, vocab, text, vectors=["cell"]), atlas_features(text), ["cell"])
    assert "since:\t" in atlas.features
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(atlas_output("m", text, atlas).picture(120))
    shown = console.export_text()
    assert "since:→" in shown and "\t" not in shown
