"""inspection/atlas.py, what a unit carries beyond the character it reads: the probe models' counting
units found unprompted (from the features proposals.py proposes) at |r| ≥ 0.9 beyond the character and on
the half of the text the label was not found on; units that only react to the input listed apart; a label
that does not hold on the held-out half earns no verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.inspection.atlas import build_atlas, builtin_features, verdict
from charlstm.inspection.tracing import trace
from charlstm.model.network import CharModel
from charlstm.probes import recipes, tasks


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
