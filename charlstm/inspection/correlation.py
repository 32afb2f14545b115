"""Pearson r of units with per-character features, and the level chance alone reaches.

The one place inspection correlates: `analysis.find_neurons` (one feature against every unit) and
`atlas.build_atlas` (every feature against every unit) both standardise their columns (zero mean,
unit variance), take r of every unit with every feature as one matrix product Zxᵀ Zf / T, and
estimate chance from the same product against circularly shifted copies of the features. A shift
keeps each feature's and each unit's own slow drift (autocorrelation, which inflates r between
unrelated smooth signals) but breaks their alignment:

    shift chance[feature] = the largest |r| that ANY unit reaches with the feature shifted,
                            over S shifts of at least a tenth of the text each.

It is a family-wise level: the best of N units is compared with the best of N units' chance
scores, so picking the top unit out of many (which inflates r) is counted.

Takes tensors and arrays; knows nothing of traces, models or pictures.

Shape legend: T time, N units, K features, S shifts.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FeatureError

#: The fewest characters a correlation is measured over.
MIN_CHARS = 3
#: A column whose standard deviation is at most this is constant: its r with anything is 0.
CONSTANT_STD = 1e-9


def check_length(characters: int) -> None:
    """Refuse a text too short to correlate anything over."""
    if characters < MIN_CHARS:
        raise FeatureError(f"the text is too short to correlate (need at least {MIN_CHARS} characters)")


def feature_column(values, characters: int, name: str | None = None) -> np.ndarray:
    """A feature's values as float64 (T,), refused unless there is one per character."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) != characters:
        named = f" {name}" if name is not None else ""
        raise FeatureError(f"the feature{named} has {len(values)} values for {characters} characters")
    return values


def standardised(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, N) → (z, std): columns at zero mean and unit variance in x's dtype, the moments taken in
    float64; a constant column (std ≤ CONSTANT_STD) becomes 0."""
    x64 = x.to(torch.float64)
    mean = x64.mean(dim=0)
    std = x64.std(dim=0, unbiased=False)                                             # (N,)
    z = (x - mean.to(x.dtype)) / torch.where(std > CONSTANT_STD, std, torch.ones_like(std)).to(x.dtype)
    z[:, std <= CONSTANT_STD] = 0.0
    return z, std


def pearson(z_units: torch.Tensor, z_features: torch.Tensor) -> torch.Tensor:
    """(N, K) float64: r of every standardised unit (T, N) with every standardised feature (T, K)."""
    T = z_units.shape[0]
    return ((z_units.t() @ z_features).to(torch.float64) / T).clamp(-1, 1)


def correlations(values: torch.Tensor | np.ndarray, feature: np.ndarray) -> np.ndarray:
    """(N,) Pearson r of every column of values (T, N) with feature (T,), in float64; 0 for a
    constant column."""
    z, _ = standardised(torch.as_tensor(values).to(torch.float64))
    zf, _ = standardised(torch.as_tensor(np.asarray(feature, dtype=np.float64))[:, None])
    return pearson(z, zf)[:, 0].numpy()


def shift_offsets(characters: int, shifts: int, seed: int) -> list[int]:
    """`shifts` offsets for the chance level, each from a tenth of the text to nine tenths, drawn
    from `seed` (the same seed, the same offsets)."""
    rng = np.random.default_rng(seed)
    low = max(1, characters // 10)
    return [int(rng.integers(low, characters - low + 1)) for _ in range(shifts)]


#: Bytes of shifted copies of the features multiplied at once for a chance level: the shifts are
#: taken in groups that fit (the same figures as all at once).
SHIFT_BYTES = 32 << 20


def reach(z_units: torch.Tensor, z_features: torch.Tensor) -> torch.Tensor:
    """(K,) float64: the largest |r| any standardised unit (T, N) reaches with each standardised
    feature (T, K). Against features the units cannot know (shifted ones, or the units of an
    untrained model) it is a chance level."""
    return pearson(z_units, z_features).abs().amax(dim=0)


def shift_chance(z_units: torch.Tensor, z_features: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """(K,) float64: the largest |r| any unit (T, N) reaches with each of the K standardised
    features (T, K) rolled along the text by each of `offsets`; 0 without shifts. The rolled copies
    are made a group of shifts at a time, within SHIFT_BYTES (twice that while one is made)."""
    T, K = z_features.shape
    best = torch.zeros(K, dtype=torch.float64)
    group = max(1, SHIFT_BYTES // max(1, T * K * z_features.element_size()))
    for start in range(0, len(offsets), group):
        part = offsets[start : start + group]
        rolled = torch.cat([torch.roll(z_features, offset, dims=0) for offset in part], dim=1)   # (T, s·K)
        best = torch.maximum(best, reach(z_units, rolled).view(len(part), K).amax(dim=0))
    return best


def character_ids(text: str) -> tuple[torch.Tensor, int]:
    """(ids, count): each character of `text` as the index (T,) of its distinct character, and
    how many distinct characters there are."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    distinct, inverse = np.unique(codes, return_inverse=True)
    return torch.as_tensor(inverse.reshape(-1).astype(np.int64)), len(distinct)


def beyond_character(x: torch.Tensor, ids: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual, share) of x (T, N) given the character read at each step (ids (T,) of `count`
    distinct characters): x minus its mean over every step reading the same character, in x's
    dtype, and per column the share (N,) of its variance those per-character means explain (1 for
    a column that is a function of the current character, 0 for one that is the same on average
    whatever character is read; 0 for a constant column)."""
    x64 = x.to(torch.float64)
    sums = torch.zeros(count, x.shape[1], dtype=torch.float64).index_add_(0, ids, x64)
    seen = torch.bincount(ids, minlength=count).to(torch.float64).clamp(min=1)[:, None]
    residual = x64 - (sums / seen)[ids]
    total = x64.var(dim=0, unbiased=False)
    left = residual.var(dim=0, unbiased=False)
    share = torch.where(total > CONSTANT_STD**2, 1 - left / total.clamp(min=CONSTANT_STD**2), torch.zeros_like(total))
    return residual.to(x.dtype), share.clamp(0, 1)
