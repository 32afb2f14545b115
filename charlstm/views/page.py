"""One self-contained HTML page of a model reading a text: the text coloured by any neuron, chosen in
the page.

The page holds everything inline — its style (page.css), its script (page.js over the shared
model.js and colours.js), the text and the model's weights (weights.py) — and loads nothing from the
network. It holds no traced values: on load the browser runs the model over the text once, keeping
every layer's state at each character, and computes any unit of any vector from those states, and
the model's guesses after a character from the last layer's. What Python measured rides along: each
unit's colour scale, chosen by colours.vector_scale as in the terminal (the script only draws), and
the atlas. A page holds at most the characters `page_chars` allows (the characters it shows and the
work it asks of the browser), and says so when it holds fewer than the text.

A page is drawn in two steps: `page_facts` gathers the facts (the text, the model, the scales, the
atlas) and `render_page` draws them with the colours, the glyphs (glyphs.py, the one table of
invisible characters), the style and the script. A page embeds its facts, so `redraw` draws a page
again with today's drawing code (`python -m charlstm.views.page PAGE...` redraws pages in place); a
page whose facts hold traces instead of a model is refused with the command that draws it anew.

Safety: every character of the text is HTML-escaped into its own <span>; the data travels as JSON
in a <script type="application/json"> block with <, > and & written as \\u003c, \\u003e, \\u0026,
so "</script>" in a corpus cannot end the block. The script only ever sets textContent.

The selection lives in the URL hash (#layer=2&vector=cell&neuron=42&pos=17): a link opens the
same view, and a test can drive the page without a mouse. Builds strings; run as a script, it
redraws the pages it is given in place (through files.write_file).
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources

import numpy as np

from .. import memory
from ..errors import MemoryBudgetError, PageError
from ..files import PAGE_GENERATOR  # the mark that lets a later --html replace this page
from .colours import BLUE, GREEN, RED, WHITE, fixed_scale, is_gate, vector_scale
from .glyphs import alone, glyph, single_line
from .weights import network_facts

#: The most characters a page shows: each is its own <span>, and the browser keeps every layer's
#: state at each.
PAGE_MOST_CHARS = 100_000
#: The most multiply-adds the page's one pass over its text asks of the browser (characters × the
#: recurrent products of every layer, `page_work`): what the model page steps at (benchmarks/README.md)
#: in seconds, never minutes.
PAGE_WORK = 20_000_000_000
#: The most state values (characters × layers × H, twice with a cell state) a page keeps in the browser.
PAGE_STATES = 64_000_000

#: Units listed per feature in the page's atlas index when it is filtered by that feature.
PAGE_RANKED = 50

#: The model's likeliest next characters shown under a hovered character.
PAGE_GUESSES = 5

#: The key of the page's data that holds what drawing adds to the facts.
_DRAWN = "drawn"

#: Characters whose effect the page keeps after their glyph: a line break still ends the line, a
#: tab still indents.
_KEPT = "\n\t"


def page_work(config) -> int:
    """Multiply-adds per character of the page's pass for a model of `config` (a ModelConfig): each
    layer's W_hh h′ and, above the first (a table lookup), W_ih x; the head is left for hovers."""
    G, H, L = config.kind.gates, config.hidden_size, config.num_layers
    return G * H * H * (2 * L - 1)


