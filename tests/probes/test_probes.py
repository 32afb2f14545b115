"""probes/recipes.py and reports.py: the probe tasks of "Exploring LSTMs", for real: tiny models trained
on generated corpora, their accuracy measured, and the units that do the work found and edited.

The counter (1 × 10 LSTM) and the memorizer (1 × 10 LSTM) train in seconds on one CPU thread and run
by default; the selective counter and the copy task run with `pytest -m slow`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import charlstm
from charlstm.probes import recipes, reports
from charlstm.probes import tasks
from charlstm.config import SampleConfig
from charlstm.generation.sampling import sample_text
from conftest import run_cli


def _train(task: str, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp(task) / "run"
    result = recipes.train_probe(task, out)
    assert result.step == recipes.RECIPES[task].train.max_steps
    model, vocab = charlstm.load(out)
    return out, model, vocab


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    return _train("counter", tmp_path_factory)


@pytest.fixture(scope="module")
def memorizer(tmp_path_factory):
    return _train("memorizer", tmp_path_factory)


@pytest.fixture(autouse=True)
def one_thread():
    with recipes.torch_threads(1):   # tiny models: a second thread only adds contention
        yield


# ------------------------------------------------------------------------------------ the machinery


def test_batched_greedy_completion_is_the_sampler_at_temperature_zero(counter):
    _, model, vocab = counter
    prompts = ["\naaaX", "aaaaaaaaX", "\naXb\naaaaaX", "X", "\nbbbbb"]
    edits = {(0, 3): 1.5}
    for use in (None, edits):
        batched = recipes.complete(model, vocab, prompts, max_new=15, edits=use)
        one_by_one = [sample_text(model, vocab, p, SampleConfig(length=15, temperature=0, stop=("\n",)), edits=use)[0]
                      for p in prompts]
        assert batched == one_by_one


def test_pending_count_and_eta_squared():
    assert recipes.pending_count("aaXbb\naXb\n").tolist() == [1, 2, 2, 1, 0, 0, 1, 1, 0, 0]
    values = np.array([[1.0, 5.0], [1.0, 1.0], [3.0, 5.0], [3.0, 1.0]])      # (P, H)
    eta = reports._eta_squared(values, np.array(list("aabb")))
    np.testing.assert_allclose(eta, [1.0, 0.0])


def test_complete_refuses_unknown_characters(counter):
    _, model, vocab = counter
    with pytest.raises(charlstm.UnknownCharactersError, match="never saw: 'z'"):
        recipes.complete(model, vocab, ["aaz"])


# ----------------------------------------------------------------------------------------- counter


def test_counter_writes_exactly_n_bs_for_every_n_in_the_training_range(counter):
    run, model, vocab = counter
    report = reports.counter_report(model, vocab, max_n=25, trials=10)
    assert report.accuracy == {n: report.accuracy[n] for n in range(1, 26)}
    assert all(report.accuracy[n] == 1.0 for n in range(1, 11)), report.accuracy
    assert report.in_range == 1.0 and report.extrapolates_to >= 10
    # The real command line agrees: a^7 X → exactly seven b's and a line break. The prime starts
    # with a line break, as every line the model has seen did.
    sampled = run_cli("sample", str(run), "--prime", "\naaaaaaaX", "--temperature", "0", "--stop", "\\n",
                      "--length", "30")
    assert sampled.stdout == "\naaaaaaaX" + "b" * 7 + "\n"


def test_the_counting_unit_is_found_and_does_the_counting(counter):
    run, model, vocab = counter
    report = reports.counter_report(model, vocab, max_n=10, trials=4)
    # Ranked like `inspect --find`: its cell follows the b's still owed over whole lines, and the
    # number of a's read over the a's.
    assert abs(report.unit.r) >= 0.9 and abs(report.r_count) >= 0.9, report
    text = "".join(line + "\n" for line in tasks.generate("counter", 200, 11))
    ranked = recipes.rank_units(model, vocab, text, recipes.pending_count)
    assert (ranked[0].layer, ranked[0].unit) == (report.unit.layer, report.unit.unit)
    # The command line finds the same unit with the built-in feature.
    (tmp := run / "counter-test.txt").write_text(text)
    found = run_cli("inspect", str(run), "--find", "balance:ab", "--vector", "cell", "--text-file", str(tmp),
                    "--format", "json")
    best = json.loads(found.stdout)["units"][0]
    assert (best["layer"], best["unit"]) == (report.unit.layer, report.unit.unit) and abs(best["r"]) >= 0.9, best
    # Knock it out and the model miscounts.
    ablated = reports.counter_ablation(model, vocab, report.unit)
    assert ablated.changed >= 0.5 and ablated.target <= 0.5, ablated


# --------------------------------------------------------------------------------------- memorizer


def test_memorizer_remembers_the_letter_across_every_gap(memorizer):
    _, model, vocab = memorizer
    report = reports.memorizer_report(model, vocab, trials=10)
    assert report.overall == 1.0, report.accuracy
    strongest = max(report.a_unit, report.b_unit, key=lambda u: u.d_prime)
    # One unit keeps A and B apart at every character from the letter to Y on (nearly) every line.
    assert strongest.d_prime >= 2.0 and strongest.held >= 0.95, report


def test_clamping_the_memory_unit_flips_the_answer(memorizer):
    run, model, vocab = memorizer
    report = reports.memorizer_report(model, vocab, trials=4)
    strongest = max(report.a_unit, report.b_unit, key=lambda u: u.d_prime)
    edits = reports.memorizer_edits(model, vocab, report, trials=3)
    flips = [e for e in edits if e.unit == strongest.unit and e.value != 0.0]
    assert len(flips) == 2 and all(e.effect.target == 1.0 for e in flips), flips
    # The same through the command line: a B line, the unit pinned at its A value → "a".
    spec = f"1:{strongest.unit}={strongest.at_y_a:.4f}"
    args = ("sample", str(run), "--prime", "\nBxxxxxxY", "--temperature", "0", "--length", "1")
    assert run_cli(*args).stdout == "\nBxxxxxxYb\n"
    flipped = run_cli(*args, "--clamp", spec)
    assert flipped.stdout == "\nBxxxxxxYa\n" and f"L1.cell[{strongest.unit}]" in flipped.stderr


# ------------------------------------------------------------------------------ slow: more tasks


@pytest.mark.slow
def test_selective_counter_shuts_the_input_gate_on_noise(tmp_path_factory):
    _, model, vocab = _train("selective-counter", tmp_path_factory)
    report = reports.counter_report(model, vocab, "selective-counter", max_n=12, trials=10)
    assert report.in_range >= 0.99 and abs(report.unit.r) >= 0.9
    gate = reports.selective_gate_report(model, vocab, report.unit)
    assert gate.input_on_x < 0.2 < 0.8 < gate.input_on_a, gate


@pytest.mark.slow
def test_copy_units_predict_the_next_character(tmp_path_factory):
    _, model, vocab = _train("copy", tmp_path_factory)
    report = reports.copy_report(model, vocab)
    assert report.accuracy == 1.0
    best = report.units[0]
    assert best.eta_next >= 0.8 and best.eta_slot <= 0.4, best
    assert len(report.next_char_units) > len(report.units) // 2
