"""`inspect --find` (inspection/analysis.py's search) on a model trained for real on text where a
feature decides what comes next: it must rank a unit that tracks the feature far above what chance
and an untrained model reach."""

from __future__ import annotations

import json
import time

import torch

from charlstm.config import MAX_PATTERN_SECONDS

from charlstm.runs import checkpoint as ckpt
from charlstm.model.network import CharModel
from charlstm.inspection.analysis import feature_values, find_neurons
from charlstm.inspection.tracing import trace
from conftest import charlstm_process, error_line, quoted_lines, run_cli


def test_find_ranks_the_quote_unit_far_above_chance(quote_run, tmp_path):
    probe = tmp_path / "probe.txt"
    probe.write_text(quoted_lines(150, seed=1), encoding="utf-8")
    result = run_cli("inspect", str(quote_run), "--find", "double-quote", "--text-file", str(probe),
                                       "--top", "5", "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    best = found["units"][0]
    assert found["feature"] == "double-quote" and found["vector"] == "hidden" and found["units_searched"] == 16
    assert len(found["units"]) == 5 and [u["rank"] for u in found["units"]] == [1, 2, 3, 4, 5]
    assert abs(best["r"]) >= abs(found["units"][-1]["r"])

    # Chance, two ways: the feature shifted along the text (computed by --find), and every unit of
    # an untrained model of the same shape (which can react to capitals, but not remember a quote).
    loaded = ckpt.load(ckpt.resolve(quote_run))
    text = probe.read_text(encoding="utf-8")
    feature = feature_values("double-quote", text)
    torch.manual_seed(0)
    untrained = CharModel(loaded.config).eval()
    untrained_best = abs(find_neurons(trace(untrained, loaded.vocab, text, vectors=["hidden"]), feature, top=1).ranked[0].r)
    assert found["chance"] < 0.25
    assert abs(best["r"]) > 0.85, found
    assert abs(best["r"]) > untrained_best + 0.2, (best, untrained_best)

    # The same search as a regex, and as the terminal table with the feature's own strip on top.
    regex = run_cli("inspect", str(quote_run), "--find-regex", '"[^"\n]*"', "--text-file", str(probe),
                                      "--format", "tsv", "--top", "1")
    assert regex.exit_code == 0, regex.output
    header, row = regex.stdout.splitlines()
    assert header == "rank\tlayer\tunit\tr" and row.split("\t")[:3] == ["1", "1", str(best["unit"])]
    table = run_cli("inspect", str(quote_run), "--find", "double-quote", "--text-file", str(probe),
                                      "--top", "3", "--vector", "cell")
    assert table.exit_code == 0, table.output
    assert "cell units most correlated with double-quote" in table.stdout and "feature" in table.stdout
    assert "Chance: |r| up to" in table.stdout


def test_find_defaults_to_the_tail_of_the_training_corpus(quote_run):
    result = run_cli("inspect", str(quote_run), "--find", "double-quote", "--length", "3000",
                                       "--format", "json")
    assert result.exit_code == 0, result.output
    # The run was trained from text in memory (no corpus files recorded), so a fresh sample stands in, and says so.
    assert "fresh 3,000-character sample" in result.stderr and "give --text-file" in result.stderr
    assert json.loads(result.stdout)["characters"] == 3000


def test_a_pattern_that_backtracks_without_end_is_refused_as_its_option_within_seconds(quote_run):
    """The red team's `(e+)+$` over 40 e's is matched (the engine does not backtrack on it); patterns
    that backtrack in any engine are stopped at config.MAX_PATTERN_SECONDS of matching and refused in
    one line naming the option that gave them. Each command, torch's import included, ends well
    within the process's time limit."""
    text = "e" * 40 + "a ee"                  # Python's `re` backtracks without end from the first e
    done = charlstm_process("inspect", quote_run, "--find-regex", "(e+)+$", "--text", text, timeout=120)
    assert done.returncode == 0, done.stderr
    for option, pattern, text in (("--find-regex", r"(\w|\w\w)+$", "e" * 60 + " "),
                                  ("--find", r"regex:(a|aa)+$", "a" * 60 + " ")):
        started = time.monotonic()
        done = charlstm_process("inspect", quote_run, option, pattern, "--text", text, timeout=120)
        line = error_line(done.stderr)
        assert done.returncode == 1 and line.startswith(f"Error: {option}: the regular expression "), line
        assert f"took longer than {MAX_PATTERN_SECONDS:g} s" in line
        assert time.monotonic() - started < 100
