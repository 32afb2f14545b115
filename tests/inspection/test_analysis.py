"""What inspection computes over traces: correlation with a feature (inspection/correlation.py) and
the ranking of units by it, the feature values themselves and the window where they change, top
windows (inspection/analysis.py), and gate saturation (inspection/saturation.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import FeatureError, NeuronError
from charlstm.inspection.analysis import feature_values, feature_window, find_neurons, top_windows
from charlstm.inspection.correlation import correlations
from charlstm.inspection.saturation import saturation
from charlstm.inspection.tracing import Trace, trace
from charlstm.model.network import CharModel


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


def test_the_work_of_top_and_window_grows_with_the_text_not_with_the_numbers_typed():
    """--top N and --window W each set work: peaks are checked against their neighbours alone and the
    busiest window is a running sum, so a large N or W over a long text takes seconds, and both
    give what the plain definitions give."""
    rng = np.random.default_rng(0)
    for _ in range(50):                      # against the definitions, on small random cases
        values, n, width = rng.normal(size=int(rng.integers(1, 60))), int(rng.integers(1, 30)), int(rng.integers(1, 9))
        order = np.argsort(-values, kind="stable")
        plain: list[int] = []
        for p in order:
            if len(plain) < n and all(abs(int(p) - q) >= width for q in plain):
                plain.append(int(p))
        assert [w.peak for w in top_windows(values, n, width)[0]] == plain
        feature = (rng.random(len(values)) < 0.3).astype(np.float64)
        changes = [0.0, *(np.diff(feature) != 0)]
        sums = [sum(changes[s:s + width]) for s in range(len(values) - width + 1)]
        assert feature_window(feature, width) == ((int(np.argmax(sums)), int(np.argmax(sums)) + width)
                                                  if len(values) > width else (0, len(values)))
    started = time.process_time()
    values = rng.normal(size=400_000)
    positive, negative = top_windows(values, 400_000, width=8)
    assert 400_000 // 8 // 2 <= len(positive) <= 400_000 // 8 + 1
    assert feature_window((rng.random(2_000_000) < 0.5).astype(np.float64), 500_000)[1] - 500_000 >= 0
    assert time.process_time() - started < 20


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
    vocab = Vocab(list("abcdefgh \n\"'"))
    torch.manual_seed(1)
    config = ModelConfig(vocab_size=len(vocab), cell="gru", embedding_size=6, hidden_size=12, num_layers=2)
    model = CharModel(config).eval()
    result = saturation(trace(model, vocab, 'abc "def" gh\nhg fed\n' * 6))
    assert [(s.layer, s.gate) for s in result] == [(1, "reset"), (1, "update"), (2, "reset"), (2, "update")]
    for s in result:
        assert s.left.shape == (12,) and ((s.left >= 0) & (s.left + s.right <= 1)).all()
