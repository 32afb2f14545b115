"""The neuron atlas: every unit of the traced layers and vectors against every feature at once.

For each unit: the feature it matches best (the built-in features of features.py plus any the user
adds), its Pearson r, the chance level for that feature, how much of the time the unit sits at its
bound (saturation.py), its top contexts, and a verdict word only where the numbers earn one.

How: r of every unit of a (layer, vector) block with every feature is one matrix product of
standardised columns, and the shift chance comes from the same product against shifted copies of
the features (correlation.py). That alone says a correlation is real, not that the model learnt
it: a first layer reacts to the character it reads, so an untrained model's units already
correlate with character classes (whitespace, capitals, and whatever the text ties to them —
capitals inside quotes). So, given an untrained `baseline` trace (a randomly initialised model of
the same shape on the same text, `untrained_like`):

    untrained chance[feature] = the largest |r| any unit of the untrained model reaches with it,
    chance[feature] = max(shift chance, untrained chance).

Both are family-wise levels (correlation.py). A unit *tracks* a feature only when |r| ≥ chance +
TRACKS_MARGIN (which covers the noise of a chance estimated from a few shifts and the choice of
the best of K features) and |r| ≥ TRACKS_MIN_R (the feature explains a good share of the unit's
variance). Above chance + margin but below TRACKS_MIN_R it is *weak*; within the margin no feature
is named as a verdict at all.

Takes a trace (tracing.py) and feature arrays (features.py); runs no model, renders nothing.

Shape legend: T time, H units per layer, K features, S shifts, N units in the atlas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from .. import memory
from ..errors import FeatureError
from .analysis import Window, feature_values, spaced_peaks
from .correlation import (
    CONSTANT_STD,
    SHIFT_BYTES,
    beyond_character,
    character_ids,
    check_length,
    feature_column,
    pearson,
    reach,
    shift_chance,
    shift_offsets,
    standardised,
)
from .effects import Effects
from .features import FEATURES
from .proposals import proposed_names
from .saturation import SATURATION_HIGH, SATURATION_LOW, saturation_share
from .tracing import Trace

#: Circular shifts of the features behind each chance level.
ATLAS_SHIFTS = 16
#: |r| must pass chance by this much before any verdict names a feature.
TRACKS_MARGIN = 0.1
#: ... and reach this for "tracks" (r² ≥ 0.25: a quarter of the variance); below it, "weak".
TRACKS_MIN_R = 0.5
#: ... or explain this share of the variance chance leaves unexplained (`gain`): near r = 1, where
#: a margin of TRACKS_MARGIN cannot fit above a high chance level, this is what still separates them.
TRACKS_GAIN = 0.2
#: A unit at its bound (saturation.saturation_share) this share of the time or more is "saturated".
SATURATED_SHARE = 0.9
#: Top contexts kept per unit, and their width in characters.
ATLAS_CONTEXTS = 3
ATLAS_CONTEXT_WIDTH = 60

#: A unit whose variance the character it reads explains to this share or more reacts to the input:
#: it is labelled by r and listed after the units that carry state, labelled by r beyond the character.
INPUT_SHARE = 0.5
#: A feature the character read explains to within this share of its variance leaves nothing beyond it.
STATE_SHARE_EPS = 1e-6

#: The verdict words, strongest claim first ("reacts": an input unit that tracks its feature).
VERDICTS = ("tracks", "reacts", "weak", "saturated", "constant", "")


@dataclass(frozen=True)
class AtlasUnit:
    """One unit, its best-matching feature and what the numbers say about it."""

    layer: int                  # 1-based
    vector: str
    unit: int
    feature: str                # its label: the feature standing furthest above its chance level
    r: float                    # Pearson r with it
    chance: float               # the chance level of that feature
    saturation: float           # share of characters at the unit's bound
    verdict: str                # one of VERDICTS
    contexts: tuple[Window, ...]  # where the unit is most "on" (in the direction of its label's r)
    partial_r: float = 0.0      # r with the feature beyond the character read (partial r given it)
    partial_chance: float = 0.0   # the chance level of that
    heldout_r: float = 0.0      # the r the label stands on (partial for a state unit), on the half it was not found on
    input_share: float = 0.0    # share of the unit's variance the character read explains
    kind: str = "state"         # "state" (labelled beyond the character read) or "input" (labelled by r)

    @property
    def label_r(self) -> float:
        """The r the label stands on: partial r for a state unit, r for an input unit."""
        return self.partial_r if self.kind == "state" else self.r

    @property
    def label_chance(self) -> float:
        return self.partial_chance if self.kind == "state" else self.chance

    @property
    def excess(self) -> float:
        """How far the label's |r| stands above its chance (negative: below it)."""
        return abs(self.label_r) - self.label_chance

    @property
    def gain(self) -> float:
        """The share of the variance the label's chance leaves unexplained that the unit explains."""
        return float(gain(self.label_r, self.label_chance))


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
    partial_chance: dict[str, float] = field(default_factory=dict)   # per feature: chance of r beyond the character
    stateful: list[str] = field(default_factory=list)   # features something is left of beyond the character read
    half: int = 0                    # labels are found on text[:half] and checked on text[half:]
    means: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))   # (N,) each unit's mean, `keys` order
    effects: Effects | None = None   # what holding each unit at its mean does (effects.unit_effects), if measured

    def __post_init__(self):
        self._rows = {key: k for k, key in enumerate(self.keys)}

    def rows(self, units: Sequence[AtlasUnit]) -> list[int]:
        """The rows of `units` in `keys` (and in r)."""
        return [self._rows[(u.layer, u.vector, u.unit)] for u in units]

    def ablation_chars(self, unit: AtlasUnit) -> int | None:
        """The characters a unit was held at its mean over (None: not measured)."""
        if self.effects is None or self.effects.per_unit is None:
            return None
        return int(self.effects.per_unit[self._rows[(unit.layer, unit.vector, unit.unit)]])

    def effect(self, unit: AtlasUnit) -> tuple[float | None, str, str]:
        """(ablation_bpc, promotes, suppresses) of a unit: None and "" where not measured."""
        if self.effects is None:
            return None, "", ""
        k = self._rows[(unit.layer, unit.vector, unit.unit)]
        bpc = float(self.effects.ablation_bpc[k])
        return (None if np.isnan(bpc) else bpc), self.effects.promotes[k], self.effects.suppresses[k]

    @property
    def thresholds(self) -> dict[str, float]:
        return {"margin": TRACKS_MARGIN, "min_r": TRACKS_MIN_R, "gain": TRACKS_GAIN, "saturated": SATURATED_SHARE,
                "input_share": INPUT_SHARE}

    @property
    def rule(self) -> str:
        """How chance, the labels and the verdict words are defined, in one paragraph for the reader."""
        untrained = (" or that any unit of an untrained model of the same shape reaches on the same text, whichever "
                     "is higher" if self.untrained_chance is not None else "")
        parts = (
            "input: the share of a unit's variance the character it reads explains (its mean per character); ",
            f"a unit at {INPUT_SHARE:.0%} or more that tracks nothing by r|char (its r with a feature beyond the ",
            "character read: both minus their mean per character) reacts to the input and is labelled by r; ",
            "every other unit carries state and is labelled by r|char. ",
            f"The label is the feature furthest above chance on the first {self.half:,} characters; ",
            f"held-out: its r on the other {self.characters - self.half:,}. ",
            "chance: the largest |r| any unit reaches with the feature circularly shifted along the text ",
            f"({self.shifts} shifts){untrained}; as the best of many units it already counts picking the best ",
            f"of many. tracks (reacts, for an input unit): |r| ≥ {TRACKS_MIN_R:g} (a quarter of the variance) ",
            f"and either |r| ≥ chance + {TRACKS_MARGIN:g} or |r| explains {TRACKS_GAIN:.0%} of the variance ",
            f"chance leaves unexplained, on both halves; weak: above chance so but |r| < {TRACKS_MIN_R:g}; ",
            f"saturated: at its bound (gate < {SATURATION_LOW:g} or > {SATURATION_HIGH:g}, |tanh| > ",
            f"{SATURATION_HIGH:g}) on ≥ {SATURATED_SHARE:.0%} of the characters; constant: never changes; ",
            "no word: none of these. Units are sorted by that share explained. sat: share of characters at the bound.",
        )
        return "".join(parts)

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
        """How many units the atlas labels with `feature` and a verdict of tracks or reacts: the units
        list's own rule (beyond the character read for a state unit, held on both halves)."""
        return sum(1 for u in self.units if u.feature == feature and u.verdict in ("tracks", "reacts"))


