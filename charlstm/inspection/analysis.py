"""What a trace tells us: units ranked against a feature, top windows of a unit, gate saturation.

* `find_neurons` ranks every unit of every layer by |Pearson r| with a per-character feature
  (features.py), with a chance level from circularly shifted copies of the feature.
* `top_windows`: the stretches of text where one unit is most positive and most negative.
* `saturation`: how often each gate is nearly shut (< 0.1) or wide open (> 0.9), per unit, as in
  Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks".

Takes traces (trace.py) and returns arrays and small dataclasses; runs no model, renders nothing.

Shape legend: T time, H hidden, N units ranked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..config import GATE_VECTORS
from ..errors import FeatureError, NeuronError
from . import features as feature_lib
from .tracing import Trace

#: Gate saturation thresholds of Karpathy et al. (2015).
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9


# -------------------------------------------------------------------------------------- features


def feature_values(name: str | None, text: str, regex: str | None = None) -> np.ndarray:
    """(T,) float64 values of a named feature (features.get_feature) or, with `regex`, 1 inside
    its matches. Unknown names and bad patterns become a FeatureError."""
    try:
        if regex is not None:
            try:
                compiled = re.compile(regex)
            except re.error as error:
                raise FeatureError(f"invalid regular expression {regex!r}: {error}") from None
            return feature_lib.regex_feature(text, compiled)
        return feature_lib.get_feature(name or "")(text)
    except FeatureError:
        raise
    except ValueError as error:
        raise FeatureError(str(error)) from None


@dataclass(frozen=True)
class RankedUnit:
    layer: int       # 1-based
    unit: int
    r: float         # Pearson correlation with the feature


@dataclass
class FeatureSearch:
    """Units ranked by |r| with a feature, best first, and what |r| chance alone reaches."""

    vector: str
    ranked: list[RankedUnit]
    chance: float                # max |r| of any unit with a circularly shifted feature
    num_units: int
    feature: np.ndarray = field(repr=False)   # (T,)
    values: list[np.ndarray] = field(default_factory=list, repr=False)  # (T,) trace of each ranked unit


def correlations(values: torch.Tensor | np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of every column of values (T, N) with feature (T,), in float64; 0 for a constant column."""
    x = torch.as_tensor(values).to(torch.float64)                                     # (T, N)
    y = torch.as_tensor(np.asarray(feature, dtype=np.float64))                        # (T,)
    y = y - y.mean()
    x_mean = x.mean(dim=0)
    cov = (y @ x) / len(y)                                                            # (N,): E[(y − ȳ) x]
    var_x = (x * x).mean(dim=0) - x_mean * x_mean
    denom = torch.sqrt(var_x.clamp_min(0) * (y @ y / len(y)))
    r = torch.where(denom > 1e-12, cov / denom.clamp_min(1e-300), torch.zeros_like(cov))
    return r.clamp(-1.0, 1.0).numpy()


def find_neurons(trace: Trace, feature: np.ndarray, vector: str = "hidden", layers: Sequence[int] | None = None,
                 top: int = 10, shifts: int = 8, seed: int = 0) -> FeatureSearch:
    """Rank every unit of `vector` in `layers` (default: all traced) by |Pearson r| with `feature`.

    Chance level: the same correlation against the feature rolled by a random offset (at least a
    tenth of the text), which keeps the feature's and the units' own slow drift but breaks their
    alignment; `chance` is the largest |r| any unit reaches over `shifts` such rolls. A unit
    ranked well above it tracks the feature; one near it may be noise.
    """
    feature = np.asarray(feature, dtype=np.float64)
    T = len(trace.text)
    if len(feature) != T:
        raise FeatureError(f"the feature has {len(feature)} values for {T} characters")
    if T < 3:
        raise FeatureError("the text is too short to correlate (need at least 3 characters)")
    if np.ptp(feature) == 0:
        raise FeatureError(f"the feature is {feature[0]:g} at every character of this text, so nothing can "
                           "correlate with it; give a text where it varies (--text-file)")
    layers = list(layers) if layers else trace.traced_layers
    units = trace.units(vector, layers)                                               # (T, len(layers)·H)
    r = correlations(units, feature)
    H = trace.hidden_size
    order = np.argsort(-np.abs(r), kind="stable")[:top]
    ranked = [RankedUnit(layers[k // H], int(k % H), float(r[k])) for k in order]
    rng = np.random.default_rng(seed)
    low = max(1, T // 10)
    chance = 0.0
    for _ in range(shifts):
        rolled = np.roll(feature, int(rng.integers(low, T - low + 1)))
        if np.ptp(rolled) > 0:
            chance = max(chance, float(np.abs(correlations(units, rolled)).max()))
    values = [units[:, int(k)].numpy() for k in order]                                # top × (T,)
    return FeatureSearch(vector, ranked, chance, units.shape[1], feature, values)


def feature_window(feature: np.ndarray, width: int) -> tuple[int, int]:
    """[start, end) of the `width` characters where the feature changes most often: the stretch
    worth showing next to each ranked unit's strip."""
    T = len(feature)
    if T <= width:
        return 0, T
    changes = np.concatenate(([0.0], (np.diff(feature) != 0).astype(np.float64)))
    sums = np.convolve(changes, np.ones(width), mode="valid")                         # (T − width + 1,)
    start = int(np.argmax(sums))
    return start, start + width


# ---------------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    start: int       # [start, end) of the text
    end: int
    peak: int        # the character where the unit peaks
    value: float     # the unit's value there


def top_windows(values: torch.Tensor | np.ndarray, n: int, width: int = 60) -> tuple[list[Window], list[Window]]:
    """The n windows of `width` characters around the unit's highest peaks, and the n around its
    lowest, best first. Peaks are at least `width` apart, so windows do not repeat one stretch;
    each window shows three quarters of its width before the peak (what led up to it)."""
    v = np.asarray(torch.as_tensor(values, dtype=torch.float32).cpu(), dtype=np.float64)
    return _peaks(v, n, width, 1.0), _peaks(v, n, width, -1.0)


def _peaks(v: np.ndarray, n: int, width: int, sign: float) -> list[Window]:
    T = len(v)
    taken = np.zeros(T, dtype=bool)
    windows = []
    for p in np.argsort(-sign * v, kind="stable"):
        if len(windows) >= n:
            break
        if taken[p]:
            continue
        taken[max(0, p - width + 1) : p + width] = True
        start = int(min(max(0, p - (3 * width) // 4), max(0, T - width)))
        windows.append(Window(start, min(T, start + width), int(p), float(v[p])))
    return windows


# ------------------------------------------------------------------------------------- saturation


@dataclass(frozen=True)
class GateSaturation:
    """How often each unit of one gate of one layer is nearly shut or wide open."""

    layer: int              # 1-based
    gate: str
    left: np.ndarray        # (H,) fraction of characters where the gate is < low
    right: np.ndarray       # (H,) fraction where it is > high


def saturation(trace: Trace, low: float = SATURATION_LOW, high: float = SATURATION_HIGH) -> list[GateSaturation]:
    """Per traced layer and gate, every unit's fraction of left- and right-saturated time steps."""
    if len(trace.text) == 0:
        raise NeuronError("the text is empty")
    out = []
    for layer in trace.traced_layers:
        for gate, values in trace.layers[layer - 1].items():
            if gate in GATE_VECTORS:
                out.append(GateSaturation(layer, gate, (values < low).double().mean(0).numpy(),
                                          (values > high).double().mean(0).numpy()))
    if not out:
        raise NeuronError(f"a {trace.cell} cell has no gates to measure")
    return out
