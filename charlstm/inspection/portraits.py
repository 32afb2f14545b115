"""A unit's portrait for the page: the histogram of its values over the analysed text, and one example
from each quantile of them (not only where it peaks).

Takes a trace (tracing.py) and the units to portray; runs no model, renders nothing.

Shape legend: T time, N units portrayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .analysis import Window
from .tracing import Trace

#: Bins of a unit's histogram.
BINS = 16
#: The quantiles an example is taken at.
QUANTILES = (0.02, 0.25, 0.5, 0.75, 0.98)
#: Characters of text around each example.
EXAMPLE_WIDTH = 40


@dataclass(frozen=True)
class Portrait:
    """One unit: its histogram (counts per bin between lo and hi) and an example per quantile."""

    lo: float
    hi: float
    counts: tuple[int, ...]         # BINS counts
    examples: tuple[Window, ...]    # one per QUANTILES: a character where the unit takes that quantile's value


def portraits(trace: Trace, keys: Sequence[tuple[int, str, int]], width: int = EXAMPLE_WIDTH) -> list[Portrait]:
    """The portrait of each unit of `keys` ((layer, vector, unit), layers from 1) on the trace's text.
    An example is the character whose value is nearest the quantile's, the one furthest from the
    examples already taken among ties, so that examples of a unit that often sits at one value differ."""
    T = len(trace.text)
    out = []
    for layer, vector, unit in keys:
        x = trace.values(layer, vector, unit).numpy().astype(np.float64)             # (T,)
        lo, hi = float(x.min()), float(x.max())
        counts, _ = np.histogram(x, bins=BINS, range=(lo, hi if hi > lo else lo + 1))
        order = np.argsort(x, kind="stable")
        taken: list[int] = []
        for q in QUANTILES:
            rank = int(round(q * (T - 1)))
            value = x[order[rank]]
            tied = order[np.searchsorted(x[order], value, "left") : np.searchsorted(x[order], value, "right")]
            pick = int(tied[np.argmax([min((abs(int(t) - p) for p in taken), default=T) for t in tied[:256]])])
            taken.append(pick)
        out.append(Portrait(lo, hi, tuple(int(c) for c in counts),
                            tuple(Window.around(p, float(x[p]), width, T) for p in taken)))
    return out