def atlas_need(config, units: int, features: int) -> memory.Need:
    """What the atlas of `units` units of a model of `config` (a ModelConfig) against `features`
    features holds beside the trace of the units: the untrained model (its weights and its own trace
    of the units), each feature in float64 and standardised (with the float64 copies standardising
    makes), what is left of it beyond the character read and each half standardised apart, the
    character ids, the standardised values of one (layer, vector) block at a time with what is
    left of them beyond the character (float64 while it is made) and their halves, for the model
    and its baseline, and the shifted features of one group (correlation.SHIFT_BYTES)."""
    per_char = (units * memory.FLOAT + features * (40 + 3 * memory.FLOAT + 16) + config.hidden_size * (32 + 48)
                + memory.INDEX + 16)
    return memory.Need(fixed=memory.weights(config) + 2 * SHIFT_BYTES, per_char=per_char)


def builtin_features(text: str, extra: Mapping[str, str | None] | None = None) -> dict[str, np.ndarray]:
    """Every registered feature of `text`, plus `extra` ones: name → regex pattern (or None for a
    named or parameterised feature such as "count:a")."""
    values = {name: spec.compute(text) for name, spec in FEATURES.items()}
    for name, regex in (extra or {}).items():
        values[name] = feature_values(None if regex is not None else name, text, regex=regex)
    return values


