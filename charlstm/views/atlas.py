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
from .glyphs import glyph, single_line
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
                  "context", "kind", "partial_r", "partial_chance", "heldout_r", "input_share", "gain", "ablation_bpc",
                  "promotes", "suppresses", "ablation_chars"]


def _name(feature: str) -> str:
    """A feature's name as a table shows it: a tab or line break in it (count:\t) as its glyph."""
    return single_line(feature)


def atlas_records(text: str, atlas) -> list[dict]:
    """One record per unit of an Atlas, best first (its top context's text in `context`; ablation_bpc
    None where the unit was not or cannot be held at its mean)."""
    records = [{"rank": rank, "layer": u.layer, "vector": u.vector, "unit": u.unit, "feature": u.feature,
             "r": round(u.r, 6), "chance": round(u.chance, 6), "excess": round(u.excess, 6),
             "saturation": round(u.saturation, 6), "verdict": u.verdict,
             "context": text[u.contexts[0].start : u.contexts[0].end] if u.contexts else "",
             "kind": u.kind, "partial_r": round(u.partial_r, 6), "partial_chance": round(u.partial_chance, 6),
             "heldout_r": round(u.heldout_r, 6), "input_share": round(u.input_share, 6), "gain": round(u.gain, 6)}
               for rank, u in enumerate(atlas.units, 1)]
    for record, u in zip(records, atlas.units):
        bpc, promotes, suppresses = atlas.effect(u)
        record.update(ablation_bpc=None if bpc is None else round(bpc, 6), promotes=promotes, suppresses=suppresses,
                      ablation_chars=atlas.ablation_chars(u))
    return records


def bits_lost(bpc: float) -> str:
    """An ablation cost as every atlas view writes it: three decimals, signed, and a cost that rounds
    to nothing as 0.000 (never −0.000)."""
    return "0.000" if abs(bpc) < 5e-4 else f"{bpc:+.3f}"


def _feature_records(atlas) -> list[dict]:
    """Per feature: its chance levels, how many units it labels as tracked, and its best unit."""
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
    """The feature records as a table: chance levels, best unit, its r, and how many units track it (labelled so)."""
    table = Table(title=Text("features (best unit of each)"), title_justify="left", box=None, pad_edge=False)
    for name, justify in (("feature", "left"), ("shifted", "right"), ("untrained", "right"), ("chance", "right"),
                          ("best unit", "right"), ("r", "right"), ("tracking", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for f in features:
        best = f["best"]
        table.add_row(Text(_name(f["feature"])), f"{f['shift_chance']:.3f}",
                      "—" if f["untrained_chance"] is None else f"{f['untrained_chance']:.3f}", f"{f['chance']:.3f}",
                      f"L{best['layer']} {best['vector']} {best['unit']}", f"{best['r']:+.3f}", str(f["tracking"]))
    return table


#: The columns of a units table after the unit itself, in order; a narrow terminal drops them in _DROPPED's
#: order (the least wanted first) until the context keeps MIN_CONTEXT cells.
_OPTIONAL = (("r", "right"), ("held-out", "right"), ("chance", "right"), ("verdict", "left"), ("ablation", "right"),
             ("promotes", "left"), ("r whole", "right"), ("input", "right"), ("sat", "right"), ("suppresses", "left"))
_DROPPED = ("suppresses", "sat", "input", "r whole", "promotes", "chance", "held-out", "ablation", "verdict", "r")
MIN_CONTEXT = 12


def _unit_cells(atlas, u) -> dict[str, str]:
    bpc, promotes, suppresses = atlas.effect(u)
    return {"r": f"{u.label_r:+.3f}", "held-out": f"{u.heldout_r:+.3f}", "chance": f"{u.label_chance:.3f}",
            "verdict": u.verdict, "ablation": "—" if bpc is None else bits_lost(bpc),
            "promotes": single_line(promotes), "r whole": f"{u.r:+.3f}",
            "input": f"{u.input_share:.0%}", "sat": f"{u.saturation:.0%}",
            "suppresses": single_line(suppresses)}


def _units_table(text: str, atlas, units, width: int, start: int, title: str) -> Table:
    """`units` (ranked from `start`), one row each, with the context where each is most on: the
    columns of _OPTIONAL that `width` leaves room for, and the context in what they leave."""
    several = len(atlas.vectors) > 1
    fixed = [("#", "right"), ("layer", "right")] + ([("vector", "left")] if several else []) + [
        ("unit", "right"), ("feature", "left")]
    rows = [[str(rank), str(u.layer)] + ([u.vector] if several else []) + [str(u.unit), _name(u.feature)]
            for rank, u in enumerate(units, start)]
    cells = [_unit_cells(atlas, u) for u in units]
    if atlas.effects is None:
        cells = [{k: v for k, v in c.items() if k not in ("ablation", "promotes", "suppresses")} for c in cells]
    # Each column takes its widest cell or header and two cells between columns.
    wide = lambda name, values: max([cell_len(name)] + [cell_len(v) for v in values]) + 2  # noqa: E731
    used = sum(wide(name, [row[k] for row in rows]) for k, (name, _) in enumerate(fixed))
    optional = [(name, justify) for name, justify in _OPTIONAL if cells and name in cells[0]]
    while optional and used + sum(wide(n, [c[n] for c in cells]) for n, _ in optional) + MIN_CONTEXT > width:
        kept = {n for n, _ in optional}
        drop = next(n for n in _DROPPED if n in kept)
        optional = [(n, j) for n, j in optional if n != drop]
    used += sum(wide(n, [c[n] for c in cells]) for n, _ in optional)
    table = Table(title=Text(title), title_justify="left", box=None, pad_edge=False)
    for name, justify in fixed + optional:
        table.add_column(name, justify=justify, no_wrap=True)
    table.add_column("context", no_wrap=True)
    room = max(MIN_CONTEXT, width - used)
    named = len(fixed) - 1
    for row, cell, u in zip(rows, cells, units):
        table.add_row(*row[:named], Text(row[named]), *[Text(cell[n]) for n, _ in optional],
                      _context_text(text, u.contexts[0], room) if u.contexts else Text(""))
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
                                  "(r: beyond the character read; ablation: bits/char lost held at its mean; context: "
                                  "where the unit is most on, its peak underlined)"))
    if rest:
        parts += [Text("")] if state else []
        parts.append(_units_table(text, atlas, rest, width, len(state) + 1,
                                  f"units that react to the character read (it explains ≥ {INPUT_SHARE:.0%} of their "
                                  "variance: input), labelled by r"))
    return parts


