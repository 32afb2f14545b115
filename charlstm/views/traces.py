"""The traces of `inspect` for the terminal: coloured strips of text, stacked strips of several
vectors, the ranked units of --find, the windows where a unit peaks, gate saturation; each result
an `Output` (output.py) that `write` emits as text, TSV or JSON.

Colour convention of the seeds' figures: red negative, blue positive for signed vectors (cell,
hidden, candidate), one hue from white to green for gates in 0..1 (colours.py). Corpus text (and
anything a user typed: feature names, regexes, paths) is only ever added as plain text to
`rich.text.Text`, never parsed as markup ("[Exit]" is Shakespeare, not a tag); invisible
characters are drawn by glyphs.py.

Takes facts, not flags: the *_output functions are given a vector's values and let
`colours.colouring` choose gate-or-signed and the scale; the drawing functions below them (strip,
legend, stacked_view, find_view, windows_view) take (gate, scale) as given. Computes nothing about
the model. Scores are drawn by scores.py, the HTML page by page.py.
"""

from __future__ import annotations

import math
from typing import Iterator, Mapping, Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .colours import _style, colouring, full_scale, value_rgb
from .glyphs import glyph
from .output import Output, Pieces, Rows


def strip(text: str, values: Sequence[float], gate: bool, scale: float | None = None, keep_lines: bool = True,
          mark: int | None = None) -> Text:
    """The text with each character's background coloured by its value. With keep_lines a line
    break is shown by its glyph and then breaks the line, so code and verse keep their shape; without, the
    strip stays on one line. `mark` underlines one character (a peak)."""
    if len(values) != len(text):
        raise ValueError(f"{len(text)} characters but {len(values)} values")
    if scale is None:
        scale = full_scale(values, bounded=gate)
    out = Text(no_wrap=not keep_lines)
    for pos, (char, value) in enumerate(zip(text, values)):
        extra = {"underline": True, "bold": True} if pos == mark else {}
        out.append(glyph(char), style=_style(value_rgb(float(value), gate, scale), **extra))
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
    vals = np.asarray(values, dtype=np.float64)
    if not len(vals):
        return Text("no characters", style="dim")
    lo, hi = int(np.argmin(vals)), int(np.argmax(vals))
    mean = float(vals.mean())
    std = math.sqrt(float(np.mean((vals - mean) ** 2)))

    def where(pos: int) -> str:
        return f" at {pos}" + (f" {glyph(text[pos])!r}" if text is not None else "")

    return Text(f"min {vals[lo]:+.3f}{where(lo)}   max {vals[hi]:+.3f}{where(hi)}   mean {mean:+.3f}   "
                f"std {std:.3f}" + (f"   ({len(vals)} characters)" if count else ""), style="dim")


def neuron_view(title: str, text: str, values: Sequence[float], vector: str | None = None, *,
                gate: bool = False) -> Group:
    """Title, coloured strip, legend and min/max/mean of one neuron's trace: the values of `vector`,
    drawn on its scale; values of no named vector are drawn as gates (0..1) with `gate`, else signed."""
    return Group(*neuron_parts(title, text, values, vector, gate=gate))


def neuron_parts(title: str, text: str, values: Sequence[float], vector: str | None = None, *,
                 gate: bool = False) -> Iterator[RenderableType]:
    """`neuron_view` one renderable at a time, its strip a line at a time (`strip_lines`), so a
    long text is drawn without its whole picture in memory."""
    gate, scale = colouring(vector, values) if vector is not None else (gate, full_scale(values, bounded=gate))
    yield Text(title, style="bold")
    yield from strip_lines(text, values, gate, scale)
    yield Text("")
    yield legend(gate, scale)
    yield summary(values, text)


#: Bytes per character drawing a unit's strip holds beside its values at once (its values in
#: float64 and their magnitudes, for the scale and the summary).
PICTURE_BYTES = 32

#: The most characters of one line `strip_lines` draws as one piece; a longer line is drawn in
#: pieces of this many (each wrapped on its own).
LINE_PIECE = 4096