def gain(r, chance):
    """(r² − chance²) / (1 − chance²), elementwise: the share of the variance left unexplained at
    the chance level that |r| explains (negative below chance). Ranks and labels units."""
    r, chance = np.asarray(r, dtype=np.float64), np.minimum(np.asarray(chance, dtype=np.float64), 1 - 1e-12)
    return (r * r - chance * chance) / (1 - chance * chance)


def atlas_features(text: str, extra: Mapping[str, str | None] | None = None) -> dict[str, np.ndarray]:
    """What the atlas reads units against: the registered features, those proposed from the text
    itself (proposals.py, at most config.ATLAS_PROPOSED_FEATURES), and `extra` ones (as builtin_features)."""
    values = builtin_features(text, extra)
    for name, compute in proposed_names(text):
        if name not in values:
            values[name] = compute(text)
    return values


def verdict(r: float, chance: float, saturation: float, constant: bool, heldout: float | None = None,
            kind: str = "state") -> str:
    """The verdict word of the module's rule (see the module docstring). With `heldout`, the r of
    the label on text it was not found on, the label must hold there too (the same sign, and the
    weaker of the two is what passes or fails); an input unit that tracks its feature "reacts"."""
    if constant:
        return "constant"
    if heldout is not None:
        r = min(abs(r), abs(heldout)) if r * heldout > 0 else 0.0
    above = abs(r) >= chance + TRACKS_MARGIN or (abs(r) > chance and gain(r, chance) >= TRACKS_GAIN)
    if above and abs(r) >= TRACKS_MIN_R:
        return "tracks" if kind == "state" else "reacts"
    if saturation >= SATURATED_SHARE:
        return "saturated"
    if above:
        return "weak"
    return ""


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
    check_length(T)
    layers = list(layers) if layers else trace.traced_layers
    columns = _Columns.of(trace.text, features)
    offsets = shift_offsets(T, shifts, seed)
    blocks = [_Block.measure(trace, baseline, layer, vector, columns, offsets)
              for layer in layers for vector in vectors]
    r = torch.cat([b.r for b in blocks]).numpy()                                     # (N, K)
    shift = torch.stack([b.shift_chance for b in blocks]).amax(dim=0).numpy()        # (K,)
    untrained = None
    if baseline is not None:
        untrained = torch.stack([b.untrained_chance for b in blocks]).amax(dim=0).numpy()
    chance = np.maximum(shift, untrained) if untrained is not None else shift
    partial_chance = torch.stack([b.partial_chance for b in blocks]).amax(dim=0).numpy()
    keys = [(b.layer, b.vector, unit) for b in blocks for unit in range(b.x.shape[1])]
    units = _units(blocks, keys, columns, r, chance, partial_chance, contexts, width)
    names = columns.names
    per_feature = lambda values: {name: float(c) for name, c in zip(names, values)}  # noqa: E731
    return Atlas(T, layers, list(vectors), names, columns.absent, per_feature(chance), per_feature(shift),
                 per_feature(untrained) if untrained is not None else None, len(offsets), units, r, keys,
                 per_feature(partial_chance), [n for n, s in zip(names, columns.stateful) if s], T // 2,
                 torch.cat([b.x.to(torch.float64).mean(dim=0) for b in blocks]).numpy())


