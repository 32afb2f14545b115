"""Click parameter parsing shared by the commands: durations, escapes, number lists, unit edits.

Torch-free: these run while the command line is parsed.
"""

from __future__ import annotations

import re

import click


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


def parse_numbers(spec: str, every: range, option: str, what: str) -> list[int]:
    """'42', '3,42,100', '0-15', 'all' (= every) → numbers. Range checks are the caller's, with
    check_neuron, whose errors name the valid range."""
    if spec.strip().lower() == "all":
        return list(every)
    numbers: list[int] = []
    try:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            low, dash, high = part.partition("-")
            numbers += list(range(int(low), int(high) + 1)) if dash and low else [int(part)]
    except ValueError:
        raise click.BadParameter(f"{spec!r}: give {what} like 42, 3,42,100, 0-15 or all", param_hint=option) from None
    if not numbers:
        raise click.BadParameter(f"{spec!r}: no {what} given", param_hint=option)
    return list(dict.fromkeys(numbers))


def edit_vector(config) -> str:
    """What --clamp and --ablate pin: the cell state of an LSTM-like cell, else the hidden state."""
    return "cell" if config.has_cell_state else "hidden"


def parse_edits(clamps: tuple[str, ...], ablations: tuple[str, ...], config) -> dict[tuple[int, int], float]:
    """`--clamp 1:42=0.9` and `--ablate 2:7` as Stepper edits: 0-based (layer, unit) → value."""
    from ..trace import check_neuron

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
            check_neuron(config.num_layers, config.hidden_size, config.vectors, layer, edit_vector(config), unit)
            if (layer - 1, unit) in edits:
                raise click.BadParameter(f"unit {layer}:{unit} is pinned twice; give it once", param_hint=option)
            edits[(layer - 1, unit)] = value
    return edits
