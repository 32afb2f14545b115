"""The neuron atlas: every unit of the traced layers and vectors against every feature at once.

For each unit: the feature it matches best (the built-in features of features.py plus any the user
adds), its Pearson r, the chance level for that feature, how much of the time the unit sits at its
bound (saturation), its top contexts, and a verdict word only where the numbers earn one.

How, in one vectorised pass per (layer, vector) block of units: activations (T, H) and features
(T, K) are standardised (zero mean, unit variance), so r of every unit with every feature is one
matrix product Zxᵀ Zf / T (H, K). The chance level comes from the same product against S circularly
shifted copies of the features (T, S·K), which keeps each feature's and each unit's own slow drift
(autocorrelation, which inflates r between unrelated smooth signals) but breaks their alignment:

    shift chance[feature] = the largest |r| that ANY unit reaches with the feature shifted (S shifts).

That alone says a correlation is real, not that the model learnt it: a first layer reacts to the
character it reads, so an untrained model's units already correlate with character classes
(whitespace, capitals, and whatever the text ties to them — capitals inside quotes). So, given an
untrained `baseline` trace (a randomly initialised model of the same shape on the same text,
`untrained_like`):

    untrained chance[feature] = the largest |r| any unit of the untrained model reaches with it,
    chance[feature] = max(shift chance, untrained chance).

Both are family-wise levels: the best of N units is compared with the best of N units' chance
scores, so picking the top unit out of many (which inflates r — multiple comparisons) is counted.
A unit *tracks* a feature only when |r| ≥ chance + TRACKS_MARGIN (0.1: covers the noise of a
chance estimated from S shifts and the choice of the best of K features) and |r| ≥ TRACKS_MIN_R
(0.5: the feature explains at least a quarter of the unit's variance). Above chance + margin but
below 0.5 it is *weak*; within the margin no feature is named as a verdict at all.

Takes a trace (trace.py) and feature arrays (features.py); runs no model, renders nothing.

Shape legend: T time, H units per layer, K features, S shifts, N units in the atlas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from ..config import GATE_VECTORS
from ..errors import FeatureError
from .analysis import Window, feature_values
from .features import FEATURES
from .tracing import Trace

#: Circular shifts of the features behind each chance level.
ATLAS_SHIFTS = 16
#: |r| must pass chance by this much before any verdict names a feature.
TRACKS_MARGIN = 0.1
#: ... and reach this for "tracks" (r² ≥ 0.25: a quarter of the variance); below it, "weak".
TRACKS_MIN_R = 0.5
#: A unit at its bound (gate < 0.1 or > 0.9; |tanh| > 0.9) this share of the time is "saturated".
SATURATED_SHARE = 0.9
#: Top contexts kept per unit, and their width in characters.
ATLAS_CONTEXTS = 3
ATLAS_CONTEXT_WIDTH = 24

#: The verdict words, strongest claim first.
VERDICTS = ("tracks", "weak", "saturated", "constant", "")

_BOUND = 0.9
_CELL_BOUND = math.atanh(_BOUND)   # the cell state acts through tanh(c): |c| > 1.47 is |tanh c| > 0.9


@dataclass(frozen=True)
class AtlasUnit:
    """One unit, its best-matching feature and what the numbers say about it."""

    layer: int                  # 1-based
    vector: str
    unit: int
    feature: str                # the feature standing furthest above its chance level
    r: float                    # Pearson r with it
    chance: float               # the chance level of that feature
    saturation: float           # share of characters at the unit's bound
    verdict: str                # one of VERDICTS
    contexts: tuple[Window, ...]  # where the unit is most "on" (highest if r ≥ 0, lowest if r < 0)

    @property
    def excess(self) -> float:
        """How far |r| stands above chance (negative: below it)."""
        return abs(self.r) - self.chance


@dataclass
class Atlas:
    """Every unit of `layers` × `vectors`, sorted by how far above chance it stands."""

    characters: int
    layers: list[int]
    vectors: list[str]
    features: list[str]              # the features that vary on this text, in matrix order
    absent: list[str]                # features constant on this text (nothing can correlate with them)
    chance: dict[str, float]         # per feature: max(shift, untrained)
    shift_chance: dict[str, float]
    untrained_chance: dict[str, float] | None   # None without a baseline trace
    shifts: int
    units: list[AtlasUnit]           # sorted, best first
    r: np.ndarray = field(repr=False)     # (N, K) r of every unit (in `keys` order) with every feature
    keys: list[tuple[int, str, int]] = field(repr=False, default_factory=list)  # (layer, vector, unit) per row of r

    @property
    def thresholds(self) -> dict[str, float]:
        return {"margin": TRACKS_MARGIN, "min_r": TRACKS_MIN_R, "saturated": SATURATED_SHARE}

    @property
    def rule(self) -> str:
        """How chance and the verdict words are defined, in one paragraph for the reader."""
        untrained = (" or that any unit of an untrained model of the same shape reaches on the same text, whichever "
                     "is higher" if self.untrained_chance is not None else "")
        return (f"chance: the largest |r| any unit reaches with the feature circularly shifted along the text "
                f"({self.shifts} shifts){untrained}; as the best of many units it already counts picking the best "
                f"of many. tracks: |r| ≥ "
                f"chance + {TRACKS_MARGIN:g} and |r| ≥ {TRACKS_MIN_R:g} (a quarter of the variance); weak: |r| ≥ "
                f"chance + {TRACKS_MARGIN:g} only; saturated: at its bound (gate < {1 - _BOUND:.1f} or > {_BOUND:g}, "
                f"|tanh| > {_BOUND:g}) on ≥ {SATURATED_SHARE:.0%} of the characters; constant: never changes; no "
                f"word: within {TRACKS_MARGIN:g} of chance. sat: share of characters at the bound.")

    def most_informative(self) -> AtlasUnit:
        """The unit a page opens on: furthest above chance among those that change and are at their
        bound under half the time (a saturated unit draws as a solid block)."""
        changing = [u for u in self.units if u.verdict != "constant"] or self.units
        return next((u for u in changing if u.saturation < 0.5), changing[0])

    def ranking(self, feature: str, top: int) -> list[tuple[int, str, int, float]]:
        """The `top` units by |r| with one feature: (layer, vector, unit, r), best first."""
        column = self.r[:, self.features.index(feature)]
        order = np.argsort(-np.abs(column), kind="stable")[:top]
        return [(*self.keys[k], float(column[k])) for k in order]

    def tracking(self, feature: str) -> int:
        """How many units track `feature` (by the verdict rule) — whether or not it is their best."""
        column = np.abs(self.r[:, self.features.index(feature)])
        return int(((column >= self.chance[feature] + TRACKS_MARGIN) & (column >= TRACKS_MIN_R)).sum())


def builtin_features(text: str, extra: Mapping[str, str | None] | None = None) -> dict[str, np.ndarray]:
    """Every registered feature of `text`, plus `extra` ones: name → regex pattern (or None for a
    named or parameterised feature such as "count:a")."""
    values = {name: spec.compute(text) for name, spec in FEATURES.items()}
    for name, regex in (extra or {}).items():
        values[name] = feature_values(None if regex is not None else name, text, regex=regex)
    return values


def verdict(r: float, chance: float, saturation: float, constant: bool) -> str:
    """The verdict word of the module's rule (see the module docstring)."""
    if constant:
        return "constant"
    if abs(r) >= chance + TRACKS_MARGIN and abs(r) >= TRACKS_MIN_R:
        return "tracks"
    if saturation >= SATURATED_SHARE:
        return "saturated"
    if abs(r) >= chance + TRACKS_MARGIN:
        return "weak"
    return ""


