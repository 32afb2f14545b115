"""One self-contained HTML page of a trace: the text coloured by any neuron, chosen in the page.

The page holds everything inline — its style (page.css), its script (page.js), and the trace — and
loads nothing from the network. Every unit of every traced layer and vector is embedded, quantised
per unit to 16 bits over that unit's own min..max in the text (within half a step of 1/65535 of its
range, so the values shown to three decimals on hover are right), with its colour scale, chosen by
colours.vector_scale as in the terminal (the script only draws); a page stops at a size budget and
says so (see `page_chars`).

A page is drawn in two steps: `page_facts` gathers what was measured (the text, the quantised
traces, the atlas, the model's guesses) and `render_page` draws them with the colours, the glyphs
(glyphs.py, the one table of invisible characters), the style and the script. A page embeds its
facts, so `redraw` draws a page again with today's drawing code (docs/findings/*.html are kept so;
`python -m charlstm.views.page PAGE...` redraws pages in place).

Safety: every character of the text is HTML-escaped into its own <span>; the data travels as JSON
in a <script type="application/json"> block with <, > and & written as \\u003c, \\u003e, \\u0026,
so "</script>" in a corpus cannot end the block. The script only ever sets textContent.

The selection lives in the URL hash (#layer=2&vector=cell&neuron=42&pos=17): a link opens the
same view, and a test can drive the page without a mouse. Builds strings; run as a script, it
redraws the pages it is given in place (through files.write_file).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from importlib import resources

import numpy as np

from ..files import PAGE_GENERATOR  # the mark that lets a later --html replace this page
from .colours import BLUE, GREEN, RED, WHITE, is_gate, vector_scale
from .glyphs import alone, glyph

#: Most values (characters × layers × vectors × units) one page embeds, 2 bytes each before base64.
PAGE_VALUE_BUDGET = 8_000_000

#: Units listed per feature in the page's atlas index when it is filtered by that feature.
PAGE_RANKED = 50

#: The key of the page's data that holds what drawing adds to the facts.
_DRAWN = "drawn"

#: Characters whose effect the page keeps after their glyph: a line break still ends the line, a
#: tab still indents.
_KEPT = "\n\t"


def page_chars(length: int, num_layers: int, num_vectors: int, hidden_size: int, budget: int | None = None) -> int:
    """How many leading characters of a `length`-character text a page can hold within `budget`
    values (default PAGE_VALUE_BUDGET)."""
    budget = PAGE_VALUE_BUDGET if budget is None else budget
    per_char = max(1, num_layers * num_vectors * hidden_size)
    return min(length, max(1, budget // per_char))


def cut_notice(shown: int, length: int, num_layers: int, num_vectors: int) -> str:
    """What a page says when it holds only the first `shown` of `length` characters ("" when all)."""
    if shown >= length:
        return ""
    return (f"This page shows the first {shown:,} of {length:,} characters: it holds every unit of "
            f"{num_layers} layer(s) × {num_vectors} vector(s). For more characters, pick fewer with "
            f"--layer and --vector (e.g. --vector hidden,cell).")


# ---------------------------------------------------------------- the facts a page embeds

def _quantise(values: np.ndarray) -> dict:
    """(T, H) float → per-unit lo, hi and base64 of uint16 codes laid out unit-major (H, T), little-endian."""
    lo = values.min(axis=0) if len(values) else np.zeros(values.shape[1], np.float32)
    hi = values.max(axis=0) if len(values) else np.zeros(values.shape[1], np.float32)
    span = np.where(hi > lo, hi - lo, 1.0)
    codes = np.rint((values - lo) / span * 65535.0).clip(0, 65535).astype("<u2")       # (T, H)
    return {"lo": [float(v) for v in lo], "hi": [float(v) for v in hi],
            "q": base64.b64encode(np.ascontiguousarray(codes.T).tobytes()).decode("ascii")}


def _unit_data(vector: str, values: np.ndarray) -> dict:
    """One vector of one layer, (T, H): its quantised values and each unit's colour scale, chosen
    by colours.vector_scale as in the terminal."""
    return {**_quantise(values), "scale": [float(v) for v in vector_scale(vector, values)]}


#: Units of the page's atlas index shown with their histogram and an example from each quantile.
PAGE_DETAILED = 200


def _atlas_data(atlas, text: str | None = None, portraits=None, where: str | None = None) -> dict:
    """The atlas (an inspection.atlas.Atlas) as the page's index: every unit with its label, best first,
    per feature the PAGE_RANKED units of highest |r| with it, where its text came from, and for the
    first units their portraits (inspection.portraits, in atlas.units order) with examples cut from `text`."""
    index = {name: k for k, name in enumerate(atlas.features)}

    def row(u) -> list:
        bpc, promotes, suppresses = atlas.effect(u)
        # layer, vector, unit, feature (index), r, chance, saturation, verdict, then kind, the label's r and its
        # held-out r and chance, the input share, ablation (bits/char, None if not measured), promotes, suppresses
        return [u.layer, u.vector, u.unit, index[u.feature], round(u.r, 4), round(u.chance, 4), round(u.saturation, 3),
                u.verdict, u.kind, round(u.label_r, 4), round(u.heldout_r, 4), round(u.label_chance, 4),
                round(u.input_share, 3), None if bpc is None else round(bpc, 4), _shown(promotes), _shown(suppresses)]

    detail = [{"lo": round(p.lo, 4), "hi": round(p.hi, 4), "counts": list(p.counts),
               "examples": [[round(w.value, 3), _shown(text[w.start : w.peak]), _shown(text[w.peak]),
                             _shown(text[w.peak + 1 : w.end])]
                            for w in p.examples]} for p in (portraits or [])] if text is not None else []
    return {
        "features": list(atlas.features),
        "chance": [round(atlas.chance[name], 4) for name in atlas.features],
        "tracking": [atlas.tracking(name) for name in atlas.features],
        "rule": atlas.rule,
        "text": _atlas_source(atlas, where),
        "ablation": None if atlas.effects is None else atlas.effects.characters,
        "units": [row(u) for u in atlas.units],
        "detail": detail,
        "ranked": [[[layer, vector, unit, round(r, 4)] for layer, vector, unit, r in atlas.ranking(name, PAGE_RANKED)]
                   for name in atlas.features],
    }


def _shown(text: str) -> str:
    """Text as the page's index shows it: every invisible character as its glyph."""
    return "".join(glyph(c) for c in text)