@dataclass
class _Columns:
    """The features that vary on the text, standardised, whole and by halves, and what is left of
    them beyond the current character."""

    names: list[str]
    absent: list[str]
    f: torch.Tensor              # (T, K) standardised
    halves: tuple[torch.Tensor, torch.Tensor]     # each half standardised on its own
    fr: torch.Tensor             # (T, K) beyond the current character, standardised (0: none left)
    fr_halves: tuple[torch.Tensor, torch.Tensor]
    stateful: np.ndarray         # (K,) bool: something is left of the feature beyond the character
    ids: torch.Tensor            # (T,) the character read, as an index
    count: int                   # distinct characters

    @classmethod
    def of(cls, text: str, features: Mapping[str, np.ndarray]) -> "_Columns":
        names, absent, raw = _varying(features, len(text))                           # raw (T, K) float64
        ids, count = character_ids(text)
        left, share = beyond_character(raw, ids, count)
        stateful = (share < 1 - STATE_SHARE_EPS).numpy()
        f, fr = (standardised(v)[0].to(torch.float32) for v in (raw, left))
        return cls(names, absent, f, _halves(raw), fr, _halves(left), stateful, ids, count)


def _halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and second half of x (T, N) along time, each standardised on its own, in float32."""
    half = x.shape[0] // 2
    return tuple(standardised(part)[0].to(torch.float32) for part in (x[:half], x[half:]))


def _varying(features: Mapping[str, np.ndarray], T: int) -> tuple[list[str], list[str], torch.Tensor]:
    """(names, absent, values): the features that vary on the text, those that do not, and the
    varying ones side by side as float64 columns (T, K)."""
    names, absent, columns = [], [], []
    for name, values in features.items():
        values = feature_column(values, T, name)
        (names if np.ptp(values) > 0 else absent).append(name)
        if np.ptp(values) > 0:
            columns.append(values)
    if not names:
        raise FeatureError("no feature varies on this text, so nothing can correlate with one; give a longer or "
                           "more varied text (--text-file)")
    return names, absent, torch.as_tensor(np.stack(columns, axis=1))


@dataclass
class _Block:
    """One (layer, vector) block of units measured against every feature, whole and beyond the
    character read, on the whole text and on each half."""

    layer: int
    vector: str
    x: torch.Tensor                    # (T, H) the units' values
    r: torch.Tensor                    # (H, K) r of every unit with every feature
    shift_chance: torch.Tensor         # (K,) the largest |r| of any unit here with a shifted feature
    untrained_chance: torch.Tensor     # (K,) ... of any unit of the baseline here (0 without one)
    saturation: torch.Tensor           # (H,) share of characters at the bound
    constant: torch.Tensor             # (H,) bool: the unit never changes
    input_share: torch.Tensor          # (H,) share of the unit's variance the character read explains
    partial: torch.Tensor              # (H, K) r beyond the character read (partial r)
    partial_chance: torch.Tensor       # (K,) the chance level of partial r (shifted and untrained)
    halves: tuple[torch.Tensor, torch.Tensor]           # (H, K) r on the first half, on the second
    partial_halves: tuple[torch.Tensor, torch.Tensor]   # (H, K) partial r on each half

    @classmethod
    def measure(cls, trace: Trace, baseline: Trace | None, layer: int, vector: str, columns: _Columns,
                offsets: list[int]) -> "_Block":
        x = trace.layers[layer - 1][vector].to(torch.float32)                          # (T, H)
        z, std = standardised(x)
        left, share = beyond_character(x, columns.ids, columns.count)
        zr = standardised(left)[0]
        untrained = torch.zeros(len(columns.names), dtype=torch.float64)
        partial_chance = shift_chance(zr, columns.fr, offsets)
        if baseline is not None:
            b = baseline.layers[layer - 1][vector].to(torch.float32)
            untrained = reach(standardised(b)[0], columns.f)
            b_left = standardised(beyond_character(b, columns.ids, columns.count)[0])[0]
            partial_chance = torch.maximum(partial_chance, reach(b_left, columns.fr))
        halves = tuple(pearson(zh, fh) for zh, fh in zip(_halves(x), columns.halves))
        partial_halves = tuple(pearson(zh, fh) for zh, fh in zip(_halves(left), columns.fr_halves))
        return cls(layer, vector, x, pearson(z, columns.f), shift_chance(z, columns.f, offsets), untrained,
                   saturation_share(vector, x), std <= CONSTANT_STD, share, pearson(zr, columns.fr), partial_chance,
                   halves, partial_halves)


def _units(blocks: Sequence[_Block], keys: list[tuple[int, str, int]], columns: _Columns, r: np.ndarray,
           chance: np.ndarray, partial_chance: np.ndarray, contexts: int, width: int) -> list[AtlasUnit]:
    """Every unit with its label, verdict and contexts, sorted: units that carry state first, then
    units that react to the character read, then constant ones; within each, furthest above chance
    first. A state unit's label is the feature whose r beyond the character read stands furthest
    above its chance on the first half of the text; an input unit's, the feature whose r does;
    either is checked on the second half (heldout_r)."""
    cat = lambda name: torch.cat([getattr(b, name) for b in blocks]).numpy()  # noqa: E731
    partial, share = cat("partial"), cat("input_share")
    first, second = (torch.cat([b.halves[k] for b in blocks]).numpy() for k in (0, 1))
    p_first, p_second = (torch.cat([b.partial_halves[k] for b in blocks]).numpy() for k in (0, 1))
    saturation, constant = cat("saturation"), cat("constant")
    # Features nothing is left of beyond the character can never label a state unit.
    p_score = np.where(columns.stateful, gain(p_first, partial_chance), -np.inf)
    p_best = np.argmax(p_score, axis=1)                                                              # (N,)
    rows = np.arange(len(p_best))
    carries = np.array([verdict(partial[n, k], partial_chance[k], 0.0, False, heldout=p_second[n, k]) == "tracks"
                        for n, k in zip(rows, p_best)], dtype=bool)
    state = ((share < INPUT_SHARE) | carries) & columns.stateful.any()
    best = np.where(state, p_best, np.argmax(gain(first, chance), axis=1))                           # (N,)
    value = np.where(state, partial[rows, best], r[rows, best])
    heldout = np.where(state, p_second[rows, best], second[rows, best])
    level = np.where(state, partial_chance[best], chance[best])
    windows = _contexts([b.x for b in blocks], value, contexts, width)
    units = []
    for n, (layer, vector, unit) in enumerate(keys):
        kind = "state" if state[n] else "input"
        word = verdict(float(value[n]), float(level[n]), float(saturation[n]), bool(constant[n]),
                       heldout=float(heldout[n]), kind=kind)
        units.append(AtlasUnit(layer, vector, unit, columns.names[best[n]], float(r[n, best[n]]),
                               float(chance[best[n]]), float(saturation[n]), word, windows[n],
                               float(partial[n, best[n]]), float(partial_chance[best[n]]), float(heldout[n]),
                               float(share[n]), kind))
    order = sorted(range(len(units)), key=lambda n: (bool(constant[n]), not state[n], -units[n].gain))
    return [units[n] for n in order]


def _contexts(blocks: Sequence[torch.Tensor], r: np.ndarray, n: int, width: int) -> list[tuple[Window, ...]]:
    """Per unit, the n windows around its strongest peaks in the direction of its r (highest values
    for r ≥ 0, lowest for r < 0), as analysis.top_windows places them (`spaced_peaks`).

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
            out.append(tuple(Window.around(p, float(values[p, unit]), width, T)
                             for p in spaced_peaks(top[unit], n, width)))
        start_unit += H
    return out