def saturation_share(vector: str, values: torch.Tensor) -> torch.Tensor:
    """(T, H) → (H,): the share of characters where each unit is at its bound."""
    if vector in GATE_VECTORS:
        at_bound = (values < 1 - _BOUND) | (values > _BOUND)
    elif vector == "cell":
        at_bound = values.abs() > _CELL_BOUND
    else:   # hidden, candidate: tanh-bounded in −1..1
        at_bound = values.abs() > _BOUND
    return at_bound.float().mean(dim=0)


def _standardised(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, N) float32 → (z, std): columns at zero mean and unit variance (a constant column → 0)."""
    x64 = x.to(torch.float64)
    mean = x64.mean(dim=0)
    std = x64.std(dim=0, unbiased=False)                                             # (N,)
    z = (x - mean.to(x.dtype)) / torch.where(std > 1e-9, std, torch.ones_like(std)).to(x.dtype)
    z[:, std <= 1e-9] = 0.0
    return z, std


def untrained_like(model, seed: int = 0):
    """A randomly initialised model of the same config and device as `model` (its baseline), made
    without touching the global random state."""
    from ..model.network import CharModel

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharModel(model.config).to(device).eval()


def build_atlas(trace: Trace, features: Mapping[str, np.ndarray], vectors: Sequence[str] = ("hidden",),
                layers: Sequence[int] | None = None, shifts: int = ATLAS_SHIFTS, seed: int = 0,
                contexts: int = ATLAS_CONTEXTS, width: int = ATLAS_CONTEXT_WIDTH,
                baseline: Trace | None = None) -> Atlas:
    """The atlas of every unit of `vectors` in `layers` (default: all traced) against `features`;
    `baseline`, a trace of the same text and selection through an untrained model, raises each
    feature's chance to what its units reach."""
    T = len(trace.text)
    if T < 3:
        raise FeatureError("the text is too short to correlate (need at least 3 characters)")
    layers = list(layers) if layers else trace.traced_layers
    names, absent, columns = [], [], []
    for name, values in features.items():
        values = np.asarray(values, dtype=np.float64)
        if len(values) != T:
            raise FeatureError(f"the feature {name} has {len(values)} values for {T} characters")
        (names if np.ptp(values) > 0 else absent).append(name)
        if np.ptp(values) > 0:
            columns.append(values)
    if not names:
        raise FeatureError("no feature varies on this text, so nothing can correlate with one; give a longer or "
                           "more varied text (--text-file)")
    f, _ = _standardised(torch.as_tensor(np.stack(columns, axis=1)))                # (T, K) float64
    f = f.to(torch.float32)
    K = len(names)
    rng = np.random.default_rng(seed)
    low = max(1, T // 10)
    offsets = [int(rng.integers(low, T - low + 1)) for _ in range(shifts)]
    shifted = torch.cat([torch.roll(f, offset, dims=0) for offset in offsets], dim=1) if offsets else f[:, :0]  # (T, S·K)

    r_blocks, keys, sats, stds, directions = [], [], [], [], []
    chance = torch.zeros(K, dtype=torch.float64)
    untrained = torch.zeros(K, dtype=torch.float64)
    for layer in layers:
        for vector in vectors:
            x = trace.layers[layer - 1][vector].to(torch.float32)                   # (T, H)
            z, std = _standardised(x)
            r = (z.t() @ f).to(torch.float64) / T                                    # (H, K)
            if offsets:
                null = (z.t() @ shifted).abs().to(torch.float64) / T                 # (H, S·K)
                chance = torch.maximum(chance, null.view(-1, shifts, K).amax(dim=(0, 1)))
            if baseline is not None:
                zb, _ = _standardised(baseline.layers[layer - 1][vector].to(torch.float32))
                untrained = torch.maximum(untrained, ((zb.t() @ f).abs().to(torch.float64) / T).amax(dim=0))
            r_blocks.append(r.clamp(-1, 1))
            sats.append(saturation_share(vector, x))
            stds.append(std)
            keys += [(layer, vector, unit) for unit in range(x.shape[1])]
            directions.append(x)
    r_all = torch.cat(r_blocks).numpy()                                              # (N, K)
    shift_np = chance.numpy()
    chance_np = np.maximum(shift_np, untrained.numpy()) if baseline is not None else shift_np
    excess = np.abs(r_all) - chance_np                                               # (N, K)
    best = np.argmax(excess, axis=1)                                                 # (N,)
    best_r = r_all[np.arange(len(best)), best]
    saturation = torch.cat(sats).numpy()
    constant = (torch.cat(stds) <= 1e-9).numpy()

    windows = _contexts(directions, best_r, contexts, width)
    units = [AtlasUnit(layer, vector, unit, names[best[n]], float(best_r[n]), float(chance_np[best[n]]),
                       float(saturation[n]), verdict(float(best_r[n]), float(chance_np[best[n]]), float(saturation[n]),
                                                     bool(constant[n])), windows[n])
             for n, (layer, vector, unit) in enumerate(keys)]
    order = sorted(range(len(units)), key=lambda n: (constant[n], -units[n].excess))
    per_feature = lambda values: {name: float(c) for name, c in zip(names, values)}  # noqa: E731
    return Atlas(T, layers, list(vectors), names, absent, per_feature(chance_np), per_feature(shift_np),
                 per_feature(untrained.numpy()) if baseline is not None else None, len(offsets),
                 [units[n] for n in order], r_all, keys)


def _contexts(blocks: Sequence[torch.Tensor], r: np.ndarray, n: int, width: int) -> list[tuple[Window, ...]]:
    """Per unit, the n windows around its strongest peaks in the direction of its r (highest values
    for r ≥ 0, lowest for r < 0), peaks at least `width` apart, as analysis.top_windows chooses them.

    Greedy choice over the sorted values stops once n peaks are found, and each peak taken rules
    out fewer than 2·width others, so the first (n − 1)(2·width − 1) + 1 candidates of each unit
    (torch.topk, all units at once) are all it can look at."""
    out: list[tuple[Window, ...]] = []
    start_unit = 0
    for x in blocks:
        T, H = x.shape
        m = min(T, max(0, n - 1) * (2 * width - 1) + 1)
        signs = np.where(r[start_unit : start_unit + H] >= 0, 1.0, -1.0)             # (H,)
        signed = x * torch.as_tensor(signs, dtype=x.dtype)                            # (T, H)
        top = torch.topk(signed, m, dim=0).indices.t().numpy()                        # (H, m)
        values = x.numpy()
        for unit in range(H):
            out.append(_greedy(top[unit], values[:, unit], n, width, T))
        start_unit += H
    return out


def _greedy(candidates: np.ndarray, v: np.ndarray, n: int, width: int, T: int) -> tuple[Window, ...]:
    peaks: list[int] = []
    for p in candidates:
        if len(peaks) >= n:
            break
        if all(abs(int(p) - q) >= width for q in peaks):
            peaks.append(int(p))
    windows = []
    for p in peaks:
        start = int(min(max(0, p - (3 * width) // 4), max(0, T - width)))
        windows.append(Window(start, min(T, start + width), p, float(v[p])))
    return tuple(windows)


@dataclass(frozen=True)
class Predictions:
    """The model's top next-character guesses after each character of a trace's text."""

    ids: np.ndarray       # (T, k) vocabulary ids, most probable first
    probs: np.ndarray     # (T, k)
    actual: np.ndarray    # (T,) the probability it gave the character that came next (NaN after the last)


def next_char_predictions(trace: Trace, vocab, k: int = 5) -> Predictions:
    """Top-k of softmax(logits[t]) for every t (logits[t] predicts text[t + 1])."""
    probs = torch.softmax(trace.logits.to(torch.float64), dim=-1)                     # (T, V)
    top = torch.topk(probs, min(k, probs.shape[1]), dim=-1)
    actual = np.full(len(trace.text), np.nan)
    if len(trace.text) > 1:
        following = torch.as_tensor(np.asarray(vocab.encode(trace.text[1:]), dtype=np.int64))
        actual[:-1] = probs[torch.arange(len(following)), following].numpy()
    return Predictions(top.indices.numpy(), top.values.numpy(), actual)
