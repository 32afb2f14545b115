"""The model as a page: one self-contained HTML file that runs a trained model in the browser's own
JavaScript (web.js over the shared model.js) — generation, the next character guessed as you type,
any unit over the typed text, and the cell drawn for one unit at one character.

What it holds: the model as weights.py arranges it for the browser (cell kind, sizes, the weights
as base64 of little-endian float32); the vocabulary; the sampling defaults and bounds of
config.SampleConfig; the colours and which vectors sit on a fixed scale (colours.py); and what the
model is (size, corpus, steps, validation bits/char, the command that trains it again). It does not
hold the training state or the corpus.

The step math in model.js mirrors model/cells.py, gate for gate; tests/views/test_web.py pins it to
`charlstm sample --temperature 0` and `charlstm inspect --format json` in a real browser.

Safety and the network are page.py's: the same Content-Security-Policy (nothing is fetched; the
page opens from file://), the same JSON embedding (`script_json`: no '<', '>', '&', U+2028 or
U+2029 outside \\u escapes), text only ever set as textContent. Builds strings; writes nothing.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path

from ..config import GATE_VECTORS, UNKNOWN_POLICIES, ModelConfig, SampleConfig, TrainConfig, bounds
from ..files import BEST
from ..generation.sampling import start_character
from .atlas import bits_lost
from .colours import BLUE, GREEN, RED, WHITE, fixed_scale
from .glyphs import alone, glyph, single_line
from .page import asset, check_page, page_head, page_tail
from .weights import network_facts

#: The unknown-character policies a page offers: a page never refuses what is typed ("error").
PAGE_POLICIES = tuple(p for p in UNKNOWN_POLICIES if p != "error")

#: TrainConfig fields the retraining command repeats when a run set them away from their default.
_RECIPE = ("batch_size", "seq_len", "learning_rate", "short_windows", "warmup_steps", "weight_decay", "grad_clip",
           "ema_decay", "seed", "min_char_count")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _corpus_names(info) -> list[str]:
    """The corpus files a run read, by name: where they lay on the machine that trained it says
    nothing to the reader of a page sent elsewhere."""
    paths = info.corpus.paths if info is not None and info.corpus is not None else ()
    return [Path(path).name for path in paths]


def retrain_command(config: ModelConfig, info) -> str:
    """The `charlstm train` command of this model's shape and recipe (`info`: the checkpoint's RunInfo
    or None): its corpus files by name, cell and sizes, the training settings it changed, and its
    steps."""
    words = ["charlstm", "train", *(_corpus_names(info) or ["CORPUS.txt"])]
    for name in ("cell", "num_layers", "hidden_size", "embedding_size", "dropout", "forget_bias"):
        if name in ("cell", "num_layers", "hidden_size", "embedding_size") or getattr(config, name):
            words += [_option(name), str(getattr(config, name))]
    if info is not None:
        recipe, default = info.train_config, TrainConfig()
        words += [w for name in _RECIPE if getattr(recipe, name) != getattr(default, name)
                  for w in (_option(name), str(getattr(recipe, name)))]
        words += ["--max-steps", str(info.step)]
    return shlex.join(words)


def about(loaded, title: str) -> dict:
    """What the model is: its size, corpus, training steps, best validation bits/char and the command
    that trains it again (None where the checkpoint does not record it)."""
    config, info = loaded.config, loaded.run_info
    return {"title": title, "cell": config.cell, "layers": config.num_layers, "hidden": config.hidden_size,
            "embedding": config.embedding_size, "vocab": config.vocab_size,
            "parameters": sum(t.numel() for t in loaded.model_state.values()),
            "corpus": ", ".join(_corpus_names(info)) or None,
            "corpusChars": info.corpus_chars if info is not None else None,
            "steps": info.step if info is not None else None,
            "valBpc": info.best_val_bpc if info is not None else None,
            "command": retrain_command(config, info)}


def _sampling() -> dict:
    """SampleConfig's defaults and bounds, as the page's controls take them."""
    out = {}
    for name in ("length", "temperature", "top_k", "top_p", "seed"):
        accepts = bounds(SampleConfig, name)
        out[name] = {"default": getattr(SampleConfig, name), "low": accepts.low, "high": accepts.high,
                     "floor": accepts.floor, "lowOpen": accepts.low_open}
    return out


def web_facts(loaded, model, title: str, atlas=None) -> dict:
    """Everything the page embeds, JSON-ready: the model (cell kind, sizes, vocabulary, weights), the
    sampling settings, the colours, what the model is, and the atlas index if given."""
    vocab = loaded.vocab
    return {
        **network_facts(model),
        "vocab": list(vocab.chars), "alone": [alone(c) for c in vocab.chars],
        "start": start_character(vocab), "substitute": vocab.substitute, "policies": list(PAGE_POLICIES),
        "sampling": _sampling(),
        "about": about(loaded, title),
        "atlas": atlas,
        "drawn": {"gates": sorted(GATE_VECTORS), "fixed": [v for v in model.config.vectors if fixed_scale(v)],
                  "colors": {"white": WHITE, "red": RED, "blue": BLUE, "green": GREEN}},
    }


def glyphs_of(chars) -> dict:
    """How the coloured strip shows each character that has a glyph (glyphs.py): line break, tab …"""
    return {c: glyph(c) for c in chars if glyph(c) != c}


def render_web(facts: dict) -> str:
    """The page of `facts` (from web_facts)."""
    data = {**facts, "glyphs": glyphs_of(facts["vocab"])}
    title = facts["about"]["title"]
    return _TEMPLATE.format(head=page_head(title, asset("web.css")), title=html.escape(title),
                            tail=page_tail(data, asset("web.js")))


def build_web(loaded, model, title: str, atlas=None) -> str:
    """The page of a loaded checkpoint and its model: `render_web` of `web_facts`."""
    return render_web(web_facts(loaded, model, title, atlas))


_TEMPLATE = """{head}<body>
<header>
<h1>charlstm model<small>{title}</small></h1>
<div id="about"></div>
</header>
<main>
<section id="generate"><h2>generate</h2>
<div class="controls">
<label>prime <textarea id="prime" rows="2" cols="40" spellcheck="false"></textarea></label>
<label>length <input id="length" type="number" step="1"></label>
<label>temperature <input id="temperature" type="number" step="0.1"></label>
<label>top-k <input id="top-k" type="number" step="1" placeholder="all"></label>
<label>top-p <input id="top-p" type="number" step="0.05" placeholder="1"></label>
<label>seed <input id="seed" type="number" step="1" placeholder="random"></label>
<label>stop <input id="stop" type="text" placeholder="e.g. \\n\\n"></label>
<label>unknown characters <select id="unknown"></select></label>
<button id="go">generate</button> <button id="halt">stop</button>
</div>
<p id="prime-note" class="notice" hidden></p>
<pre id="output"></pre>
<p class="dim">Seeded sampling repeats in this page (same seed, same settings, same text), but it draws
from the page's own random generator, not PyTorch's: <code>charlstm sample --seed</code> writes other text.
Temperature 0 picks the likeliest character and writes what <code>charlstm sample --temperature 0</code> writes.</p>
</section>
<section id="reader"><h2>type, and watch a unit</h2>
<textarea id="typed" rows="3" spellcheck="false" placeholder="type here"></textarea>
<p id="typed-note" class="notice" hidden></p>
<div id="guesses"></div>
<div class="controls">
<label>layer <select id="layer"></select></label>
<label>vector <select id="vector"></select></label>
<label>unit <input id="neuron" type="number" min="0" step="1"></label>
<span class="legend"><span id="ramp-lo"></span><span class="ramp" id="ramp"></span><span id="ramp-hi"></span></span>
<span id="label"></span>
</div>
<div id="strip"></div>
<div id="info" class="dim">hover a character for its value; click one (or ← →) to draw the cell there</div>
<div id="diagram"></div>
<pre id="values" hidden></pre>
</section>
<aside id="atlas" hidden><h2>atlas</h2><p class="dim" id="atlas-text"></p><ul id="atlas-list"></ul></aside>
</main>
{tail}"""


#: Units the page's atlas index lists: every unit with a verdict word, else (none earned one) this many
#: of those furthest above chance.
ATLAS_SHOWN = 40


def atlas_index(loaded, model, text_file: str | None = None) -> tuple[dict | None, str]:
    """The atlas of every layer's memory units (config.CellKind.memory), as `inspect --atlas` builds it
    on `text_file` or the last ANALYSIS_LENGTH characters of the training corpus (else a fresh sample),
    for the page's index: {"units": [[layer, vector, unit, label], …], "text": where the text came
    from, "vectors": the vectors it mapped}; and a note. None
    (and the reason) when no feature varies on that text."""
    from ..errors import FeatureError
    from ..inspection.atlas import atlas_features, build_atlas, untrained_like
    from ..inspection.effects import unit_effects
    from ..inspection.texts import inspect_text
    from ..inspection.tracing import trace

    text, note = inspect_text(loaded, model, text_file=text_file, unknown="replace", analysis=True)
    layers, vectors = list(range(1, loaded.config.num_layers + 1)), loaded.config.kind.memory
    result, baseline = (trace(m, loaded.vocab, text, vectors=vectors, layers=layers, logits=False)
                        for m in (model, untrained_like(model)))
    try:
        atlas = build_atlas(result, atlas_features(text), vectors, layers, baseline=baseline)
    except FeatureError as error:
        return None, f"no atlas index: {error}"
    del result, baseline
    atlas.effects = unit_effects(model, loaded.vocab, text, atlas.keys, atlas.means, leading=atlas.rows(atlas.units))
    named = [u for u in atlas.units if u.verdict in ("tracks", "reacts", "weak")] or atlas.units[:ATLAS_SHOWN]
    units = [[u.layer, u.vector, u.unit, _label(atlas, u)] for u in named]
    where = note or f"{len(text):,} characters of {text_file}"
    return {"units": units, "text": where, "vectors": list(vectors)}, f"atlas index: {len(units)} units; {where}"


def _label(atlas, u) -> str:
    """A unit's line in the index: its label and r, its verdict, what holding it at its mean costs and the
    characters it promotes, as `inspect --atlas` gives them."""
    bpc, promotes, _ = atlas.effect(u)
    return (("reacts to " if u.kind == "input" else "") + f"{u.feature} r {u.label_r:+.2f}"
            + (f" ({u.verdict})" if u.verdict else "") + ("" if bpc is None else f", ablation {bits_lost(bpc)} bits/char")
            + (f", promotes {single_line(promotes)}" if promotes else ""))


def export_page(source, with_atlas: bool = False, text_file: str | None = None, notice=None) -> tuple[bytes, Path]:
    """The page of the checkpoint `source` names (a run folder's best checkpoint, or a checkpoint
    file; default the most recent run, as `export --out` resolves it), as UTF-8, and that path.
    With `with_atlas`, the page indexes the units the atlas labels (`atlas_index`, on `text_file` if
    given), and what it says about its text goes to `notice`."""
    from ..runs.checkpoint import load
    from ..runs.folder import resolve

    path = resolve(source)
    loaded = load(path)
    check_page(loaded.config, instead="share it as a folder with export --out")
    model = loaded.model("cpu")
    atlas = None
    if with_atlas:
        atlas, said = atlas_index(loaded, model, text_file)
        if notice is not None:
            notice(said)
    page = build_web(loaded, model, path.parent.name if path.name == BEST else path.stem, atlas)
    return page.encode("utf-8"), path
