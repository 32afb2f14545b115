"""examples/models/: the models shipped there still load and still give docs/findings.md's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


@pytest.mark.parametrize("model, feature, layer, unit, r", [
    ("austen", "double-quote", 2, 18, +0.871),
    ("austen", "column", 2, 252, -0.857),
    ("python-code", "paren-depth", 2, 22, -0.771),
    ("python-code", "indent", 1, 30, -0.710),
])
def test_the_findings_units_are_where_the_page_says(model, feature, layer, unit, r):
    folder = MODELS / model
    result = run_cli("inspect", str(folder), "--text-file", str(folder / "heldout.txt"), "--find", feature,
                     "--vector", "cell", "--top", "1", "--format", "json", "--threads", "1")
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["units"][0]
    assert (best["layer"], best["unit"]) == (layer, unit)
    assert best["r"] == pytest.approx(r, abs=0.0015)


ENGLISH = MODELS / "english"


def test_the_english_model_samples_english_out_of_the_box():
    """`charlstm sample english`: the shipped base by its name, words a reader knows."""
    prime = "It is a truth"
    result = run_cli("sample", "english", "--prime", prime, "--temperature", "0", "--length", "300", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(prime)
    made = result.stdout[len(prime):].removesuffix("\n")      # the line sample ends its output with
    assert len(made) == 300
    assert sum(c.isalpha() or c in " \n,.;'" for c in made) > 0.9 * len(made)
    words = set(made.lower().replace(",", " ").replace(".", " ").split())
    assert len(words & {"the", "of", "and", "to", "a", "that", "in", "be", "it"}) >= 3


def test_the_english_model_card_gives_each_part_s_held_out_figure():
    """Every row of the model card's held-out table is what `charlstm score` prints for that part."""
    card = (ENGLISH / "README.md").read_text(encoding="utf-8")
    rows = [line.split("|") for line in card.splitlines() if line.startswith("| `") and "heldout/" in line]
    assert len(rows) == 4
    for row in rows:
        path, figure = row[1].strip().strip("`"), float(row[3])
        result = run_cli("score", "english", "--text-file", ENGLISH / path, "--format", "json", "--threads", "1")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["bits_per_char"] == pytest.approx(figure, abs=0.0006)
