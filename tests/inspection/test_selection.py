"""inspection/selection.py: which layers, vectors and units a request names. Lists and spans are read
as typed and checked by their ends before any list is built (a span costs nothing whatever its size);
a unit, layer or vector the model does not have is one line naming what it has; a trace too big for
memory is refused naming what fits."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import NeuronError
from charlstm.inspection import selection
from charlstm.model.network import CharModel
from charlstm.runs import checkpoint as ckpt
from conftest import error_line, run_cli


@pytest.mark.parametrize("option, spec, message", [
    ("--neuron", "0-999999999", "Error: neuron 999999999 out of range: layer 2 has neurons 0 to 47"),
    ("--neuron", "3,5-99999999999999999999", "Error: neuron 99999999999999999999 out of range"),
    ("--layer", "1-100000000", "Error: layer 100000000 out of range: this model has layers 1 to 2"),
])
def test_huge_spans_are_refused_by_their_end_before_any_list_is_built(trained_run, option, spec, message):
    started = time.perf_counter()
    result = run_cli("inspect", trained_run, option, spec, "--text", "To be")
    assert result.exit_code == 1 and result.stderr.strip().startswith(message), result.stderr
    assert time.perf_counter() - started < 30


def test_checking_a_span_costs_nothing_whatever_its_size():
    config = ModelConfig(vocab_size=10, hidden_size=48, num_layers=2)
    tracemalloc.start()
    started = time.perf_counter()
    for spec, kind in (("0-999999999999", "units"), ("1-100000000000", "layers")):
        with pytest.raises(NeuronError, match="out of range"):
            numbers = selection.parse_numbers(spec, kind)
            selection.pick(config, numbers if kind == "layers" else [1], ["hidden"], numbers if kind == "units" else [0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20 and time.perf_counter() - started < 1.0
    # inside the range a span is listed as before, in order, without repeats
    assert selection.pick(config, [2, 1, 2], ["hidden"], selection.parse_numbers("5-7,6,0", "units")).units == (5, 6, 7, 0)


def test_neuron_ranges(trained_run):
    result = run_cli("inspect", trained_run, "--neuron", "0-3,10", "--vector", "cell", "--text", "To be", "--format",
                     "tsv")
    assert result.stdout.splitlines()[0].split("\t")[2:] == [f"L2.cell[{u}]" for u in (0, 1, 2, 3, 10)]
    every = run_cli("inspect", trained_run, "--neuron", "all", "--text", "To be", "--format", "tsv")
    assert len(every.stdout.splitlines()[0].split("\t")) == 2 + 48


def test_a_vector_the_cell_does_not_record_names_those_it_does(tmp_path):
    vocab = Vocab.from_text("abc\n")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, cell="gru")
    path = ckpt.save(tmp_path / "gru.safetensors", ckpt.Checkpoint(config, vocab, CharModel(config).state_dict()))
    result = run_cli("inspect", path, "--vector", "forget", "--text", "abc")
    assert result.exit_code == 1
    assert "choose from reset, update, candidate, hidden" in error_line(result.stderr)
