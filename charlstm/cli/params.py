"""Click parameter parsing shared by the commands: durations, escapes, layer / vector / neuron
lists (parsed by `charlstm.selection`), unit edits.

Torch-free: these run while the command line is parsed.
"""

from __future__ import annotations

import re

import click

from .. import selection
from ..errors import NeuronError


def parse_duration(value: str | None) -> float | None:
    """'90' or '90s' → 90; '5m' → 300; '1h30m' → 5400."""
    if value is None:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", text).strip():
        raise click.BadParameter(f"{value!r} is not a duration like 90s, 5m or 1h30m", param_hint="--time")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)


def unescape(text: str) -> str:
    """Let `--stop '\\n'` mean a line break, as users type it in a shell."""
    return re.sub(r"\\([nrt\\])", lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m.group(1)], text)


def unescape_all(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A Click callback: `unescape` every value of a repeatable option."""
    return tuple(unescape(v) for v in value)


def number_list(what: str):
    """A Click callback: the option's '42', '3,42,100', '0-15' or 'all' as a selection.NumberSpec
    (None when not given), a bad spec shown as a usage error of the option."""
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        return None if value is None else _as_usage_error(param, selection.parse_numbers, value, what)

    return parse


def vector_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """A Click callback: 'cell,hidden' or 'all' as names (None when not given), checked later
    against the model by selection.pick_vectors."""
    return None if value is None else _as_usage_error(param, selection.parse_vectors, value)


def _as_usage_error(param: click.Parameter, parse, *args):
    try:
        return parse(*args)
    except NeuronError as error:
        raise click.BadParameter(str(error), param_hint=param.opts[0]) from None


def edit_vector(config) -> str:
    """What --clamp and --ablate pin: the cell state of an LSTM-like cell, else the hidden state."""
    return "cell" if config.has_cell_state else "hidden"


def parse_edits(clamps: tuple[str, ...], ablations: tuple[str, ...], config) -> dict[tuple[int, int], float]:
    """`--clamp 1:42=0.9` and `--ablate 2:7` as Stepper edits: 0-based (layer, unit) → value."""
    edits: dict[tuple[int, int], float] = {}
    for option, specs in (("--clamp", clamps), ("--ablate", ablations)):
        for spec in specs:
            pattern = r"\s*(\d+)\s*:\s*(\d+)\s*=\s*(\S+)\s*" if option == "--clamp" else r"\s*(\d+)\s*:\s*(\d+)\s*"
            match = re.fullmatch(pattern, spec)
            usage = "LAYER:NEURON=VALUE, e.g. 1:42=0.9" if option == "--clamp" else "LAYER:NEURON, e.g. 2:7"
            if not match:
                raise click.BadParameter(f"{spec!r}: give {usage}", param_hint=option)
            layer, unit = int(match.group(1)), int(match.group(2))
            try:
                value = float(match.group(3)) if option == "--clamp" else 0.0
            except ValueError:
                raise click.BadParameter(f"{spec!r}: {match.group(3)!r} is not a number", param_hint=option) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise click.BadParameter(f"{spec!r}: the value must be a finite number", param_hint=option)
            selection.check_neuron(config, layer, edit_vector(config), unit)
            if (layer - 1, unit) in edits:
                raise click.BadParameter(f"unit {layer}:{unit} is pinned twice; give it once", param_hint=option)
            edits[(layer - 1, unit)] = value
    return edits
