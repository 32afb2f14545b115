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