def _ablation_line(atlas) -> str:
    """Over how much text the ablations were measured, and what promotes and suppresses mean."""
    e, T = atlas.effects, atlas.characters
    where = "the whole text" if e.stretches == 1 and e.characters >= T - 1 else f"{e.stretches} stretches spread over it"
    wider = sorted({int(c) for c in e.per_unit if c > e.characters}) if e.per_unit is not None else []
    leading = (f"; the first {sum(int(c) > e.characters for c in e.per_unit)} units listed over {wider[0]:,}"
               if wider else "")
    return (f"ablation: each unit held at its mean over {e.characters:,} characters ({where}){leading}, against the "
            "model unchanged on the same characters; promotes / suppresses: the characters a last-layer hidden "
            "unit's output weights raise and lower most, for any other unit those whose probability holding it "
            "at its mean lowers and raises most")


def atlas_output(source: str, text: str, atlas, top: int | None = None, where: str | None = None) -> Output:
    """Every unit of an inspection.atlas.Atlas: its label, r, chance, saturation, verdict, effects and
    contexts. TSV and JSON hold every unit; the terminal table shows the first `top` (default: all).
    `where` says where the text came from."""
    records = atlas_records(text, atlas)
    features = _feature_records(atlas)
    document = {"checkpoint": source, "text": where, "characters": atlas.characters, "layers": list(atlas.layers),
                "vectors": list(atlas.vectors), "shifts": atlas.shifts, "rule": atlas.rule,
                "thresholds": dict(atlas.thresholds),
                "features": features, "absent": list(atlas.absent),
                "ablation": None if atlas.effects is None else {"characters": atlas.effects.characters,
                                                                "stretches": atlas.effects.stretches},
                "units": [{**{k: v for k, v in record.items() if k != "context"},
                           "contexts": [{"start": w.start, "end": w.end, "peak": w.peak, "value": round(w.value, 6),
                                         "text": text[w.start : w.end]} for w in u.contexts]}
                          for record, u in zip(records, atlas.units)]}

    def picture(width: int) -> Group:
        vectors = " / ".join(atlas.vectors)
        layers = ", ".join(map(str, atlas.layers))
        title = Text(f"atlas of {len(atlas.units):,} {vectors} units (layer{'s' if len(atlas.layers) > 1 else ''} "
                     f"{layers}) over {atlas.characters:,} characters{f' of {where}' if where else ''}   {source}",
                     style="bold")
        parts: list[RenderableType] = [title, Text(""), _features_table(features)]
        if atlas.absent:
            parts.append(Text(f"not in this text (constant): {', '.join(atlas.absent)}", style="dim"))
        parts += [Text(""), *_units_tables(text, atlas, top, width)]
        if top is not None and top < len(atlas.units):
            parts.append(Text(f"… {len(atlas.units) - top:,} more units (--top, or --format tsv for all)", style="dim"))
        if atlas.effects is not None:
            parts.append(Text(_ablation_line(atlas), style="dim"))
        parts += [Text(""), Text(atlas.rule, style="dim")]
        return Group(*parts)

    return Output(RECORD_COLUMNS, records, document, picture)