def _atlas_source(atlas, where: str | None) -> str:
    """Which text and vectors the index ranked, in one line."""
    layers = f"layer{'s' if len(atlas.layers) > 1 else ''} {', '.join(map(str, atlas.layers))}"
    of = f" of {where}" if where else ""
    return (f"ranked on {atlas.characters:,} characters{of}; {'/'.join(atlas.vectors)} units of {layers}, as "
            "`charlstm inspect --atlas` ranks them")


def _prediction_data(predictions, chars) -> dict:
    """Top next-character guesses (an inspection.atlas.Predictions) as ids and basis points (1/10000)."""
    return {"vocab": list(chars), "k": int(predictions.ids.shape[1]),
            "ids": predictions.ids.reshape(-1).tolist(),
            "p": np.rint(predictions.probs * 10000).astype(int).reshape(-1).tolist(),
            "actual": [-1 if v != v else int(round(v * 10000)) for v in predictions.actual.tolist()]}


def page_facts(trace, title: str, layer: int, vector: str, neuron: int, atlas=None, predictions=None,
               vocab_chars=None, feature: str | None = None, atlas_text: str | None = None, portraits=None,
               where: str | None = None) -> dict:
    """What a page of `trace` (an inspection.tracing.Trace: every traced layer and vector) shows, as JSON-ready data:
    the text, the quantised traces, the view it opens on (layer, vector, neuron); with an atlas (of
    this trace) its index, filtered by `feature` at first; with predictions and the vocabulary's
    characters, the model's guesses after each character; with `atlas_text` (the text the atlas read, which
    may be longer than the trace's) the first units' `portraits` and `where` that text came from."""
    return {
        "title": title,
        "cell": trace.cell,
        "length": len(trace.text),
        "chars": list(trace.text),
        "hiddenSize": trace.hidden_size,
        "layers": trace.traced_layers,
        "vectors": list(trace.vectors),
        "initial": {"layer": layer, "vector": vector, "neuron": neuron},
        "traces": {str(n): {name: _unit_data(name, values.numpy()) for name, values in trace.layers[n - 1].items()}
                   for n in trace.traced_layers},
        "atlas": _atlas_data(atlas, atlas_text, portraits, where) if atlas is not None else None,
        "filter": feature if atlas is not None and feature in atlas.features else "",
        "predict": _prediction_data(predictions, vocab_chars) if predictions is not None else None,
    }


# ---------------------------------------------------------------- drawing them

@functools.cache
def asset(name: str) -> str:
    """A page's style or script (page.css, page.js, colours.js, model.js …), package data beside this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


#: What every charlstm page may load: nothing from anywhere; only its own inline style and script.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

#: Characters written as \\u escapes in a page's JSON: none can end a <script> block or a line of it.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: dict) -> str:
    """JSON that is safe inside a <script> element: no '<', '>', '&', U+2028 or U+2029 survives
    outside \\u escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.translate(str.maketrans(_JSON_ESCAPES))


def _span(char: str) -> str:
    shown = glyph(char) + (char if char in _KEPT else "")
    return f"<span>{html.escape(shown)}</span>"


def page_head(title: str, style: str) -> str:
    """The head of every charlstm page with a script: the generator mark (files.PAGE_GENERATOR), the
    Content-Security-Policy (CSP), the title (escaped here) and the inline `style`."""
    return _HEAD.format(generator=PAGE_GENERATOR, csp=CSP, title=html.escape(title), style=style)


