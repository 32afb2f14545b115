"""What a trace tells us: units ranked against a feature, and the stretches where a unit peaks.

* `find_neurons` ranks every unit of every traced layer by |Pearson r| with a per-character feature
  (features.py), beside what chance alone reaches (correlation.py).
* `top_windows`: the stretches of text where one unit is most positive and most negative; `Window`
  and `spaced_peaks` place them, for the atlas's contexts too.

Takes traces (tracing.py) and returns arrays and small dataclasses; runs no model, renders nothing.
Gate saturation is in saturation.py.

Shape legend: T time, H hidden, N units ranked.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

from .. import memory
from ..errors import FeatureError
from . import features as feature_lib
from .correlation import check_length, feature_column, pearson, shift_chance, shift_offsets, standardised
from .tracing import Trace

# -------------------------------------------------------------------------------------- features


def feature_values(name: str | None, text: str, regex: str | None = None) -> np.ndarray:
    """(T,) float64 values of a named feature (features.get_feature) or, with `regex`, 1 inside
    its matches. Unknown names and bad patterns become a FeatureError."""
    try:
        if regex is not None:
            try:
                compiled = feature_lib.compile_pattern(regex)
            except ValueError as error:
                raise FeatureError(f"invalid regular expression {regex!r}: {error}") from None
            return feature_lib.regex_feature(text, compiled)
        return feature_lib.get_feature(name or "")(text)
    except FeatureError:
        raise
    except ValueError as error:
        raise FeatureError(str(error)) from None


#: Shifts behind the chance level of --find.
FIND_SHIFTS = 8


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


def ranked_units(r: np.ndarray, layers: Sequence[int], hidden_size: int, top: int | None = None) -> list[RankedUnit]:
    """The `top` (default: all) units by |r|, best first, from r (len(layers)·H,) of the units of
    `layers` side by side (as `Trace.units` lays them out)."""
    order = np.argsort(-np.abs(r), kind="stable")[:top]
    return [RankedUnit(layers[k // hidden_size], int(k % hidden_size), float(r[k])) for k in order]


def find_neurons(trace: Trace, feature: np.ndarray, vector: str = "hidden", layers: Sequence[int] | None = None,
                 top: int = 10, shifts: int = FIND_SHIFTS, seed: int = 0) -> FeatureSearch:
    """Rank every unit of `vector` in `layers` (default: all traced) by |Pearson r| with `feature`.

    Chance level (correlation.py): the largest |r| any unit reaches with the feature circularly
    shifted, over `shifts` shifts. A unit ranked well above it tracks the feature; one near it may
    be noise.
    """
    T = len(trace.text)
    feature = feature_column(feature, T)
    check_length(T)
    if np.ptp(feature) == 0:
        raise FeatureError(f"the feature is {feature[0]:g} at every character of this text, so nothing can "
                           "correlate with it; give a text where it varies (--text-file)")
    layers = list(layers) if layers else trace.traced_layers
    units = trace.units(vector, layers)                                               # (T, len(layers)·H)
    z, _ = standardised(units.to(torch.float64))
    zf, _ = standardised(torch.as_tensor(feature)[:, None])                           # (T, 1)
    r = pearson(z, zf)[:, 0].numpy()                                                  # (N,)
    chance = float(shift_chance(z, zf, shift_offsets(T, shifts, seed))[0])
    best = ranked_units(r, layers, trace.hidden_size, top)
    values = [trace.values(u.layer, vector, u.unit).numpy() for u in best]            # top × (T,)
    return FeatureSearch(vector, best, chance, units.shape[1], feature, values)


def find_need(units: int, shifts: int = FIND_SHIFTS) -> memory.Need:
    """What `find_neurons` holds per character beside the trace of the `units` units it ranks:
    their values side by side and standardised in float64, the feature and its shifted copies."""
    return memory.Need(per_char=units * (memory.FLOAT + 24) + 8 * (2 * shifts + 4))


#: What `top_windows` holds per character beside the unit's values: them in float64, signed,
#: and their order (twice).
TOP_BYTES = 40


def feature_window(feature: np.ndarray, width: int) -> tuple[int, int]:
    """[start, end) of the `width` characters where the feature changes most often: the stretch
    worth showing next to each ranked unit's strip."""
    T = len(feature)
    if T <= width:
        return 0, T
    changes = np.concatenate(([0.0], (np.diff(feature) != 0).astype(np.float64)))
    running = np.concatenate(([0.0], np.cumsum(changes)))                             # (T + 1,)
    sums = running[width:] - running[:-width]     # (T − width + 1,): changes in each window, in time linear in T
    start = int(np.argmax(sums))
    return start, start + width


# ---------------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    start: int       # [start, end) of the text
    end: int
    peak: int        # the character where the unit peaks
    value: float     # the unit's value there

    @classmethod
    def around(cls, peak: int, value: float, width: int, characters: int) -> "Window":
        """The `width` characters around a peak, three quarters of them before it (what led up to
        it), kept inside a text of `characters`."""
        start = int(min(max(0, peak - (3 * width) // 4), max(0, characters - width)))
        return cls(start, min(characters, start + width), peak, value)


def spaced_peaks(candidates: Iterable[int], n: int, width: int) -> list[int]:
    """The first `n` of `candidates` (best first) at least `width` apart, so that windows of
    `width` around them do not repeat one stretch. Each candidate is checked against its nearest
    peaks alone (kept in order), so the work grows with the candidates, not with their product with n."""
    peaks: list[int] = []
    ordered: list[int] = []                       # the peaks so far, in text order
    for p in candidates:
        if len(peaks) >= n:
            break
        p = int(p)
        i = bisect.bisect_left(ordered, p)
        if (i == len(ordered) or ordered[i] - p >= width) and (i == 0 or p - ordered[i - 1] >= width):
            ordered.insert(i, p)
            peaks.append(p)
    return peaks


def top_windows(values: torch.Tensor | np.ndarray, n: int, width: int = 60) -> tuple[list[Window], list[Window]]:
    """The n windows of `width` characters around the unit's highest peaks, and the n around its
    lowest, best first (`spaced_peaks`, `Window.around`)."""
    v = np.asarray(torch.as_tensor(values, dtype=torch.float32).cpu(), dtype=np.float64)
    return _peaks(v, n, width, 1.0), _peaks(v, n, width, -1.0)


def _peaks(v: np.ndarray, n: int, width: int, sign: float) -> list[Window]:
    order = np.argsort(-sign * v, kind="stable")
    return [Window.around(p, float(v[p]), width, len(v)) for p in spaced_peaks(order, n, width)]
