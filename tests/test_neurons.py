"""Traces are the model's own math: pinned to the step-by-step Stepper and the fused forward.
And the analyses over them: correlation ranking, top windows, gate saturation, scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.inspection.analysis import feature_values, feature_window, find_neurons, top_windows
from charlstm.inspection.correlation import correlations
from charlstm.inspection.saturation import saturation
from charlstm.errors import FeatureError, NeuronError, UnknownCharactersError
from charlstm.scoring.bits import score_text
from charlstm.inspection.tracing import Trace, linear_scan, trace, trace_many

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


# ------------------------------------------------------------------------------------ correlation


def _planted_trace(T: int = 400, seed: int = 0) -> tuple[Trace, np.ndarray]:
    """A fake trace of 2 layers × 6 units of noise, with layer 2 unit 4 following the feature."""
    rng = np.random.default_rng(seed)
    runs = rng.integers(2, 12, size=T)                                              # on and off, runs of 2..11
    feature = np.repeat(np.arange(len(runs)) % 2, runs)[:T].astype(np.float64)
    layers = []
    for _ in range(2):
        layers.append({"hidden": torch.from_numpy(rng.normal(size=(T, 6)).astype(np.float32))})
    layers[1]["hidden"][:, 4] = torch.from_numpy((0.9 * feature + 0.3 * rng.normal(size=T)).astype(np.float32))
    layers[0]["hidden"][:, 2] = -layers[1]["hidden"][:, 4]                          # anti-correlated
    layers[0]["hidden"][:, 5] = 1.0                                                 # constant: r = 0
    return Trace("x" * T, "lstm", layers, torch.zeros(T, 3)), feature


def test_correlations_match_numpy():
    tr, feature = _planted_trace()
    units = tr.units("hidden").numpy()
    r = correlations(units, feature)
    for k in range(12):
        if k == 5:
            assert r[k] == 0.0
        else:
            assert r[k] == pytest.approx(np.corrcoef(units[:, k], feature)[0, 1], abs=1e-9)


def test_find_neurons_ranks_the_planted_unit_first():
    tr, feature = _planted_trace()
    search = find_neurons(tr, feature, "hidden", top=3)
    best, second = search.ranked[0], search.ranked[1]
    assert {(best.layer, best.unit), (second.layer, second.unit)} == {(2, 4), (1, 2)}
    assert abs(best.r) > 0.8 and search.ranked[0].r == pytest.approx(-search.ranked[1].r, abs=1e-6)
    assert search.num_units == 12 and len(search.ranked) == 3
    assert search.chance < 0.3 < abs(best.r)
    only_first = find_neurons(tr, feature, "hidden", layers=[1], top=1)
    assert (only_first.ranked[0].layer, only_first.ranked[0].unit) == (1, 2) and only_first.ranked[0].r < -0.8
    with pytest.raises(FeatureError, match="is 0 at every character"):
        find_neurons(tr, np.zeros(400), "hidden")


def test_feature_values_and_their_errors():
    assert feature_values("double-quote", 'a "b" c').tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert feature_values(None, "ab12cd", regex=r"\d+").tolist() == [0, 0, 1, 1, 0, 0]
    assert feature_values("count:a", "aXa\na").tolist() == [1, 1, 2, 2, 1]
    with pytest.raises(FeatureError, match="unknown feature 'quotes'; valid names: double-quote"):
        feature_values("quotes", "abc")
    with pytest.raises(FeatureError, match="invalid regular expression '\\(ab'"):
        feature_values(None, "abc", regex="(ab")
    with pytest.raises(FeatureError, match="invalid regular expression"):
        feature_values("regex:[a-", "abc")


def test_feature_window_finds_where_the_feature_changes():
    feature = np.zeros(300)
    feature[200:203] = 1
    feature[210:215] = 1
    start, end = feature_window(feature, 40)
    assert end - start == 40 and start <= 200 and 215 <= end
    assert feature_window(feature[:10], 40) == (0, 10)


# ---------------------------------------------------------------------------------------- windows


def test_top_windows_find_peaks_and_do_not_repeat_them():
    values = np.zeros(500)
    values[[50, 52, 300, 450]] = [5.0, 4.0, 3.0, 2.0]
    values[[100, 400]] = [-6.0, -1.0]
    positive, negative = top_windows(values, 3, width=20)
    assert [w.peak for w in positive] == [50, 300, 450]          # 52 is inside the window of 50
    assert [w.value for w in positive] == [5.0, 3.0, 2.0]
    assert [w.peak for w in negative][:2] == [100, 400]
    for w in positive + negative:
        assert w.end - w.start == 20 and w.start <= w.peak < w.end
    first = positive[0]
    assert first.peak - first.start == 15                         # three quarters of the window lead up to it
    short_pos, _ = top_windows(np.arange(5.0), 3, width=20)
    assert len(short_pos) == 1 and (short_pos[0].start, short_pos[0].end, short_pos[0].peak) == (0, 5, 4)


# ------------------------------------------------------------------------------------- saturation


def test_saturation_fractions():
    forget = torch.tensor([[0.05, 0.5], [0.95, 0.5], [0.99, 0.05], [0.5, 0.5]])
    tr = Trace("abcd", "lstm", [{"forget": forget, "hidden": torch.zeros(4, 2)}], torch.zeros(4, 3))
    (gate,) = saturation(tr)
    assert (gate.layer, gate.gate) == (1, "forget")
    assert gate.left.tolist() == [0.25, 0.25] and gate.right.tolist() == [0.5, 0.0]
    with pytest.raises(NeuronError, match="no gates"):
        saturation(Trace("ab", "rnn", [{"hidden": torch.zeros(2, 2)}], torch.zeros(2, 3)))


def test_saturation_of_a_real_trace_covers_every_gate():
    model = _model("gru", layers=2)
    result = saturation(trace(model, VOCAB, TEXTS[0]))
    assert [(s.layer, s.gate) for s in result] == [(1, "reset"), (1, "update"), (2, "reset"), (2, "update")]
    for s in result:
        assert s.left.shape == (12,) and ((s.left >= 0) & (s.left + s.right <= 1)).all()


# ------------------------------------------------------------------------------------------ score


def test_score_is_the_cross_entropy_of_the_next_character():
    model = _model("lstm", layers=2)
    text = TEXTS[0]
    result = score_text(model, VOCAB, text, chunk=9)
    ids = torch.from_numpy(VOCAB.encode(text).astype(np.int64))[None]
    with torch.no_grad():
        logits, _ = model(ids)
    want = F.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="none") / math.log(2)
    assert result.bits.shape == (len(text) - 1,)
    np.testing.assert_allclose(result.bits, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert result.bits_per_char == pytest.approx(want.mean().item(), rel=1e-5)
    assert result.predicted.tolist() == logits[0, :-1].argmax(-1).tolist()
    with pytest.raises(NeuronError, match="at least 2 characters"):
        score_text(model, VOCAB, "a")
