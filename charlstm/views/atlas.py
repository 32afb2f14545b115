"""The neuron atlas (an inspection.atlas.Atlas) as an Output: one record per unit for TSV and
JSON, and the terminal picture — the features with their best units, then the units with their
contexts. Computes nothing about the model."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..inspection.atlas import INPUT_SHARE
from .glyphs import glyph
from .output import Output


def _context_text(text: str, window, cells: int) -> Text:
    """One context window as plain text (invisible characters shown), its peak bold and underlined,
    cut to `cells` terminal cells around the peak (three quarters before it) so the peak stays in view."""
    width = lambda pos: cell_len(glyph(text[pos]))  # noqa: E731
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
        out.append(glyph(text[pos]), style=Style(bold=True, underline=True) if pos == window.peak else None)
    return out


#: The columns of a unit's record, in TSV order.
RECORD_COLUMNS = ["rank", "layer", "vector", "unit", "feature", "r", "chance", "excess", "saturation", "verdict",
                  "context", "kind", "partial_r", "partial_chance", "heldout_r", "input_share", "gain"]


def atlas_records(text: str, atlas) -> list[dict]:
    """One record per unit of an Atlas, best first (its top context's text in `context`)."""
    return [{"rank": rank, "layer": u.layer, "vector": u.vector, "unit": u.unit, "feature": u.feature,
             "r": round(u.r, 6), "chance": round(u.chance, 6), "excess": round(u.excess, 6),
             "saturation": round(u.saturation, 6), "verdict": u.verdict,
             "context": text[u.contexts[0].start : u.contexts[0].end] if u.contexts else "",
             "kind": u.kind, "partial_r": round(u.partial_r, 6), "partial_chance": round(u.partial_chance, 6),
             "heldout_r": round(u.heldout_r, 6), "input_share": round(u.input_share, 6), "gain": round(u.gain, 6)}
            for rank, u in enumerate(atlas.units, 1)]


def _feature_records(atlas) -> list[dict]:
    """Per feature: its chance levels, how many units track it, and its best unit."""
    features = []
    for name in atlas.features:
        (layer, vector, unit, r), = atlas.ranking(name, 1)
        untrained = atlas.untrained_chance[name] if atlas.untrained_chance is not None else None
        features.append({"feature": name, "chance": round(atlas.chance[name], 6),
                         "shift_chance": round(atlas.shift_chance[name], 6),
                         "untrained_chance": None if untrained is None else round(untrained, 6),
                         "tracking": atlas.tracking(name),
                         "best": {"layer": layer, "vector": vector, "unit": unit, "r": round(r, 6)}})
    return features


def _features_table(features: list[dict]) -> Table:
    """The feature records as a table: chance levels, best unit, its r, and how many units track it."""
    table = Table(title=Text("features (best unit of each)"), title_justify="left", box=None, pad_edge=False)
    for name, justify in (("feature", "left"), ("shifted", "right"), ("untrained", "right"), ("chance", "right"),
                          ("best unit", "right"), ("r", "right"), ("tracking", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for f in features:
        best = f["best"]
        table.add_row(Text(f["feature"]), f"{f['shift_chance']:.3f}",
                      "—" if f["untrained_chance"] is None else f"{f['untrained_chance']:.3f}", f"{f['chance']:.3f}",
                      f"L{best['layer']} {best['vector']} {best['unit']}", f"{best['r']:+.3f}", str(f["tracking"]))
    return table


def _units_table(text: str, atlas, units, width: int, start: int, title: str) -> Table:
    """`units` (ranked from `start`), one row each, with the context where each is most on, cut to
    what the other columns leave of `width`."""
    several = len(atlas.vectors) > 1
    table = Table(title=Text(title), title_justify="left", box=None, pad_edge=False)
    columns = [("#", "right"), ("layer", "right")] + ([("vector", "left")] if several else []) + [
        ("unit", "right"), ("feature", "left"), ("r", "right"), ("r|char", "right"), ("held-out", "right"),
        ("chance", "right"), ("input", "right"), ("sat", "right"), ("verdict", "left")]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    table.add_column("context", no_wrap=True)
    rows = [[str(rank), str(u.layer)] + ([u.vector] if several else []) + [
            str(u.unit), u.feature, f"{u.r:+.3f}", f"{u.partial_r:+.3f}" if u.kind == "state" else "—",
            f"{u.heldout_r:+.3f}", f"{u.label_chance:.3f}", f"{u.input_share:.0%}", f"{u.saturation:.0%}", u.verdict]
            for rank, u in enumerate(units, start)]
    # What the fixed columns take (each at its widest cell or header, two cells between columns)
    # leaves the context column; it gets at least 12 cells.
    used = sum(max([cell_len(name)] + [cell_len(row[k]) for row in rows]) + 2 for k, (name, _) in enumerate(columns))
    cells = max(12, width - used)
    named = 4 if several else 3
    for row, u in zip(rows, units):
        table.add_row(*row[:named], Text(row[named]), *row[named + 1 :],
                      _context_text(text, u.contexts[0], cells) if u.contexts else Text(""))
    return table


def _units_tables(text: str, atlas, top: int | None, width: int) -> list[RenderableType]:
    """The units that carry state, then those that react to the character read (the first `top` in
    all), each its own table."""
    shown = atlas.units if top is None else atlas.units[:top]
    state = [u for u in shown if u.kind == "state"]
    rest = [u for u in shown if u.kind != "state"]
    parts: list[RenderableType] = []
    if state:
        parts.append(_units_table(text, atlas, state, width, 1, "units that carry state, furthest above chance first "
                                  "(feature and r|char: r beyond the character read; context: where the unit is most "
                                  "on, its peak underlined)"))
    if rest:
        parts += [Text("")] if state else []
        parts.append(_units_table(text, atlas, rest, width, len(state) + 1,
                                  f"units that react to the character read (it explains ≥ {INPUT_SHARE:.0%} of their "
                                  "variance: input), labelled by r"))
    return parts


def atlas_output(source: str, text: str, atlas, top: int | None = None) -> Output:
    """Every unit of an inspection.atlas.Atlas: its best feature, r, chance, saturation, verdict and
    contexts. TSV and JSON hold every unit; the terminal table shows the first `top` (default: all)."""
    records = atlas_records(text, atlas)
    features = _feature_records(atlas)
    document = {"checkpoint": source, "characters": atlas.characters, "layers": list(atlas.layers),
                "vectors": list(atlas.vectors), "shifts": atlas.shifts, "rule": atlas.rule,
                "thresholds": dict(atlas.thresholds),
                "features": features, "absent": list(atlas.absent),
                "units": [{**{k: v for k, v in record.items() if k != "context"},
                           "contexts": [{"start": w.start, "end": w.end, "peak": w.peak, "value": round(w.value, 6),
                                         "text": text[w.start : w.end]} for w in u.contexts]}
                          for record, u in zip(records, atlas.units)]}

    def picture(width: int) -> Group:
        vectors = " / ".join(atlas.vectors)
        title = Text(f"atlas of {len(atlas.units):,} {vectors} units over {atlas.characters:,} characters   {source}",
                     style="bold")
        parts: list[RenderableType] = [title, Text(""), _features_table(features)]
        if atlas.absent:
            parts.append(Text(f"not in this text (constant): {', '.join(atlas.absent)}", style="dim"))
        parts += [Text(""), *_units_tables(text, atlas, top, width)]
        if top is not None and top < len(atlas.units):
            parts.append(Text(f"… {len(atlas.units) - top:,} more units (--top, or --format tsv for all)", style="dim"))
        parts += [Text(""), Text(atlas.rule, style="dim")]
        return Group(*parts)

    return Output(RECORD_COLUMNS, records, document, picture)
