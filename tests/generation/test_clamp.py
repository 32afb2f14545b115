"""`charlstm sample --clamp LAYER:NEURON=VALUE` and `--ablate LAYER:NEURON`: parsing, errors, and that
the unit really is pinned while the model writes (the Stepper's pin itself: tests/model/test_network.py)."""

from __future__ import annotations

import pytest

import charlstm
from charlstm.cli.params import parse_edits
from charlstm.config import ModelConfig
from charlstm.errors import NeuronError
from conftest import TINY, refused, run_cli

LSTM = ModelConfig(vocab_size=5, hidden_size=8, num_layers=2)


def test_layers_count_from_one_on_the_command_line_and_from_zero_in_the_edits():
    edits = parse_edits(("1:3=0.5", " 2 : 7 = -2e1 "), ("2:0",), LSTM)
    assert edits == {(0, 3): 0.5, (1, 7): -20.0, (1, 0): 0.0}
    assert parse_edits((), (), LSTM) == {}


@pytest.mark.parametrize("clamps, ablations, message", [
    (("1:3",), (), "'1:3': give LAYER:NEURON=VALUE, e.g. 1:42=0.9"),
    (("1-3=2",), (), "give LAYER:NEURON=VALUE"),
    (("1:3=big",), (), "'big' is not a number"),
    (("1:3=nan",), (), "the value must be a finite number"),
    ((), ("1:3=0",), "'1:3=0': give LAYER:NEURON, e.g. 2:7"),
    (("1:3=1",), ("1:3",), "unit 1:3 is pinned twice"),
])
def test_malformed_edits_are_bad_parameters(clamps, ablations, message):
    import click

    with pytest.raises(click.BadParameter, match=message):
        parse_edits(clamps, ablations, LSTM)


@pytest.mark.parametrize("value, words", [("nan", "finite"), ("1e308", "within")])
def test_a_clamp_value_must_be_finite_and_within_any_state(trained_run, value, words):
    refused(run_cli("sample", trained_run, "--length", "5", "--clamp", f"1:2={value}"), "--clamp", words, code=2)


@pytest.mark.parametrize("spec, message", [
    ("3:0=1", "layer 3 out of range: this model has layers 1 to 2"),
    ("0:0=1", "layer 0 out of range"),
    ("1:8=1", "neuron 8 out of range: layer 1 has neurons 0 to 7"),
])
def test_units_the_model_does_not_have_are_named(spec, message):
    with pytest.raises(NeuronError, match=message):
        parse_edits((spec,), (), LSTM)


def _sample(run, *extra):
    return run_cli("sample", str(run), "--length", "150", "--seed", "4", "--prime", "KING", *extra)


def test_clamping_changes_the_text_and_ablate_is_clamp_at_zero(trained_run):
    plain = _sample(trained_run)
    clamped = _sample(trained_run, "--clamp", "2:5=3", "--clamp", "2:9=-3")
    ablated = _sample(trained_run, "--ablate", "2:5")
    at_zero = _sample(trained_run, "--clamp", "2:5=0")
    assert all(r.exit_code == 0 for r in (plain, clamped, ablated, at_zero)), clamped.output
    assert clamped.stdout.startswith("KING") and len(clamped.stdout) == len(plain.stdout)
    assert clamped.stdout != plain.stdout
    assert ablated.stdout == at_zero.stdout != plain.stdout
    assert _sample(trained_run).stdout == plain.stdout                # no edit: the same text as before
    assert "L2.cell[5] = 3; L2.cell[9] = -3]" in clamped.stderr and "L2.cell[5] = 0]" in ablated.stderr
    assert "cell[" not in plain.stderr


def test_edits_hold_for_a_batch_of_samples_too(trained_run):
    args = ("--num-samples", "3", "--stop", "\\n", "--seed", "2", "--length", "80")
    edits = ("--clamp", "1:0=3", "--clamp", "2:5=3", "--clamp", "2:9=-3")
    one_by_one = run_cli("sample", str(trained_run), *edits, "--num-samples", "1", "--stop", "\\n",
                         "--seed", "2", "--length", "80")
    batch = run_cli("sample", str(trained_run), *edits, *args)
    plain = run_cli("sample", str(trained_run), *args)
    assert batch.exit_code == 0 and one_by_one.exit_code == 0
    assert batch.stdout != plain.stdout and len(batch.stdout.rstrip("\n").split("\n")) == 3


def test_the_python_api_takes_the_same_edits(trained_run):
    model, vocab = charlstm.load(trained_run)
    config = charlstm.SampleConfig(length=60, seed=4, temperature=0.8)
    from charlstm.generation.sampling import sample_text

    cli = run_cli("sample", str(trained_run), "--length", "60", "--seed", "4", "--temperature", "0.8", "--prime", "KING",
                  "--clamp", "2:5=3")
    api = sample_text(model, vocab, "KING", config, edits={(1, 5): 3.0})[0]
    assert cli.stdout == "KING" + api + "\n"


def test_out_of_range_unit_is_a_one_line_error(trained_run):
    result = run_cli("sample", str(trained_run), "--ablate", "2:48")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: neuron 48 out of range: layer 2 has neurons 0 to 47"
    bad = run_cli("sample", str(trained_run), "--clamp", "2:4")
    assert bad.exit_code == 2 and "Invalid value for --clamp: '2:4': give LAYER:NEURON=VALUE" in bad.stderr


def test_a_gru_is_edited_on_its_hidden_state(tmp_path, shakespeare_text):
    corpus = tmp_path / "verse.txt"
    corpus.write_text(shakespeare_text[:6000], encoding="utf-8")
    run = tmp_path / "gru"
    trained = run_cli("train", str(corpus), "--out", str(run), "--cell", "gru", "--max-steps", "5", "--eval-every", "5",
                      *TINY)
    assert trained.exit_code == 0, trained.output
    plain = run_cli("sample", str(run), "--length", "150", "--seed", "4")
    pinned = run_cli("sample", str(run), "--length", "150", "--seed", "4", "--clamp", "1:3=0.9")
    assert pinned.exit_code == 0 and pinned.stdout != plain.stdout
    assert "L1.hidden[3] = 0.9]" in pinned.stderr
