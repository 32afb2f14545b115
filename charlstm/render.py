"""Pictures and dumps of traces: rich renderables for the terminal, TSV / JSON text.

Colour convention of the seeds' figures: red negative, blue positive for signed vectors (cell,
hidden, candidate), one hue from white to green for gates in 0..1. Corpus text is only ever
appended as plain text to `rich.text.Text`, never parsed as markup ("[Exit]" is Shakespeare, not
a tag). Computes nothing about the model.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from rich.color import Color
from rich.console import Group
from rich.style import Style
from rich.text import Text

#: How invisible characters are shown in a strip (the character itself still ends the line).
VISIBLE = {"\n": "↵", "\t": "→", "\r": "␍", " ": " "}

WHITE = (255, 255, 255)
RED = (214, 39, 40)
BLUE = (31, 119, 180)
GREEN = (44, 160, 44)


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], weight: float) -> tuple[int, int, int]:
    weight = min(max(weight, 0.0), 1.0)
    return tuple(round(x + (y - x) * weight) for x, y in zip(a, b))  # type: ignore[return-value]


def value_rgb(value: float, gate: bool, scale: float = 1.0) -> tuple[int, int, int]:
    """Background colour of one value: gates 0..1 on white→green; signed values white→red / →blue."""
    if value != value:  # NaN
        return (128, 128, 128)
    if gate:
        return _blend(WHITE, GREEN, value)
    weight = abs(value) / scale if scale > 0 else 0.0
    return _blend(WHITE, RED if value < 0 else BLUE, weight)


def visible(char: str) -> str:
    if char in VISIBLE:
        return VISIBLE[char]
    if ord(char) < 32 or 0x7F <= ord(char) < 0xA0:
        return "·"
    return char


def strip(text: str, values: Sequence[float], gate: bool, scale: float | None = None) -> Text:
    """The text with each character's background coloured by its value. Line breaks are kept
    (shown as ↵ before the break) so code and verse keep their shape."""
    if len(values) != len(text):
        raise ValueError(f"{len(text)} characters but {len(values)} values")
    if scale is None:
        scale = max((abs(v) for v in values if v == v), default=1.0) or 1.0
    out = Text(no_wrap=False)
    for char, value in zip(text, values):
        r, g, b = value_rgb(float(value), gate, scale)
        style = Style(color=Color.from_rgb(0, 0, 0), bgcolor=Color.from_rgb(r, g, b))
        out.append(visible(char), style=style)
        if char == "\n":
            out.append("\n")
    return out


def legend(gate: bool, scale: float) -> Text:
    out = Text("legend: ", style="dim")
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if gate else [-scale, -scale / 2, 0.0, scale / 2, scale]
    for tick in ticks:
        r, g, b = value_rgb(tick, gate, scale)
        out.append(f" {tick:+.2f} " if not gate else f" {tick:.2f} ", style=Style(color="black", bgcolor=Color.from_rgb(r, g, b)))
        out.append(" ")
    return out


def summary(values: Sequence[float]) -> Text:
    vals = [float(v) for v in values]
    if not vals:
        return Text("no characters", style="dim")
    return Text(f"min {min(vals):+.3f}   max {max(vals):+.3f}   mean {sum(vals) / len(vals):+.3f}   "
                f"({len(vals)} characters)", style="dim")


def neuron_view(title: str, text: str, values: Sequence[float], gate: bool) -> Group:
    """Title, coloured strip, legend and min/max/mean of one neuron's trace."""
    scale = 1.0 if gate else (max((abs(float(v)) for v in values), default=1.0) or 1.0)
    return Group(Text(title, style="bold"), strip(text, values, gate, scale), Text(""), legend(gate, scale), summary(values))


def tsv_lines(text: str, columns: dict[str, Sequence[float]]) -> Iterable[str]:
    """position, char, then one column per named trace. Characters are escaped so a line is a line."""
    yield "\t".join(["position", "char", *columns])
    for pos, char in enumerate(text):
        cells = [f"{float(col[pos]):.6g}" for col in columns.values()]
        yield "\t".join([str(pos), escape_char(char), *cells])


def escape_char(char: str) -> str:
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}.get(char, char)


def unescape_char(field: str) -> str:
    return {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}.get(field, field)


def json_dump(text: str, columns: dict[str, Sequence[float]], meta: dict | None = None) -> str:
    return json.dumps({**(meta or {}), "text": text, "chars": list(text),
                       "traces": {name: [round(float(v), 6) for v in col] for name, col in columns.items()}},
                      ensure_ascii=False)
