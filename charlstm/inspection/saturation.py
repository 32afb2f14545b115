"""Saturation: how often a unit sits at a bound of its range.

* `saturation`: per traced layer and gate, how often each unit's gate is nearly shut
  (< SATURATION_LOW) or wide open (> SATURATION_HIGH), as in Karpathy, Johnson & Fei-Fei (2015),
  "Visualizing and Understanding Recurrent Networks" (`charlstm inspect --stats`).
* `saturation_share`: per unit of any vector, the share of characters at its bound (the atlas's
  "saturated" verdict).

Owns the bounds: the command line's help text reads them from here, so importing this module
loads neither torch nor numpy. Takes traces and tensors; runs no model, renders nothing.

Shape legend: T time, H hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import GATE_VECTORS
from ..errors import NeuronError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .tracing import Trace

#: A gate (0..1) below this is nearly shut, above the other wide open (Karpathy et al. 2015);
#: a tanh-bounded value (−1..1) is at its bound beyond ±SATURATION_HIGH.
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9
#: The cell state acts through tanh(c): |c| beyond this is |tanh c| beyond SATURATION_HIGH.
CELL_BOUND = math.atanh(SATURATION_HIGH)


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


def measure_saturation(model, vocab, text: str, layers, low: float = SATURATION_LOW,
                       high: float = SATURATION_HIGH) -> list[GateSaturation]:
    """`saturation` of the trace of `text` through `layers` (from 1) of `model`, counted a chunk at
    a time: nothing of the trace is kept (inspection.tracing.trace_chunks)."""
    from .tracing import trace_chunks

    gates = [v for v in model.config.vectors if v in GATE_VECTORS]
    if not gates:
        raise NeuronError(f"a {model.config.cell} cell has no gates to measure; --stats needs an LSTM or a GRU")
    if len(text) == 0:
        raise NeuronError("the text is empty")
    layers = sorted(set(layers))
    counts: dict[tuple[int, str], list] = {}
    for piece in trace_chunks(model, vocab, text, gates, layers, what="measure saturation over"):
        for layer in layers:
            for gate, values in piece.layers[layer - 1].items():
                left, right = counts.setdefault((layer, gate), [0, 0])
                counts[(layer, gate)] = [left + (values < low).sum(0).double(), right + (values > high).sum(0).double()]
    return [GateSaturation(layer, gate, (left / len(text)).numpy(), (right / len(text)).numpy())
            for (layer, gate), (left, right) in counts.items()]


def saturation_share(vector: str, values: torch.Tensor) -> torch.Tensor:
    """(T, H) → (H,): the share of characters where each unit is at its bound: a gate below
    SATURATION_LOW or above SATURATION_HIGH, a cell state beyond ±CELL_BOUND, a tanh-bounded value
    (hidden, candidate) beyond ±SATURATION_HIGH."""
    if vector in GATE_VECTORS:
        at_bound = (values < SATURATION_LOW) | (values > SATURATION_HIGH)
    elif vector == "cell":
        at_bound = values.abs() > CELL_BOUND
    else:
        at_bound = values.abs() > SATURATION_HIGH
    return at_bound.float().mean(dim=0)