def page_tail(data: dict, script: str) -> str:
    """The end of every charlstm page with a script: `data` as JSON in its own block (script_json),
    what every page shares in one script (the colours, colours.js; the model run in the browser,
    model.js), then the page's `script`."""
    return _TAIL.format(data=script_json(data), shared=asset("colours.js") + asset("model.js"), script=script)


_TAIL = """<script type="application/json" id="charlstm-data">{data}</script>
<script>
{shared}</script>
<script>
{script}</script>
</body>
</html>
"""


_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{generator}
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>charlstm · {title}</title>
<style>
{style}</style>
</head>
"""


def render_page(facts: dict, notice: str = "") -> str:
    """The page showing `facts` (from page_facts), with `notice` above the text when given. The
    script receives the facts and, under "drawn", what drawing adds to them: which vectors are
    gates, the colours, and each vocabulary character as it is shown standing alone."""
    predict = facts["predict"]
    drawn = {"gates": sorted(v for v in facts["vectors"] if is_gate(v)),
             "colors": {"white": WHITE, "red": RED, "blue": BLUE, "green": GREEN},
             "vocabShown": [alone(c) for c in predict["vocab"]] if predict is not None else []}
    notice_html = f'<p class="notice">{html.escape(notice)}</p>' if notice else ""
    return _TEMPLATE.format(head=page_head(facts["title"], asset("page.css")), title=html.escape(facts["title"]),
                            notice=notice_html,
                            spans="".join(map(_span, facts["chars"])),
                            tail=page_tail({**facts, _DRAWN: drawn}, asset("page.js")))


def build_page(trace, title: str, layer: int, vector: str, neuron: int, notice: str = "", atlas=None,
               predictions=None, vocab_chars=None, feature: str | None = None, **atlas_index) -> str:
    """The page for a trace, opening on (layer, vector, neuron): `render_page` of `page_facts`
    (`atlas_index`: its atlas_text, portraits and where)."""
    facts = page_facts(trace, title, layer, vector, neuron, atlas, predictions, vocab_chars, feature, **atlas_index)
    return render_page(facts, notice)


def read_page(page: str) -> tuple[dict, str]:
    """The facts and the notice a page was drawn from (what `render_page` needs to draw it again)."""
    data = json.loads(re.search(r'<script type="application/json" id="charlstm-data">(.*?)</script>', page,
                                re.S).group(1))
    facts = {key: value for key, value in data.items() if key != _DRAWN}
    notice = re.search(r'<p class="notice">(.*?)</p>', page, re.S)
    return facts, html.unescape(notice.group(1)) if notice else ""


def redraw(page: str) -> str:
    """`page` drawn again from the facts it embeds, by today's render_page."""
    return render_page(*read_page(page))


_TEMPLATE = """{head}<body>
<header>
<h1>charlstm inspect<small>{title}</small></h1>
<div class="controls">
<span><label for="layer">layer</label> <select id="layer"></select></span>
<span><label for="vector">vector</label> <select id="vector"></select></span>
<span><label for="neuron">neuron</label> <button id="prev" title="previous neuron (←)">◀</button>
<input id="neuron" type="number" min="0" step="1"> <button id="next" title="next neuron (→)">▶</button>
<label id="units"></label></span>
<span class="legend"><span id="ramp-lo"></span><span class="ramp" id="ramp"></span><span id="ramp-hi"></span></span>
<span id="stats"></span>
</div>
<div id="label"></div>
<div id="info"></div>
{notice}
</header>
<main><div id="reader"><div id="text">{spans}</div>
<p class="help">Red negative, blue positive (hidden and candidate on −1..1, the cell scaled to its largest |value|); gates white→green on 0..1. ← → or j k: previous / next neuron. Hover a character: the model's top guesses for the next one. Select a stretch of text: the units of this layer and vector that are on throughout it, and where else they are on together. The view is in the address (#layer=…&amp;vector=…&amp;neuron=…): copy it to share.</p>
</div>
<aside>
<section id="match-panel"><h2>match a selection</h2>
<label for="threshold">on when value ≥</label> <input id="threshold" type="number" min="-1" max="1" step="0.05" value="0.5"> <span class="dim">of the unit's full scale</span>
<div id="match-summary" class="dim">select a stretch of the text</div>
<ul id="match-units"></ul></section>
<section id="atlas"><h2>atlas</h2>
<p id="atlas-text" class="dim"></p>
<div id="atlas-unit"></div>
<select id="atlas-filter"></select>
<div id="atlas-count" class="dim"></div>
<table id="atlas-list"><thead><tr><th>unit</th><th>feature</th><th>r</th><th>held-out</th><th>chance</th><th>verdict</th><th>ablation</th><th>promotes</th></tr></thead><tbody></tbody></table>
<p id="atlas-rule" class="dim"></p></section>
</aside>
</main>
<div id="predict" hidden></div>
{tail}"""


if __name__ == "__main__":  # python -m charlstm.views.page PAGE...: redraw charlstm pages in place
    import sys
    from pathlib import Path

    from ..files import write_file

    for name in sys.argv[1:]:
        write_file(name, redraw(Path(name).read_text(encoding="utf-8")).encode("utf-8"))
