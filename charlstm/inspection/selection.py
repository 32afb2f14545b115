"""What a user picked to look at or to pin — layers, vectors, neurons — parsed and checked once.

Torch-free: it runs while the command line is parsed and in the trace alike. Two steps, so that
nothing is built before it is checked:

1. `parse_numbers` / `parse_vectors` read a spec ("42", "3,42,100", "0-15", "all"; "cell,hidden")
   into a `NumberSpec` / tuple of names. A spec that does not parse raises a `NeuronError` (the
   command line shows it as a usage error of its option).
2. `pick_layers`, `pick_vectors`, `pick_units` (all three at once: `pick`) check a spec against a
   model's `ModelConfig` and only then expand it; `check_layer`, `check_vector`, `check_unit` do the
   same for one value. Every error text is written here, once, naming the valid range.

Layers count from 1, units from 0, as on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import NeuronError

#: The spec that means every layer, vector or unit.
ALL = "all"


@dataclass(frozen=True)
class NumberSpec:
    """A parsed number list: inclusive (low, high) spans in the order given, or every number.
    Spans stay spans until checked, so `0-999999999` costs nothing before it is refused."""

    spans: tuple[tuple[int, int], ...] = ()
    every: bool = False


@dataclass(frozen=True)
class Selection:
    """Checked picks, in the order given, without repeats."""

    layers: tuple[int, ...]
    vectors: tuple[str, ...]
    units: tuple[int, ...]


# ------------------------------------------------------------------------------------------ parse


def parse_numbers(spec: str, what: str) -> NumberSpec:
    """'42', '3,42,100', '0-15', 'all' → a NumberSpec; `what` names the numbers in errors ("neurons").
    A reversed span such as '3-1' is empty."""
    if spec.strip().lower() == ALL:
        return NumberSpec(every=True)
    spans: list[tuple[int, int]] = []
    try:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            low, dash, high = part.partition("-")
            spans.append((int(low), int(high)) if dash and low else (int(part), int(part)))
    except ValueError:
        raise NeuronError(f"{spec!r}: give {what} like 42, 3,42,100, 0-15 or all") from None
    if not any(low <= high for low, high in spans):
        raise NeuronError(f"{spec!r}: no {what} given")
    return NumberSpec(tuple(spans))


def parse_vectors(spec: str) -> tuple[str, ...]:
    """'cell,hidden' → ('cell', 'hidden'); 'all' → ('all',), expanded by `pick_vectors`."""
    if spec.strip().lower() == ALL:
        return (ALL,)
    names = tuple(dict.fromkeys(v.strip() for v in spec.split(",") if v.strip()))
    if not names:
        raise NeuronError(f"{spec!r}: no vector given")
    return names


# ------------------------------------------------------------------------------------------ check


def check_layer(layer: int, num_layers: int) -> int:
    if not 1 <= layer <= num_layers:
        raise NeuronError(f"layer {layer} out of range: this model has layers 1 to {num_layers}")
    return layer


def check_vector(name: str, vectors: Sequence[str], where: str) -> str:
    """`where` says whose vectors they are: "for a lstm cell", "in this trace"."""
    if name not in vectors:
        raise NeuronError(f"vector {name!r} not recorded {where}; choose from {', '.join(vectors)}")
    return name


def check_unit(unit: int, layer: int, hidden_size: int) -> int:
    if not 0 <= unit < hidden_size:
        raise NeuronError(f"neuron {unit} out of range: layer {layer} has neurons 0 to {hidden_size - 1}")
    return unit


def check_neuron(config, layer: int, vector: str, unit: int) -> None:
    """Raise a NeuronError naming the valid range when (layer, vector, unit) is not in a model of
    `config` (a ModelConfig)."""
    check_layer(layer, config.num_layers)
    check_vector(vector, config.vectors, cell_owner(config.cell))
    check_unit(unit, layer, config.hidden_size)


def cell_owner(cell: str) -> str:
    return f"for a {cell} cell"


# ------------------------------------------------------------------------------------------- pick


def _expand(spec: NumberSpec, first: int, last: int, check) -> tuple[int, ...]:
    """The numbers of `spec` within first..last, checked span by span before any is listed (so the
    work is bounded by the model, never by the numbers typed): `check(n)` raises for the end of the
    first span that leaves the range, as the user typed it."""
    if spec.every:
        return tuple(range(first, last + 1))
    for low, high in spec.spans:
        if low > high:
            continue
        if not first <= low <= last:
            check(low)
        if high > last:
            check(high)
    return tuple(dict.fromkeys(n for low, high in spec.spans for n in range(low, high + 1)))


def pick_layers(spec: NumberSpec | Sequence[int], num_layers: int) -> tuple[int, ...]:
    if not isinstance(spec, NumberSpec):
        spec = NumberSpec(tuple((n, n) for n in spec))
    return _expand(spec, 1, num_layers, lambda n: check_layer(n, num_layers))


def pick_vectors(names: Sequence[str], vectors: Sequence[str], where: str) -> tuple[str, ...]:
    if tuple(names) == (ALL,):
        return tuple(vectors)
    return tuple(check_vector(name, vectors, where) for name in dict.fromkeys(names))


def pick_units(spec: NumberSpec | Sequence[int], layer: int, hidden_size: int) -> tuple[int, ...]:
    """Units of `spec`; `layer` is the one errors name (every layer has hidden_size units)."""
    if not isinstance(spec, NumberSpec):
        spec = NumberSpec(tuple((n, n) for n in spec))
    return _expand(spec, 0, hidden_size - 1, lambda n: check_unit(n, layer, hidden_size))


def pick(config, layers: NumberSpec | Sequence[int], vectors: Sequence[str],
         units: NumberSpec | Sequence[int]) -> Selection:
    """Check every pick against a model of `config` (a ModelConfig): vectors, then layers, then units."""
    vector_list = pick_vectors(vectors, config.vectors, cell_owner(config.cell))
    layer_list = pick_layers(layers, config.num_layers)
    return Selection(layer_list, vector_list, pick_units(units, layer_list[0] if layer_list else 1, config.hidden_size))