def strip_lines(text: str, values: Sequence[float], gate: bool, scale: float) -> Iterator[Text]:
    """`strip(text, values, gate, scale)` as one Text per line of the text (its line break's glyph
    ending it), which print as the whole strip does (a final line break, too, leaves an empty line)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start, start + LINE_PIECE)
        end = min(len(text), start + LINE_PIECE) if end < 0 else end + 1
        line = strip(text[start:end], values[start:end], gate, scale, keep_lines=False)
        line.no_wrap = False
        yield line
        start = end
    if text.endswith("\n"):
        yield Text("")


def _segments(text: str, width: int) -> Iterator[tuple[int, int]]:
    """[start, end) pieces of the text: one per line (its line break included), lines wider than
    `width` terminal cells cut into several."""
    start, used = 0, 0
    for pos, char in enumerate(text):
        w = cell_len(glyph(char))
        if used + w > width and pos > start:
            yield start, pos
            start, used = pos, 0
        used += w
        if char == "\n":
            yield start, pos + 1
            start, used = pos + 1, 0
    if start < len(text):
        yield start, len(text)


def stacked_view(title: str, text: str, rows: Mapping[str, tuple[Sequence[float], bool, float]], width: int = 100) -> Group:
    """Several strips of the same text stacked line by line, so a character's row values line up
    (the seeds' six strips of one neuron). rows: label → (values, gate, scale)."""
    return Group(*stacked_parts(title, text, rows, width))


def stacked_parts(title: str, text: str, rows: Mapping[str, tuple[Sequence[float], bool, float]],
                  width: int = 100) -> Iterator[RenderableType]:
    """`stacked_view` one renderable at a time."""
    label_width = max(map(len, rows), default=0) + 1
    yield Text(title, style="bold")
    for start, end in _segments(text, max(10, width - label_width - 2)):
        for label, (values, gate, scale) in rows.items():
            line = Text(no_wrap=True)
            line.append(label.ljust(label_width), style="dim")
            line.append("│", style="dim")
            line.append_text(strip(text[start:end], values[start:end], gate, scale, keep_lines=False))
            yield line
        yield Text("")
    for label, (values, gate, scale) in rows.items():
        line = Text()
        line.append(label.ljust(label_width), style="dim")
        line.append_text(summary(values, text, count=False))
        yield line
    shown = {(gate, scale): label for label, (_, gate, scale) in rows.items()}
    for (gate, scale), label in shown.items():
        yield legend(gate, scale, "gates" if gate else label if scale != 1.0 else "tanh")


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


def vectors_view(title: str, text: str, traces: Mapping[str, Sequence[float]], width: int = 100) -> Group:
    """The traces of several vectors of one neuron stacked line by line, each on its vector's scale."""
    return Group(*vectors_parts(title, text, traces, width))


def vectors_parts(title: str, text: str, traces: Mapping[str, Sequence[float]], width: int = 100) -> Iterator[RenderableType]:
    """`vectors_view` one renderable at a time."""
    return stacked_parts(title, text, {vector: (values, *colouring(vector, values)) for vector, values in traces.items()},
                         width)


#: Characters per block of a trace's TSV rows and JSON arrays.
BLOCK = 1 << 16


def trace_output(source: str, cell: str, text: str, columns: Mapping[str, np.ndarray], picked) -> Output:
    """The traces of every picked (layer, vector, unit): `columns` maps "L{layer}.{vector}[{unit}]"
    to its (T,) values (inspection.tracing.trace_columns), `cell` is the model's cell kind and
    `picked` has .layers, .vectors and .units (an inspection.selection.Selection). TSV and JSON
    hold one column per unit, written a block of characters at a time."""
    spans = lambda: ((start, min(len(text), start + BLOCK)) for start in range(0, len(text), BLOCK))  # noqa: E731
    rounded = lambda values: (np.asarray(values[a:b]).tolist() for a, b in spans())  # noqa: E731
    document = {"checkpoint": source, "cell": cell, "layers": list(picked.layers), "vectors": list(picked.vectors),
                "neurons": list(picked.units), "text": Pieces(lambda: (text[a:b] for a, b in spans()), string=True),
                "chars": Pieces(lambda: (list(text[a:b]) for a, b in spans())),
                "traces": {name: Pieces(lambda col=col: ([round(v, 6) for v in piece] for piece in rounded(col)))
                           for name, col in columns.items()}}
    rows = Rows(lambda: ([list(range(a, b)), list(text[a:b]), *(np.asarray(col[a:b]).tolist() for col in columns.values())]
                         for a, b in spans()))

    def picture(width: int) -> Iterator[RenderableType]:
        for layer in picked.layers:
            for unit in picked.units:
                traces = {vector: columns[f"L{layer}.{vector}[{unit}]"] for vector in picked.vectors}
                if len(traces) == 1:
                    (vector, values), = traces.items()
                    yield from neuron_parts(f"layer {layer} · {vector} · neuron {unit}   {source}", text, values, vector)
                else:
                    yield from vectors_parts(f"layer {layer} · neuron {unit}   {source}", text, traces, width)
                yield Text("")

    return Output(["position", "char", *columns], rows, document, picture)


def find_output(source: str, feature: str, text: str, search, layers: Sequence[int], window: tuple[int, int]) -> Output:
    """The units of `search` (an inspection.analysis.FeatureSearch over `layers`) ranked against the feature
    named `feature`; the picture shows each one's strip over `window` of the text."""
    records = [{"rank": k, "layer": u.layer, "unit": u.unit, "r": round(u.r, 6)} for k, u in enumerate(search.ranked, 1)]
    document = {"checkpoint": source, "feature": feature, "vector": search.vector, "layers": list(layers),
                "characters": len(text), "units_searched": search.num_units, "chance": round(search.chance, 6),
                "units": records}

    def picture(width: int) -> Table:
        rows = []
        for unit, values in zip(search.ranked, search.values):
            values = np.asarray(values, dtype=np.float64)
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
        vals = np.asarray(values, dtype=np.float64)
        title = f"layer {layer} · {vector} · neuron {unit} over {len(text):,} characters   {source}"
        return windows_view(title, text, vals, *colouring(vector, vals), positive, negative)

    return Output(["kind", "rank", "value", "peak", "start", "end", "text"], records, document, picture)


def stats_output(source: str, characters: int, saturations: Sequence, low: float, high: float) -> Output:
    """Gate saturation (an inspection.analysis.GateSaturation per layer and gate) over a text of `characters`."""
    records = ({"layer": s.layer, "gate": s.gate, "unit": unit, "left": float(s.left[unit]),
                "right": float(s.right[unit])} for s in saturations for unit in range(len(s.left)))
    document = {"checkpoint": source, "characters": characters, "low": low, "high": high,
                "gates": stats_records(saturations)}
    return Output(["layer", "gate", "unit", "left", "right"], records, document, ascii_json=True,
                  picture=lambda width: stats_table(f"gate saturation over {characters:,} characters   {source}",
                                                    saturations, low, high))