def page_chars(length: int, config) -> int:
    """How many leading characters of a `length`-character text a page of a model of `config` holds:
    at most PAGE_MOST_CHARS, PAGE_WORK multiply-adds and PAGE_STATES kept values (at least one)."""
    states = config.num_layers * config.hidden_size * (2 if config.kind.cell_state else 1)
    return min(length, PAGE_MOST_CHARS, max(1, PAGE_WORK // page_work(config)), max(1, PAGE_STATES // states))


#: Copies of the weights (as base64: 4/3 of their bytes) that drawing a page holds at once at most: the
#: packed arrays, the page's JSON and its escaped copy, the page and its bytes; a text beyond Latin-1
#: makes each string four bytes a character.
_PAGE_COPIES = 12
#: Bytes held per character of the text while a page is drawn: its span and its JSON, with their copies.
_PAGE_CHAR_BYTES = 512


def page_need(config) -> memory.Need:
    """What drawing a page of a model of `config` holds beyond its trace (memory.Need)."""
    return memory.Need(fixed=memory.weights(config) * 4 // 3 * _PAGE_COPIES, per_char=_PAGE_CHAR_BYTES)


def check_page(config, instead: str = "explore it with the terminal's views (inspect --atlas, --find, --top)") -> None:
    """Refuse, in one MemoryBudgetError before any work, a model whose page (the inspect page or the
    model page: both embed the weights) cannot be drawn within the memory budget even for one
    character (page_need); the message ends with what to do `instead`."""
    need = page_need(config)
    if need.most_chars() == 0:
        raise MemoryBudgetError(f"a page of this model holds its {config.parameter_count:,} weights several times over "
                                f"while it is drawn: {memory.over_budget(need, 1)}; {instead}")


def scaled_vectors(vectors) -> list[str]:
    """Of the vectors a page offers, those whose colour scale their values choose (not colours.fixed_scale):
    what the page's trace must hold; hidden (in every cell) when there is none."""
    return [v for v in vectors if not fixed_scale(v)] or ["hidden"]


def cut_notice(shown: int, length: int, config) -> str:
    """What a page of a model of `config` says when it holds only the first `shown` of `length`
    characters ("" when all)."""
    if shown >= length:
        return ""
    return (f"This page shows the first {shown:,} of {length:,} characters: the browser runs the model over every "
            f"character shown ({page_work(config):,} multiply-adds a character for this model), and a page asks for "
            f"at most {PAGE_MOST_CHARS:,} characters and {PAGE_WORK:,} multiply-adds. For a later stretch, give "
            "that text (--text-file).")


# ---------------------------------------------------------------- the facts a page embeds

def _scales(trace, layers, vectors) -> dict:
    """Each unit's colour scale, by layer and vector: colours.vector_scale of the trace's values, or of
    none for a vector on a fixed scale that the trace need not hold."""
    H = trace.hidden_size
    none = np.zeros((0, H), np.float32)

    def scale(layer: int, name: str) -> list[float]:
        held = trace.layers[layer - 1].get(name)
        assert held is not None or fixed_scale(name), f"the scale of {name} needs its values in the trace"
        values = held.numpy() if held is not None else none
        return [float(v) for v in np.broadcast_to(vector_scale(name, values), (H,))]

    return {str(layer): {name: scale(layer, name) for name in vectors} for layer in layers}


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
                round(u.input_share, 3), None if bpc is None else round(bpc, 4), single_line(promotes), single_line(suppresses)]

    detail = [{"lo": round(p.lo, 4), "hi": round(p.hi, 4), "counts": list(p.counts),
               "examples": [[round(w.value, 3), single_line(text[w.start : w.peak]), single_line(text[w.peak]),
                             single_line(text[w.peak + 1 : w.end])]
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



def _atlas_source(atlas, where: str | None) -> str:
    """Which text and vectors the index ranked, in one line."""
    layers = f"layer{'s' if len(atlas.layers) > 1 else ''} {', '.join(map(str, atlas.layers))}"
    of = f" of {where}" if where else ""
    return (f"ranked on {atlas.characters:,} characters{of}; {'/'.join(atlas.vectors)} units of {layers}, as "
            "`charlstm inspect --atlas` ranks them")


def page_facts(trace, model, vocab_chars, title: str, layer: int, vector: str, neuron: int, layers=None, vectors=None,
               atlas=None, guesses: bool = True, feature: str | None = None, atlas_text: str | None = None,
               portraits=None, where: str | None = None) -> dict:
    """What a page of `model` (a CharModel, its vocabulary's characters `vocab_chars`) reading the text
    of `trace` (an inspection.tracing.Trace) shows, as JSON-ready data: the text, the model
    (weights.network_facts), the `layers` and `vectors` it offers (default: the trace's) with each
    unit's colour scale (a vector whose scale depends on its values must be in the trace), the view
    it opens on (layer, vector, neuron); with `guesses`, the model's guesses under a hovered
    character; with an atlas (of this text) its index, filtered by `feature` at first; with
    `atlas_text` (the text the atlas read, which may be longer than the trace's) the first units'
    `portraits` and `where` that text came from."""
    layers = list(layers or trace.traced_layers)
    vectors = list(vectors or trace.vectors)
    return {
        "title": title,
        "length": len(trace.text),
        "chars": list(trace.text),
        "vocab": list(vocab_chars),
        "layers": layers,
        "vectors": vectors,
        "initial": {"layer": layer, "vector": vector, "neuron": neuron},
        "model": network_facts(model),
        "scales": _scales(trace, layers, vectors),
        "atlas": _atlas_data(atlas, atlas_text, portraits, where) if atlas is not None else None,
        "filter": feature if atlas is not None and feature in atlas.features else "",
        "predict": {"k": min(PAGE_GUESSES, len(vocab_chars))} if guesses else None,
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
    drawn = {"gates": sorted(v for v in facts["vectors"] if is_gate(v)),
             "colors": {"white": WHITE, "red": RED, "blue": BLUE, "green": GREEN},
             "vocabShown": [alone(c) for c in facts["vocab"]]}
    notice_html = f'<p class="notice">{html.escape(notice)}</p>' if notice else ""
    return _TEMPLATE.format(head=page_head(facts["title"], asset("page.css")), title=html.escape(facts["title"]),
                            notice=notice_html,
                            spans="".join(map(_span, facts["chars"])),
                            tail=page_tail({**facts, _DRAWN: drawn}, asset("page.js")))


def build_page(trace, model, vocab_chars, title: str, layer: int, vector: str, neuron: int, notice: str = "",
               **facts) -> str:
    """The page of `model` reading the text of `trace`, opening on (layer, vector, neuron): `render_page`
    of `page_facts` (`facts`: its other arguments by name)."""
    return render_page(page_facts(trace, model, vocab_chars, title, layer, vector, neuron, **facts), notice)


def read_page(page: str) -> tuple[dict, str]:
    """The facts and the notice a page was drawn from (what `render_page` needs to draw it again); a
    PageError for a page whose facts hold traces instead of a model."""
    data = json.loads(re.search(r'<script type="application/json" id="charlstm-data">(.*?)</script>', page,
                                re.S).group(1))
    if "model" not in data:
        raise PageError("this page holds traces, not a model, and today's page runs the model in the browser: "
                           "draw it again with `charlstm inspect CHECKPOINT --html PAGE` and the options it was made with")
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

    from ..errors import one_line
    from ..files import write_file

    for name in sys.argv[1:]:
        try:
            drawn = redraw(Path(name).read_text(encoding="utf-8"))
        except PageError as error:
            sys.exit(one_line(f"Error: {name}: {error}"))
        write_file(name, drawn.encode("utf-8"))
