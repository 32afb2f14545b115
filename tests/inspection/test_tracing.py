"""inspection/tracing.py: traces are the model's own math, pinned to the step-by-step Stepper and the fused
forward for every cell kind; limited to some vectors and layers, they are the same values; tracing
leaves global state alone; the linear scan is the recurrence; a trace that cannot fit the memory
budget is one error naming what fits, and 10⁷ characters trace within the bound or are refused.
(What is computed over traces: test_analysis.py.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.errors import MemoryBudgetError, NeuronError, UnknownCharactersError
from charlstm.inspection.tracing import check_trace, linear_scan, trace, trace_many
from conftest import MEMORY_BOUND_MB, measured_command

VOCAB = Vocab(list("abcdefgh \n\"'"))
TEXTS = ['abc "def" gh\nhg fed\n' * 6, "h", "ab'c d", ""]


def _model(cell: str, layers: int = 3, hidden: int = 12) -> CharModel:
    torch.manual_seed({"lstm": 0, "gru": 1, "rnn": 2, "peephole": 3, "coupled": 4}[cell])
    return CharModel(ModelConfig(vocab_size=len(VOCAB), cell=cell, embedding_size=6, hidden_size=hidden,
                                 num_layers=layers)).eval()


def _stepped(model: CharModel, texts: list[str]):
    """The reference: every text one character at a time through Stepper.step(record=True)."""
    B, T = len(texts), max(len(t) for t in texts)
    ids = torch.zeros(B, T, dtype=torch.long)
    for b, text in enumerate(texts):
        if text:
            ids[b, : len(text)] = torch.from_numpy(VOCAB.encode(text).astype(np.int64))
    stepper = model.stepper()
    state = stepper.init_state(B)
    logits, gates = [], []
    for t in range(T):
        out, state, recorded = stepper.step(ids[:, t], state, record=True)
        logits.append(out)
        gates.append(recorded)
    return ids, logits, gates


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole", "coupled"])
def test_trace_matches_the_explicit_step_and_the_fused_forward(cell):
    model = _model(cell)
    traces = trace_many(model, VOCAB, TEXTS, chunk=7)          # chunks of 7: the state crosses many boundaries
    ids, step_logits, step_gates = _stepped(model, TEXTS)
    fused_logits, _ = model(ids)
    for b, (text, tr) in enumerate(zip(TEXTS, traces)):
        n = len(text)
        assert tr.text == text and tr.num_layers == 3 and tr.vectors == model.config.vectors
        for layer in range(3):
            for name in model.config.vectors:
                got = tr.layers[layer][name]
                assert got.shape == (n, 12) and got.dtype == torch.float32
                if n:
                    want = torch.stack([step_gates[t][layer][name][b] for t in range(n)])
                    torch.testing.assert_close(got, want, msg=f"{cell} layer {layer + 1} {name}")
        if n:
            torch.testing.assert_close(tr.logits, torch.stack([step_logits[t][b] for t in range(n)]))
            torch.testing.assert_close(tr.logits, fused_logits[b, :n])
            torch.testing.assert_close(model.head(tr.layers[-1]["hidden"]), fused_logits[b, :n])


def test_lstm_trace_is_self_consistent_over_a_long_text():
    model = _model("lstm", layers=2, hidden=16)
    text = ('bag "ab" head \'cd\'\n' * 120)[:2000]
    tr = trace(model, VOCAB, text)
    for layer in tr.layers:
        c_prev = torch.cat([torch.zeros(1, 16), layer["cell"][:-1]])
        torch.testing.assert_close(layer["cell"], layer["forget"] * c_prev + layer["input"] * layer["candidate"])
        torch.testing.assert_close(layer["hidden"], layer["output"] * torch.tanh(layer["cell"]))
    # The chunk size only changes how the work is cut, not the values.
    torch.testing.assert_close(trace_many(model, VOCAB, [text], chunk=300)[0].layers[1]["cell"], tr.layers[1]["cell"])


def test_vectors_and_layers_can_be_limited():
    model = _model("lstm")
    full = trace(model, VOCAB, TEXTS[0])
    part = trace(model, VOCAB, TEXTS[0], vectors=["cell", "output"], layers=[2])
    assert part.layers[0] == {} and part.layers[2] == {} and part.traced_layers == [2]
    assert part.vectors == ("cell", "output")
    torch.testing.assert_close(part.layers[1]["cell"], full.layers[1]["cell"])
    torch.testing.assert_close(part.values(2, "output", 5), full.values(2, "output", 5))
    torch.testing.assert_close(part.logits, full.logits)
    with pytest.raises(NeuronError, match="layer 1 was not traced"):
        part.values(1, "cell", 0)
    with pytest.raises(NeuronError, match="vector 'hidden' not recorded"):
        part.values(2, "hidden", 0)
    with pytest.raises(NeuronError, match="neuron 12 out of range: layer 2 has neurons 0 to 11"):
        part.values(2, "cell", 12)
    with pytest.raises(NeuronError, match="vector 'reset' not recorded for a lstm cell"):
        trace(model, VOCAB, "abc", vectors=["reset"])
    with pytest.raises(NeuronError, match="layers 1 to 3"):
        trace(model, VOCAB, "abc", layers=[4])
    with pytest.raises(UnknownCharactersError, match="never saw: 'z'"):
        trace(model, VOCAB, "abz")


def test_tracing_leaves_global_state_alone():
    model = _model("gru")
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    trace(model, VOCAB, TEXTS[0])
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads


@pytest.mark.parametrize("T, block", [(1, 64), (5, 64), (64, 64), (100, 8), (257, 16)])
def test_linear_scan_is_the_recurrence(T, block):
    torch.manual_seed(T)
    f, u, c0 = torch.rand(T, 3, 4), torch.randn(T, 3, 4), torch.randn(3, 4)
    c, want = c0, []
    for t in range(T):
        c = f[t] * c + u[t]
        want.append(c)
    torch.testing.assert_close(linear_scan(f, u, c0, block=block), torch.stack(want))


def test_a_trace_too_big_for_memory_is_one_error_naming_what_fits():
    config = ModelConfig(vocab_size=65, embedding_size=16, hidden_size=48, num_layers=2)
    check_trace(config, 20_000, 6, 2)                                  # the default analysis length: fine
    # 768 MiB hold 2,091,696 characters of 2 × 48 float32 values and a one-byte id, one chunk's work aside
    with pytest.raises(MemoryBudgetError, match=r"1,000,000,000 characters is too long to trace: 2 layer\(s\) × 1 "
                                                r"vector\(s\) × 48 units hold at most 2,091,696 characters"):
        check_trace(config, 10**9, 1, 2)



_TRACE_LONG = """
import sys, charlstm
model, vocab = charlstm.load(sys.argv[1], threads=1)
source = open(sys.argv[2], encoding="utf-8").read()
text = (source * (10**7 // len(source) + 1))[:10**7]
try:
    t = charlstm.trace(model, vocab, text, **eval(sys.argv[3]))
except charlstm.CharlstmError as error:
    print("refused", type(error).__name__, error)
else:
    print("traced", len(t.text), tuple(t.layers[0]["hidden"].shape))
"""


@pytest.mark.parametrize("options, result", [
    pytest.param({}, "refused TraceTooLongError 10,000,000 characters is too long to trace: 1 layer(s) × 6 vector(s) × "
                     "8 units and the logits of ", id="every-vector-and-the-logits"),
    pytest.param({"vectors": ["hidden"], "logits": False}, "traced 10000000 (10000000, 8)", id="hidden-alone",
                 marks=pytest.mark.slow),
])
def test_tracing_ten_million_characters_fits_or_is_one_error(tiny_run, tmp_path, shakespeare_text, options, result):
    """charlstm.trace of 10⁷ characters either runs within the bound or is refused with one
    CharlstmError naming the most that fits, before any work (what a trace keeps is checked first)."""
    source = tmp_path / "source.txt"
    source.write_text(shakespeare_text, encoding="utf-8")
    code, out, err, peak = measured_command([sys.executable, "-c", _TRACE_LONG, str(tiny_run), str(source), repr(options)],
                                            cwd=tmp_path, timeout=900)
    assert code == 0, err[-2000:]
    assert out.startswith(result) and out.count("\n") == 1 and peak < MEMORY_BOUND_MB, (out, peak)
