"""Pictures and dumps for the terminal: rich renderables of traces, rankings and scores; TSV / JSON text.

Colour convention of the seeds' figures: red negative, blue positive for signed vectors (cell,
hidden, candidate), one hue from white to green for gates in 0..1, white to orange for surprisal.
Corpus text (and anything a user typed: feature names, regexes, paths) is only ever added as
plain text to `rich.text.Text`, never parsed as markup ("[Exit]" is Shakespeare, not a tag).

Takes facts, not flags: given the values of a vector, it decides gate-or-signed and the scale
itself (`vector_scale`, built on `full_scale`, the one scale function, which page.py uses too).
Every result of `inspect` and `score` is an `Output` (TSV records, a JSON document, a picture),
made by a *_output function and emitted by `write` in the chosen format. The drawing functions
below them (strip, legend, stacked_view, find_view, windows_view) take (gate, scale) as given.
Computes nothing about the model: it draws values it is given. The HTML page is page.py.
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from rich.cells import cell_len
from rich.color import Color
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .config import GATE_VECTORS

#: How invisible characters are shown in a strip (a line break still ends the line after its ↵).
VISIBLE = {"\n": "↵", "\t": "→", "\r": "␍", " ": " "}

WHITE = (255, 255, 255)
RED = (214, 39, 40)
BLUE = (31, 119, 180)
GREEN = (44, 160, 44)
ORANGE = (255, 127, 14)
GREY = (128, 128, 128)

#: Longest text `charlstm score` draws as a surprisal strip; beyond it only the numbers.
SCORE_STRIP_CHARS = 20_000

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


def vector_scale(vector: str, values):
    """full_scale for the values of a vector: gates and tanh-bounded vectors on their fixed scale,
    the unbounded cell state scaled by its largest |value|."""
    return full_scale(values, bounded=vector in GATE_VECTORS or vector in TANH_VECTORS)


def colouring(vector: str, values: Sequence[float]) -> tuple[bool, float]:
    """(gate, scale) to draw the values of `vector` with."""
    return is_gate(vector), vector_scale(vector, values)


def visible(char: str) -> str:
    if char in VISIBLE:
        return VISIBLE[char]
    if ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029":
        return "·"
    return char


def _style(rgb: RGB, **extra) -> Style:
    """Black text on light backgrounds, white on dark ones, so every character stays legible."""
    light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150
    ink = (0, 0, 0) if light else (255, 255, 255)
    return Style(color=Color.from_rgb(*ink), bgcolor=Color.from_rgb(*rgb), **extra)


def strip(text: str, values: Sequence[float], gate: bool, scale: float | None = None, keep_lines: bool = True,
          mark: int | None = None) -> Text:
    """The text with each character's background coloured by its value. With keep_lines a line
    break is shown as ↵ and then breaks the line, so code and verse keep their shape; without, the
    strip stays on one line. `mark` underlines one character (a peak)."""
    if len(values) != len(text):
        raise ValueError(f"{len(text)} characters but {len(values)} values")
    if scale is None:
        scale = full_scale(values, bounded=gate)
    out = Text(no_wrap=not keep_lines)
    for pos, (char, value) in enumerate(zip(text, values)):
        extra = {"underline": True, "bold": True} if pos == mark else {}
        out.append(visible(char), style=_style(value_rgb(float(value), gate, scale), **extra))
        if char == "\n" and keep_lines:
            out.append("\n")
    return out


def legend(gate: bool, scale: float, label: str = "") -> Text:
    """Colour swatches at five values, and what full colour means."""
    out = Text()
    out.append(f"{label + ': ' if label else 'legend: '}", style="dim")
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if gate else [-scale, -scale / 2, 0.0, scale / 2, scale]
    for tick in ticks:
        out.append(f" {tick:.2f} " if gate else f" {tick:+.2f} ", style=_style(value_rgb(tick, gate, scale)))
        out.append(" ")
    out.append("gate, 0 to 1" if gate else ("tanh, −1 to 1" if scale == 1.0 else f"scaled to max |value| {scale:.3g}"),
               style="dim")
    return out


def summary(values: Sequence[float], text: str | None = None, count: bool = True) -> Text:
    """min (where) · max (where) · mean · std · count."""
    vals = [float(v) for v in values]
    if not vals:
        return Text("no characters", style="dim")
    lo = min(range(len(vals)), key=vals.__getitem__)
    hi = max(range(len(vals)), key=vals.__getitem__)
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))

    def where(pos: int) -> str:
        return f" at {pos}" + (f" {visible(text[pos])!r}" if text is not None else "")

    return Text(f"min {vals[lo]:+.3f}{where(lo)}   max {vals[hi]:+.3f}{where(hi)}   mean {mean:+.3f}   "
                f"std {std:.3f}" + (f"   ({len(vals)} characters)" if count else ""), style="dim")


def neuron_view(title: str, text: str, values: Sequence[float], vector: str | None = None, *,
                gate: bool = False) -> Group:
    """Title, coloured strip, legend and min/max/mean of one neuron's trace: the values of `vector`,
    drawn on its scale; values of no named vector are drawn as gates (0..1) with `gate`, else signed."""
    gate, scale = colouring(vector, values) if vector is not None else (gate, full_scale(values, bounded=gate))
    return Group(Text(title, style="bold"), strip(text, values, gate, scale), Text(""), legend(gate, scale),
                 summary(values, text))


def _segments(text: str, width: int) -> list[tuple[int, int]]:
    """[start, end) pieces of the text: one per line (its line break included), lines wider than
    `width` terminal cells cut into several."""
    pieces, start, used = [], 0, 0
    for pos, char in enumerate(text):
        w = cell_len(visible(char))
        if used + w > width and pos > start:
            pieces.append((start, pos))
            start, used = pos, 0
        used += w
        if char == "\n":
            pieces.append((start, pos + 1))
            start, used = pos + 1, 0
    if start < len(text):
        pieces.append((start, len(text)))
    return pieces


def stacked_view(title: str, text: str, rows: Mapping[str, tuple[Sequence[float], bool, float]], width: int = 100) -> Group:
    """Several strips of the same text stacked line by line, so a character's row values line up
    (the seeds' six strips of one neuron). rows: label → (values, gate, scale)."""
    label_width = max(map(len, rows), default=0) + 1
    parts: list[RenderableType] = [Text(title, style="bold")]
    for start, end in _segments(text, max(10, width - label_width - 2)):
        for label, (values, gate, scale) in rows.items():
            line = Text(no_wrap=True)
            line.append(label.ljust(label_width), style="dim")
            line.append("│", style="dim")
            line.append_text(strip(text[start:end], values[start:end], gate, scale, keep_lines=False))
            parts.append(line)
        parts.append(Text(""))
    for label, (values, gate, scale) in rows.items():
        line = Text()
        line.append(label.ljust(label_width), style="dim")
        line.append_text(summary(values, text, count=False))
        parts.append(line)
    shown = {(gate, scale): label for label, (_, gate, scale) in rows.items()}
    for (gate, scale), label in shown.items():
        parts.append(legend(gate, scale, "gates" if gate else label if scale != 1.0 else "tanh"))
    return Group(*parts)


# ------------------------------------------------------------------------------------ find, top


def find_view(title: str, text: str, window: tuple[int, int], feature: Sequence[float],
              rows: Sequence[tuple[int, int, float, Sequence[float], bool, float]], caption: str) -> Table:
    """The ranked units as a table: rank, layer, unit, r, and each unit's strip over `window`, under
    a first row that shows the feature itself. rows: (layer, unit, r, values over the whole text, gate, scale)."""
    start, end = window
    table = Table(title=Text(title, style="bold"), caption=Text(caption, style="dim"), title_justify="left",
                  caption_justify="left", show_lines=False, pad_edge=False)
    # The number columns keep their full width (min_width: "feature" sits in the r column); only the
    # strip column may give way to a narrow terminal or a pipe, and it is cropped, never wrapped.
    for name, justify, min_width in (("#", "right", len(str(len(rows)))), ("layer", "right", 5), ("unit", "right", 4),
                                     ("r", "right", 7), (f"characters {start}–{end - 1}", "left", None)):
        table.add_column(name, justify=justify, no_wrap=min_width is not None, min_width=min_width,
                         overflow="crop" if min_width is None else "fold")
    top = full_scale(feature[start:end])
    table.add_row("", "", "", Text("feature", style="dim"),
                  strip(text[start:end], [float(v) / top for v in feature[start:end]], gate=True, keep_lines=False))
    for rank, (layer, unit, r, values, gate, scale) in enumerate(rows, 1):
        table.add_row(str(rank), str(layer), str(unit), f"{r:+.3f}",
                      strip(text[start:end], values[start:end], gate, scale, keep_lines=False))
    return table


def windows_view(title: str, text: str, values: Sequence[float], gate: bool, scale: float,
                 positive: Sequence, negative: Sequence) -> Group:
    """Two tables: the windows where the unit is highest and lowest, each with its peak underlined."""
    parts: list[RenderableType] = [Text(title, style="bold")]
    for heading, windows in (("highest values (most positive)", positive), ("lowest values (most negative)", negative)):
        table = Table(title=Text(heading), title_justify="left", pad_edge=False, box=None)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("at", justify="right", no_wrap=True)
        table.add_column("text (peak underlined)", no_wrap=True)
        for w in windows:
            table.add_row(f"{w.value:+.3f}", str(w.peak),
                          strip(text[w.start : w.end], values[w.start : w.end], gate, scale, keep_lines=False,
                                mark=w.peak - w.start))
        parts += [Text(""), table]
    parts += [Text(""), legend(gate, scale)]
    return Group(*parts)


def windows_rows(positive: Sequence, negative: Sequence, text: str) -> list[dict]:
    """The windows as plain records for TSV / JSON."""
    return [{"kind": kind, "rank": rank, "value": round(w.value, 6), "peak": w.peak, "start": w.start, "end": w.end,
             "text": text[w.start : w.end]}
            for kind, windows in (("positive", positive), ("negative", negative)) for rank, w in enumerate(windows, 1)]


# -------------------------------------------------------------------------------------- stats


def stats_table(title: str, saturations: Sequence, low: float, high: float) -> Table:
    """Per layer and gate: mean fraction of time left-saturated (< low) and right-saturated (> high),
    and how many units spend most of the time there."""
    table = Table(title=Text(title, style="bold"), title_justify="left", caption_justify="left",
                  caption=Text(f"left: share of characters where the gate is < {low:g} (nearly shut); right: > {high:g} "
                               "(wide open); averaged over units. mostly left / right: units saturated on that side "
                               "more than half the time.", style="dim"))
    for name in ("layer", "gate", "left", "right", "mostly left", "mostly right"):
        table.add_column(name, justify="left" if name == "gate" else "right", no_wrap=True)
    for s in saturations:
        units = len(s.left)
        table.add_row(str(s.layer), s.gate, f"{float(s.left.mean()):.1%}", f"{float(s.right.mean()):.1%}",
                      f"{int((s.left > 0.5).sum())}/{units}", f"{int((s.right > 0.5).sum())}/{units}")
    return table


def stats_records(saturations: Sequence) -> list[dict]:
    return [{"layer": s.layer, "gate": s.gate, "left_mean": round(float(s.left.mean()), 6),
             "right_mean": round(float(s.right.mean()), 6), "left": [round(float(v), 6) for v in s.left],
             "right": [round(float(v), 6) for v in s.right]} for s in saturations]


# -------------------------------------------------------------------------------------- score


def score_view(title: str, text: str, bits: Sequence[float], predicted: Sequence[str], uniform_bits: float,
               show_strip: bool = True, worst: int = 10) -> Group:
    """Surprisal strip (white → orange, full at the bits of a uniform guess), bits per character,
    and the most surprising characters with what the model expected instead."""
    bpc = sum(bits) / len(bits) if len(bits) else float("nan")
    parts: list[RenderableType] = [Text(title, style="bold")]
    if show_strip:
        parts += [_surprisal_strip(text, bits, uniform_bits), Text(""), _surprisal_legend(uniform_bits)]
    else:
        parts.append(Text(f"({len(text)} characters: strip left out; --format tsv lists every character)", style="dim"))
    parts.append(Text(f"{bpc:.3f} bits per character over {len(bits)} predicted characters "
                      f"(the first character is context only)"))
    order = sorted(range(len(bits)), key=lambda t: -bits[t])[:worst]
    if order:
        parts += [Text(""), _surprises_table(text, bits, predicted, order)]
    return Group(*parts)


def _prediction_strip(text: str, colours: Iterable[RGB]) -> Text:
    """The text with each predicted character (text[1:]) on its colour, the first (context only)
    dimmed, and line breaks kept as breaks after their visible mark."""
    out = Text()
    out.append(visible(text[0]), style=_style(WHITE, dim=True))
    if text[0] == "\n":
        out.append("\n")
    for char, rgb in zip(text[1:], colours):
        out.append(visible(char), style=_style(rgb))
        if char == "\n":
            out.append("\n")
    return out


def _surprisal_strip(text: str, bits: Sequence[float], uniform_bits: float) -> Text:
    """The text coloured by the surprisal of each character; the first, never predicted, dimmed."""
    return _prediction_strip(text, (_blend(WHITE, ORANGE, b / uniform_bits) for b in bits))


def _surprisal_legend(uniform_bits: float) -> Text:
    key = Text()
    key.append("legend: ", style="dim")
    for tick in (0.0, uniform_bits / 4, uniform_bits / 2, uniform_bits * 3 / 4, uniform_bits):
        key.append(f" {tick:.1f} ", style=_style(_blend(WHITE, ORANGE, tick / uniform_bits)))
        key.append(" ")
    key.append(f"bits of surprisal; full colour = a blind guess among the vocabulary ({uniform_bits:.2f} bits)",
               style="dim")
    return key


def _surprises_table(text: str, bits: Sequence[float], predicted: Sequence[str], order: Sequence[int]) -> Table:
    """The characters at `order` (indices into bits), with what was expected and what led up to them."""
    table = Table(title=Text("most surprising"), title_justify="left", box=None, pad_edge=False)
    for name, justify in (("at", "right"), ("bits", "right"), ("char", "left"), ("expected", "left"),
                          ("context", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    for t in order:
        pos = t + 1
        context = Text(visible_text(text[max(0, pos - 30) : pos]), style="dim")
        context.append(visible_text(text[pos]), style=Style(bold=True, underline=True))
        table.add_row(str(pos), f"{bits[t]:.2f}", Text(repr(text[pos])), Text(repr(predicted[t])), context)
    return table


def visible_text(text: str) -> str:
    return "".join(visible(c) for c in text)


# ---------------------------------------------------------------------------------- TSV, JSON


def tsv_lines(text: str, columns: dict[str, Sequence[float]]) -> Iterable[str]:
    """position, char, then one column per named trace. Characters are escaped so a line is a line."""
    return records_tsv(_column_records(text, columns), ["position", "char", *columns])


def _column_records(text: str, columns: Mapping[str, Sequence[float]]) -> Iterable[dict]:
    for pos, char in enumerate(text):
        yield {"position": pos, "char": char, **{name: float(col[pos]) for name, col in columns.items()}}


def records_tsv(records: Iterable[Mapping], fields: Sequence[str]) -> Iterable[str]:
    """A header and one line per record; text fields escaped like characters, floats to 6 digits."""
    yield "\t".join(fields)
    for record in records:
        cells = []
        for name in fields:
            value = record[name]
            cells.append(escape_text(value) if isinstance(value, str) else
                         f"{value:.6g}" if isinstance(value, float) else str(value))
        yield "\t".join(cells)


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_UNESCAPE = re.compile(r"\\(n|t|r|\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")
#: Control characters, line and paragraph separators, lone surrogates: what could split a line.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def escape_char(char: str) -> str:
    """A character as one TSV field: \\n, \\t, \\r, \\\\, and \\xHH / \\uHHHH / \\UHHHHHHHH for other
    control characters and line separators, so a record is one line for every reader (Python's
    splitlines breaks at \\x0b, \\x85, \\u2028 …). Everything else, CJK and emoji included, is as is."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_text(text: str) -> str:
    return "".join(escape_char(c) for c in text)


def unescape_text(field: str) -> str:
    """Inverse of escape_text."""
    def one(match: re.Match) -> str:
        code = match.group(1)
        return {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _UNESCAPE.sub(one, field)


# --------------------------------------------------------------------------- one output, every format


@dataclass(frozen=True)
class Output:
    """One result ready for every --format: TSV records under `fields`, a JSON document, and a
    picture for the terminal (built only when drawn, for the console's width). Made by the
    *_output functions below from facts; written by `write`."""

    fields: Sequence[str]
    records: Iterable[Mapping]
    document: Mapping
    picture: Callable[[int], RenderableType]
    ascii_json: bool = False      # --stats has always written its JSON ASCII-only


def write(fmt: str, output: Output, stream=None) -> None:
    """Emit `output` on `stream` (default: stdout) as "tsv", "json" or "text" (the rich picture)."""
    stream = sys.stdout if stream is None else stream
    if fmt == "tsv":
        stream.writelines(line + "\n" for line in records_tsv(output.records, output.fields))
    elif fmt == "json":
        stream.write(json.dumps(output.document, ensure_ascii=output.ascii_json) + "\n")
    else:
        from rich.console import Console

        console = Console(file=stream, highlight=False, soft_wrap=False)
        console.print(output.picture(console.width))


def _floats(values) -> list[float]:
    """A (T,) sequence, list or tensor, as Python floats."""
    return np.asarray(values, dtype=np.float64).tolist()


def vectors_view(title: str, text: str, traces: Mapping[str, Sequence[float]], width: int = 100) -> Group:
    """The traces of several vectors of one neuron stacked line by line, each on its vector's scale."""
    return stacked_view(title, text, {vector: (values, *colouring(vector, values)) for vector, values in traces.items()},
                        width)


def trace_output(source: str, trace, picked) -> Output:
    """The traces of every picked (layer, vector, unit) of `trace` (a trace.Trace); `picked` has
    .layers, .vectors and .units (a selection.Selection). TSV and JSON hold one column per unit."""
    text = trace.text
    columns = {f"L{layer}.{vector}[{unit}]": _floats(trace.values(layer, vector, unit))
               for layer in picked.layers for unit in picked.units for vector in picked.vectors}
    document = {"checkpoint": source, "cell": trace.cell, "layers": list(picked.layers),
                "vectors": list(picked.vectors), "neurons": list(picked.units), "text": text, "chars": list(text),
                "traces": {name: [round(v, 6) for v in col] for name, col in columns.items()}}

    def picture(width: int) -> Group:
        parts: list[RenderableType] = []
        for layer in picked.layers:
            for unit in picked.units:
                traces = {vector: columns[f"L{layer}.{vector}[{unit}]"] for vector in picked.vectors}
                if len(traces) == 1:
                    (vector, values), = traces.items()
                    parts.append(neuron_view(f"layer {layer} · {vector} · neuron {unit}   {source}", text, values, vector))
                else:
                    parts.append(vectors_view(f"layer {layer} · neuron {unit}   {source}", text, traces, width))
                parts.append(Text(""))
        return Group(*parts)

    return Output(["position", "char", *columns], _column_records(text, columns), document, picture)


def find_output(source: str, feature: str, text: str, search, layers: Sequence[int], window: tuple[int, int]) -> Output:
    """The units of `search` (an analysis.FeatureSearch over `layers`) ranked against the feature
    named `feature`; the picture shows each one's strip over `window` of the text."""
    records = [{"rank": k, "layer": u.layer, "unit": u.unit, "r": round(u.r, 6)} for k, u in enumerate(search.ranked, 1)]
    document = {"checkpoint": source, "feature": feature, "vector": search.vector, "layers": list(layers),
                "characters": len(text), "units_searched": search.num_units, "chance": round(search.chance, 6),
                "units": records}

    def picture(width: int) -> Table:
        rows = []
        for unit, values in zip(search.ranked, search.values):
            values = _floats(values)
            rows.append((unit.layer, unit.unit, unit.r, values, *colouring(search.vector, values)))
        title = (f"{search.vector} units most correlated with {feature} over {len(text):,} characters "
                 f"({search.num_units} units searched)   {source}")
        caption = (f"r: Pearson correlation with the feature. Chance: |r| up to {search.chance:.3f} with the feature "
                   f"shifted along the text; units well above it track the feature.")
        return find_view(title, text, window, search.feature, rows, caption)

    return Output(["rank", "layer", "unit", "r"], records, document, picture)


def windows_output(source: str, text: str, layer: int, vector: str, unit: int, values, positive: Sequence,
                   negative: Sequence) -> Output:
    """The windows of text where one unit (its trace `values`) is highest and lowest."""
    records = windows_rows(positive, negative, text)
    document = {"checkpoint": source, "layer": layer, "vector": vector, "neuron": unit, "characters": len(text),
                "windows": records}

    def picture(width: int) -> Group:
        vals = _floats(values)
        title = f"layer {layer} · {vector} · neuron {unit} over {len(text):,} characters   {source}"
        return windows_view(title, text, vals, *colouring(vector, vals), positive, negative)

    return Output(["kind", "rank", "value", "peak", "start", "end", "text"], records, document, picture)


def stats_output(source: str, characters: int, saturations: Sequence, low: float, high: float) -> Output:
    """Gate saturation (analysis.GateSaturation per layer and gate) over a text of `characters`."""
    records = ({"layer": s.layer, "gate": s.gate, "unit": unit, "left": float(s.left[unit]),
                "right": float(s.right[unit])} for s in saturations for unit in range(len(s.left)))
    document = {"checkpoint": source, "characters": characters, "low": low, "high": high,
                "gates": stats_records(saturations)}
    return Output(["layer", "gate", "unit", "left", "right"], records, document, ascii_json=True,
                  picture=lambda width: stats_table(f"gate saturation over {characters:,} characters   {source}",
                                                    saturations, low, high))


def score_output(source: str, text: str, bits: Sequence[float], expected: Sequence[str], bits_per_char: float,
                 vocab_size: int) -> Output:
    """The surprisal `bits` of text[1:] and the characters the model `expected` there."""
    bits = _floats(bits)
    records = ({"position": t + 1, "char": text[t + 1], "bits": b, "expected": expected[t]} for t, b in enumerate(bits))
    document = {"checkpoint": source, "bits_per_char": round(bits_per_char, 6), "characters": len(text),
                "predicted_characters": len(bits), "text": text, "surprisal_bits": [round(b, 6) for b in bits],
                "expected": list(expected)}
    uniform_bits = math.log2(max(vocab_size, 2))  # a blind guess among the vocabulary: full colour
    return Output(["position", "char", "bits", "expected"], records, document,
                  lambda width: score_view(f"{bits_per_char:.3f} bits per character   {source}", text, bits, expected,
                                           uniform_bits, show_strip=len(text) <= SCORE_STRIP_CHARS))


# -------------------------------------------------------------------------------------- atlas


def _context_text(text: str, window, cells: int) -> Text:
    """One context window as plain text (invisible characters shown), its peak bold and underlined,
    cut to `cells` terminal cells around the peak (three quarters before it) so the peak stays in view."""
    width = lambda pos: cell_len(visible(text[pos]))  # noqa: E731
    start, end, used = window.peak, window.peak + 1, width(window.peak)
    while start > window.start and used + width(start - 1) <= max(1, (3 * cells) // 4):
        start -= 1
        used += width(start)
    while end < window.end and used + width(end) <= cells:
        used += width(end)
        end += 1
    while start > window.start and used + width(start - 1) <= cells:
        start -= 1
        used += width(start)
    out = Text(no_wrap=True, overflow="crop")
    for pos in range(start, end):
        out.append(visible(text[pos]), style=Style(bold=True, underline=True) if pos == window.peak else None)
    return out


def atlas_records(text: str, atlas) -> list[dict]:
    """One record per unit of an atlas.Atlas, best first (its top context's text in `context`)."""
    return [{"rank": rank, "layer": u.layer, "vector": u.vector, "unit": u.unit, "feature": u.feature,
             "r": round(u.r, 6), "chance": round(u.chance, 6), "excess": round(u.excess, 6),
             "saturation": round(u.saturation, 6), "verdict": u.verdict,
             "context": text[u.contexts[0].start : u.contexts[0].end] if u.contexts else ""}
            for rank, u in enumerate(atlas.units, 1)]


def atlas_output(source: str, text: str, atlas, top: int | None = None) -> Output:
    """Every unit of an atlas.Atlas: its best feature, r, chance, saturation, verdict and contexts.
    TSV and JSON hold every unit; the terminal table shows the first `top` (default: all)."""
    records = atlas_records(text, atlas)
    features = []
    for name in atlas.features:
        (layer, vector, unit, r), = atlas.ranking(name, 1)
        untrained = atlas.untrained_chance[name] if atlas.untrained_chance is not None else None
        features.append({"feature": name, "chance": round(atlas.chance[name], 6),
                         "shift_chance": round(atlas.shift_chance[name], 6),
                         "untrained_chance": None if untrained is None else round(untrained, 6),
                         "tracking": atlas.tracking(name),
                         "best": {"layer": layer, "vector": vector, "unit": unit, "r": round(r, 6)}})
    document = {"checkpoint": source, "characters": atlas.characters, "layers": list(atlas.layers),
                "vectors": list(atlas.vectors), "shifts": atlas.shifts, "rule": atlas.rule,
                "thresholds": dict(atlas.thresholds),
                "features": features, "absent": list(atlas.absent),
                "units": [{**record, "contexts": [{"start": w.start, "end": w.end, "peak": w.peak,
                                                   "value": round(w.value, 6), "text": text[w.start : w.end]}
                                                  for w in u.contexts]}
                          for record, u in zip(records, atlas.units)]}
    for record in document["units"]:
        del record["context"]

    def picture(width: int) -> Group:
        vectors = " / ".join(atlas.vectors)
        title = Text(f"atlas of {len(atlas.units):,} {vectors} units over {atlas.characters:,} characters   {source}",
                     style="bold")
        summary_table = Table(title=Text("features (best unit of each)"), title_justify="left", box=None,
                              pad_edge=False)
        for name, justify in (("feature", "left"), ("shifted", "right"), ("untrained", "right"), ("chance", "right"),
                              ("best unit", "right"), ("r", "right"), ("tracking", "right")):
            summary_table.add_column(name, justify=justify, no_wrap=True)
        for f in features:
            best = f["best"]
            summary_table.add_row(Text(f["feature"]), f"{f['shift_chance']:.3f}",
                                  "—" if f["untrained_chance"] is None else f"{f['untrained_chance']:.3f}",
                                  f"{f['chance']:.3f}",
                                  f"L{best['layer']} {best['vector']} {best['unit']}", f"{best['r']:+.3f}",
                                  str(f["tracking"]))
        units_table = Table(title=Text("units, furthest above chance first (context: where the unit is most on, "
                                       "its peak underlined)"), title_justify="left", box=None,
                            pad_edge=False)
        columns = [("#", "right"), ("layer", "right")] + ([("vector", "left")] if len(atlas.vectors) > 1 else []) + [
            ("unit", "right"), ("feature", "left"), ("r", "right"), ("chance", "right"), ("sat", "right"),
            ("verdict", "left")]
        for name, justify in columns:
            units_table.add_column(name, justify=justify, no_wrap=True)
        units_table.add_column("context", no_wrap=True)
        shown = atlas.units if top is None else atlas.units[:top]
        rows = [[str(rank), str(u.layer)] + ([u.vector] if len(atlas.vectors) > 1 else []) + [
                str(u.unit), u.feature, f"{u.r:+.3f}", f"{u.chance:.3f}", f"{u.saturation:.0%}", u.verdict]
                for rank, u in enumerate(shown, 1)]
        # What the fixed columns take (each at its widest cell or header, two cells between columns)
        # leaves the context column; it gets at least 12 cells.
        used = sum(max([cell_len(name)] + [cell_len(row[k]) for row in rows]) + 2 for k, (name, _) in enumerate(columns))
        cells = max(12, width - used)
        for row, u in zip(rows, shown):
            units_table.add_row(*row[:4 if len(atlas.vectors) > 1 else 3], Text(row[-5]), *row[-4:],
                                _context_text(text, u.contexts[0], cells) if u.contexts else Text(""))
        parts: list[RenderableType] = [title, Text(""), summary_table]
        if atlas.absent:
            parts.append(Text(f"not in this text (constant): {', '.join(atlas.absent)}", style="dim"))
        parts += [Text(""), units_table]
        if top is not None and top < len(atlas.units):
            parts.append(Text(f"… {len(atlas.units) - top:,} more units (--top, or --format tsv for all)", style="dim"))
        parts += [Text(""), Text(atlas.rule, style="dim")]
        return Group(*parts)

    return Output(["rank", "layer", "vector", "unit", "feature", "r", "chance", "excess", "saturation", "verdict",
                   "context"], records, document, picture)


# ------------------------------------------------------------------ score --baseline: LSTM vs n-gram

#: Bits of difference drawn at full colour in the comparison strip.
COMPARISON_SCALE_BITS = 4.0


def _comparison_strip(text: str, advantage: Sequence[float], margin: float) -> Text:
    """The text coloured where one model beats the other by at least `margin` bits: blue where the
    LSTM does (advantage = n-gram bits − LSTM bits > 0), red where the n-gram does; the first
    character (never predicted) and the close calls white."""
    return _prediction_strip(text, (value_rgb(a, gate=False, scale=COMPARISON_SCALE_BITS) if abs(a) >= margin else WHITE
                                    for a in advantage))


def _comparison_legend(margin: float) -> Text:
    key = Text()
    key.append("legend: ", style="dim")
    for tick, label in ((-COMPARISON_SCALE_BITS, "n-gram better"), (-margin, ""), (0.0, "within margin"),
                        (margin, ""), (COMPARISON_SCALE_BITS, "LSTM better")):
        key.append(f" {tick:+.0f} ", style=_style(value_rgb(tick, False, COMPARISON_SCALE_BITS) if tick else WHITE))
        key.append(f" {label} " if label else " ", style="dim")
    key.append(f"bits the LSTM saves over the n-gram; coloured from ±{margin:g} bit", style="dim")
    return key


def comparison_output(source: str, comparison, definitions: Mapping[str, str], parameters: Mapping) -> Output:
    """`charlstm score --baseline ngram:N`: both models' bits per character on one text, where
    each beats the other, the LSTM's errors by category and the bracket-distance test
    (an erroranalysis.Comparison, its DEFINITIONS and parameters)."""
    c = comparison
    lstm_bits, ngram_bits = _floats(c.lstm_bits), _floats(c.ngram_bits)
    errors = c.errors
    records = ({"position": t + 1, "char": c.text[t + 1], "lstm_bits": lb, "ngram_bits": nb, "category": c.category[t]}
               for t, (lb, nb) in enumerate(zip(lstm_bits, ngram_bits)))
    breakdown = [{"category": name, "errors": n, "share": round(n / errors, 6) if errors else 0.0,
                  "definition": definitions[name]} for name, n in c.breakdown.items()]
    brackets = [{"low": b.low, "high": b.high, "count": b.count, "lstm_accuracy": round(b.lstm_accuracy, 6),
                 "ngram_accuracy": round(b.ngram_accuracy, 6), "lstm_mean_p": round(b.lstm_mean_p, 6),
                 "ngram_mean_p": round(b.ngram_mean_p, 6)} for b in c.brackets]
    document = {"checkpoint": source, "baseline": f"ngram:{c.order}", "order": c.order, "characters": len(c.text),
                "predicted_characters": len(lstm_bits), "lstm_bits_per_char": round(c.lstm_bpc, 6),
                "ngram_bits_per_char": round(c.ngram_bpc, 6), "difference": round(c.ngram_bpc - c.lstm_bpc, 6),
                "lstm_beats_ngram": c.lstm_wins, "ngram_beats_lstm": c.ngram_wins, "errors": errors,
                "breakdown": breakdown, "brackets": brackets, "ngram": dict(c.info), "definitions": dict(definitions),
                "parameters": dict(parameters), "text": c.text,
                "lstm_bits": [round(b, 6) for b in lstm_bits], "ngram_bits": [round(b, 6) for b in ngram_bits],
                "category": list(c.category)}
    margin = float(parameters["margin_bits"])

    def picture(width: int) -> Group:
        n = len(lstm_bits)
        parts: list[RenderableType] = [Text(f"LSTM vs {c.order}-gram   {source}", style="bold")]
        if len(c.text) <= SCORE_STRIP_CHARS:
            advantage = [nb - lb for lb, nb in zip(lstm_bits, ngram_bits)]
            parts += [_comparison_strip(c.text, advantage, margin), Text(""), _comparison_legend(margin)]
        else:
            parts.append(Text(f"({len(c.text)} characters: strip left out; --format tsv lists every character)",
                              style="dim"))
        parts += [Text(f"LSTM     {c.lstm_bpc:.3f} bits per character"),
                  Text(f"{c.order}-gram".ljust(9) + f"{c.ngram_bpc:.3f} bits per character ({c.info.get('smoothing', '')})"),
                  Text(f"the LSTM needs {abs(c.ngram_bpc - c.lstm_bpc):.3f} bits per character "
                       f"{'fewer' if c.ngram_bpc >= c.lstm_bpc else 'more'} than the {c.order}-gram over {n} "
                       "predicted characters (the first character is context only)"),
                  Text(f"the LSTM beats the n-gram by ≥ {margin:g} bit on {c.lstm_wins} characters "
                       f"({c.lstm_wins / max(n, 1):.1%}); the n-gram beats the LSTM on {c.ngram_wins} "
                       f"({c.ngram_wins / max(n, 1):.1%})", style="dim"), Text("")]
        table = Table(title=Text(f"the LSTM's {errors} errors (p < {parameters['error_p']:g}: {errors / max(n, 1):.1%} "
                                 "of characters), each in the first category it fits"),
                      title_justify="left", box=None, pad_edge=False)
        for name, justify in (("category", "left"), ("errors", "right"), ("share", "right"), ("definition", "left")):
            table.add_column(name, justify=justify, no_wrap=name != "definition")
        for row in breakdown:
            table.add_row(row["category"], str(row["errors"]), f"{row['share']:.1%}", Text(row["definition"], style="dim"))
        parts.append(table)
        if brackets:
            btable = Table(title=Text("closing brackets by distance from their opener"), title_justify="left",
                           caption=Text(definitions["bracket test"], style="dim"), caption_justify="left",
                           box=None, pad_edge=False)
            for name in ("distance", "closers", "LSTM accuracy", f"{c.order}-gram accuracy", "LSTM mean p",
                         f"{c.order}-gram mean p"):
                btable.add_column(name, justify="right", no_wrap=True)
            for b in brackets:
                band = f"{b['low']}–{b['high']}" if b["high"] is not None else f"{b['low']}+"
                btable.add_row(band, str(b["count"]), f"{b['lstm_accuracy']:.1%}", f"{b['ngram_accuracy']:.1%}",
                               f"{b['lstm_mean_p']:.3f}", f"{b['ngram_mean_p']:.3f}")
            parts += [Text(""), btable]
        return Group(*parts)

    return Output(["position", "char", "lstm_bits", "ngram_bits", "category"], records, document, picture)
