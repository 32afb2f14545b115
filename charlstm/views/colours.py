"""Colours of values: red negative, blue positive, gates white to green; the one scale function."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.color import Color
from rich.style import Style

from ..config import GATE_VECTORS

WHITE = (255, 255, 255)


RED = (214, 39, 40)


BLUE = (31, 119, 180)


GREEN = (44, 160, 44)


ORANGE = (255, 127, 14)


GREY = (128, 128, 128)


#: Vectors bounded by tanh in −1..1, drawn on that fixed scale; the cell state is unbounded and is
#: scaled by its largest |value| in the text shown.
TANH_VECTORS = frozenset({"hidden", "candidate"})


RGB = tuple[int, int, int]


def _blend(a: RGB, b: RGB, weight: float) -> RGB:
    weight = min(max(weight, 0.0), 1.0)
    return tuple(round(x + (y - x) * weight) for x, y in zip(a, b))  # type: ignore[return-value]


def value_rgb(value: float, gate: bool, scale: float = 1.0) -> RGB:
    """Background colour of one value: gates 0..1 on white→green; signed values white→red / →blue,
    full colour at |value| = scale."""
    if value != value:  # NaN
        return GREY
    if gate:
        return _blend(WHITE, GREEN, value / scale if scale > 0 else value)
    weight = abs(value) / scale if scale > 0 else 0.0
    return _blend(WHITE, RED if value < 0 else BLUE, weight)


def is_gate(vector: str) -> bool:
    """Whether a vector's values are gates in 0..1 (white→green), not signed values (red / blue)."""
    return vector in GATE_VECTORS


def full_scale(values, bounded: bool = False):
    """The |value| drawn at full colour — the one scale of every picture, terminal and page: 1 for
    bounded values (gates, tanh), else the largest |value|, NaN left out (1 when there is none or it
    is 0). values (T,) → a float; (T, H) → (H,) array, one scale per unit."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    if bounded:
        return 1.0 if magnitude.ndim < 2 else np.ones(magnitude.shape[1:])
    top = np.where(np.isnan(magnitude), 0.0, magnitude).max(axis=0, initial=0.0)
    top = np.where(top > 0, top, 1.0)
    return float(top) if top.ndim == 0 else top


def fixed_scale(vector: str) -> bool:
    """Whether a vector is drawn on a fixed scale (gates, tanh-bounded vectors), not on one its values choose."""
    return vector in GATE_VECTORS or vector in TANH_VECTORS


def vector_scale(vector: str, values):
    """full_scale for the values of a vector: gates and tanh-bounded vectors on their fixed scale,
    the unbounded cell state scaled by its largest |value|."""
    return full_scale(values, bounded=fixed_scale(vector))


def colouring(vector: str, values: Sequence[float]) -> tuple[bool, float]:
    """(gate, scale) to draw the values of `vector` with."""
    return is_gate(vector), vector_scale(vector, values)


def _style(rgb: RGB, **extra) -> Style:
    """Black text on light backgrounds, white on dark ones, so every character stays legible."""
    light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150
    ink = (0, 0, 0) if light else (255, 255, 255)
    return Style(color=Color.from_rgb(*ink), bgcolor=Color.from_rgb(*rgb), **extra)
