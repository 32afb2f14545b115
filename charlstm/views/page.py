"""One self-contained HTML page of a trace: the text coloured by any neuron, chosen in the page.

The page holds everything inline — CSS, a small script, and the trace — and loads nothing from the
network. Every unit of every traced layer and vector is embedded, quantised per unit to 16 bits
over that unit's own min..max in the text (error below 1/131070 of its range, so the values shown
to three decimals on hover are right), with its colour scale, chosen by render.py as for the
terminal (the script only draws); a page stops at a size budget and says so (see `page_chars`).

Safety: every character of the text is HTML-escaped into its own <span>; the data travels as JSON
in a <script type="application/json"> block with <, > and & written as \\u003c, \\u003e, \\u0026,
so "</script>" in a corpus cannot end the block. The script only ever sets textContent.

The selection lives in the URL hash (#layer=2&vector=cell&neuron=42&pos=17): a link opens the
same view, and a test can drive the page without a mouse. Builds a string; writes no files.
"""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from ..files import PAGE_GENERATOR  # the mark that lets a later --html replace this page
from .colours import BLUE, GREEN, RED, WHITE, is_gate, vector_scale
from .glyphs import alone, glyph

#: Most values (characters × layers × vectors × units) one page embeds: 2 bytes each, about
#: 21 MB of page once base64-encoded. A 2×256 LSTM with all six vectors fits 2,604 characters;
#: with hidden only, 15,625.
PAGE_VALUE_BUDGET = 8_000_000

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


def _shown(char: str) -> str:
    return glyph(char) + (char if char in _KEPT else "")


def _quantise(values: np.ndarray) -> dict:
    """(T, H) float → per-unit lo, hi and base64 of uint16 codes laid out unit-major (H, T), little-endian."""
    lo = values.min(axis=0) if len(values) else np.zeros(values.shape[1], np.float32)
    hi = values.max(axis=0) if len(values) else np.zeros(values.shape[1], np.float32)
    span = np.where(hi > lo, hi - lo, 1.0)
    codes = np.rint((values - lo) / span * 65535.0).clip(0, 65535).astype("<u2")       # (T, H)
    return {"lo": [float(v) for v in lo], "hi": [float(v) for v in hi],
            "q": base64.b64encode(np.ascontiguousarray(codes.T).tobytes()).decode("ascii")}


def _script_json(data: dict) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' survives outside \\u escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _unit_data(vector: str, values: np.ndarray) -> dict:
    """One vector of one layer, (T, H): its quantised values and each unit's colour scale, chosen
    by render.vector_scale as in the terminal."""
    return {**_quantise(values), "scale": [float(v) for v in vector_scale(vector, values)]}


#: Units listed per feature in the page's atlas index when it is filtered by that feature.
PAGE_RANKED = 50


def _atlas_data(atlas) -> dict:
    """The atlas (atlas.Atlas) as the page's index: every unit with its label, best first, and per
    feature the PAGE_RANKED units of highest |r| with it."""
    index = {name: k for k, name in enumerate(atlas.features)}
    return {
        "features": list(atlas.features),
        "chance": [round(atlas.chance[name], 4) for name in atlas.features],
        "tracking": [atlas.tracking(name) for name in atlas.features],
        "rule": atlas.rule,
        # layer, vector, unit, feature (index), r, chance, saturation, verdict
        "units": [[u.layer, u.vector, u.unit, index[u.feature], round(u.r, 4), round(u.chance, 4),
                   round(u.saturation, 3), u.verdict] for u in atlas.units],
        "ranked": [[[layer, vector, unit, round(r, 4)] for layer, vector, unit, r in atlas.ranking(name, PAGE_RANKED)]
                   for name in atlas.features],
    }


def _prediction_data(predictions, chars) -> dict:
    """Top next-character guesses (atlas.Predictions) as ids and basis points (1/10000)."""
    return {"vocab": list(chars), "shown": [alone(c) for c in chars], "k": int(predictions.ids.shape[1]),
            "ids": predictions.ids.reshape(-1).tolist(),
            "p": np.rint(predictions.probs * 10000).astype(int).reshape(-1).tolist(),
            "actual": [-1 if v != v else int(round(v * 10000)) for v in predictions.actual.tolist()]}


def build_page(trace, title: str, layer: int, vector: str, neuron: int, notice: str = "", atlas=None,
               predictions=None, vocab_chars=None, feature: str | None = None) -> str:
    """The page for a trace (a trace.Trace: every traced layer and vector), opening on (layer, vector, neuron);
    with an atlas (atlas.Atlas of this trace) an index of every unit, filtered by `feature` at first; with
    predictions (atlas.Predictions) and the vocabulary's characters, the model's guesses under each character."""
    text = trace.text
    layers = trace.traced_layers
    data = {
        "title": title,
        "cell": trace.cell,
        "length": len(text),
        "chars": list(text),
        "hiddenSize": trace.hidden_size,
        "layers": layers,
        "vectors": list(trace.vectors),
        "gates": sorted(v for v in trace.vectors if is_gate(v)),
        "initial": {"layer": layer, "vector": vector, "neuron": neuron},
        "colors": {"white": WHITE, "red": RED, "blue": BLUE, "green": GREEN},
        "traces": {str(n): {name: _unit_data(name, values.numpy()) for name, values in trace.layers[n - 1].items()}
                   for n in layers},
        "atlas": _atlas_data(atlas) if atlas is not None else None,
        "filter": feature if atlas is not None and feature in atlas.features else "",
        "predict": _prediction_data(predictions, vocab_chars) if predictions is not None else None,
    }
    spans = "".join(f"<span>{html.escape(_shown(c))}</span>" for c in text)
    notice_html = f'<p class="notice">{html.escape(notice)}</p>' if notice else ""
    return _TEMPLATE.format(generator=PAGE_GENERATOR, title=html.escape(title), notice=notice_html, spans=spans, data=_script_json(data),
                            script=_SCRIPT, style=_STYLE)


_STYLE = """
:root { --ink: #1d1d1f; --dim: #6e6e73; --line: #d2d2d7; --panel: #f5f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); }
header { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line); padding: 10px 20px 8px; }
h1 { font-size: 15px; margin: 0 0 6px; font-weight: 600; }
h1 small { color: var(--dim); font-weight: 400; margin-left: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; }
.controls label { color: var(--dim); }
select, input[type=number] { font: inherit; padding: 2px 4px; border: 1px solid var(--line); border-radius: 4px; }
input[type=number] { width: 6em; }
button { font: inherit; padding: 1px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
.legend { display: flex; align-items: center; gap: 6px; color: var(--dim); }
.ramp { width: 160px; height: 12px; border: 1px solid var(--line); border-radius: 2px; }
#stats { color: var(--dim); font-variant-numeric: tabular-nums; }
#info { margin-top: 6px; min-height: 1.45em; font: 13px/1.45 ui-monospace, "SF Mono", Menlo, Consolas, monospace; white-space: pre-wrap; }
#info b { font-weight: 600; }
.notice { margin: 6px 0 0; padding: 4px 8px; background: #fff4e5; border: 1px solid #ffd8a8; border-radius: 4px; }
main { padding: 14px 20px 40px; }
#text { font: 14px/1.7 ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-all; tab-size: 4; }
#text span { cursor: pointer; }
#text span.pinned { outline: 2px solid #000; outline-offset: -1px; }
.help { color: var(--dim); font-size: 12px; margin-top: 4px; }
main { display: flex; gap: 18px; align-items: flex-start; }
#reader { flex: 1; min-width: 0; }
aside { width: 500px; flex: none; position: sticky; top: 120px; max-height: calc(100vh - 140px); overflow-y: auto;
        border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; background: var(--panel); font-size: 13px; }
aside h2 { font-size: 13px; margin: 4px 0 6px; }
aside .dim { color: var(--dim); font-size: 12px; }
#atlas-list, #match-units { list-style: none; margin: 4px 0; padding: 0; font: 11.5px/1.5 ui-monospace, Menlo, Consolas, monospace; }
#atlas-list li, #match-units li { cursor: pointer; padding: 1px 4px; border-radius: 3px; white-space: pre; overflow: hidden; text-overflow: ellipsis; }
#atlas-list li:hover, #match-units li:hover { background: #e8e8ed; }
#atlas-list li.current { background: #dbe9f6; font-weight: 600; }
#label { color: var(--ink); font-weight: 600; }
#text span.match { box-shadow: inset 0 -3px 0 #ff7f0e; }
#predict { position: absolute; z-index: 3; background: #fff; border: 1px solid var(--line); border-radius: 4px;
           padding: 3px 6px; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; box-shadow: 0 2px 6px rgba(0,0,0,.12);
           pointer-events: none; white-space: pre; }
#predict .bar { display: inline-block; height: 8px; background: #1f77b4; vertical-align: middle; margin-left: 4px; }
"""

_SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("charlstm-data").textContent);
const spans = Array.from(document.querySelectorAll("#text span"));
const indexOf = new Map(spans.map((s, i) => [s, i]));
const C = DATA.colors;
const decoded = {};
let sel = { layer: DATA.initial.layer, vector: DATA.initial.vector, neuron: DATA.initial.neuron, pos: null };

function unitValues(layer, vector, neuron) {
  const key = layer + "/" + vector;
  if (!decoded[key]) {
    const t = DATA.traces[String(layer)][vector];
    const raw = atob(t.q);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    decoded[key] = { codes: new Uint16Array(bytes.buffer), lo: t.lo, hi: t.hi };
  }
  const d = decoded[key], T = DATA.length, lo = d.lo[neuron], span = d.hi[neuron] - lo;
  const out = new Float64Array(T), codes = d.codes.subarray(neuron * T, (neuron + 1) * T);
  for (let i = 0; i < T; i++) out[i] = lo + codes[i] / 65535 * span;
  return out;
}
const isGate = (v) => DATA.gates.includes(v);
// The |value| at full colour, one per unit, chosen in Python (colours.vector_scale) as in the terminal.
const scaleOf = (layer, vector, neuron) => DATA.traces[String(layer)][vector].scale[neuron];
function blend(a, b, w) {
  w = Math.min(Math.max(w, 0), 1);
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * w));
}
function rgbOf(value, gate, scale) {
  return gate ? blend(C.white, C.green, value / scale) : blend(C.white, value < 0 ? C.red : C.blue, Math.abs(value) / scale);
}
function colour(value, gate, scale) { return "rgb(" + rgbOf(value, gate, scale).join(", ") + ")"; }
function fmt(v) { return (v >= 0 ? "+" : "") + v.toFixed(3); }

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const layer = parseInt(p.get("layer"), 10), neuron = parseInt(p.get("neuron"), 10), pos = parseInt(p.get("pos"), 10);
  if (DATA.layers.includes(layer)) sel.layer = layer;
  if (DATA.vectors.includes(p.get("vector"))) sel.vector = p.get("vector");
  if (neuron >= 0 && neuron < DATA.hiddenSize) sel.neuron = neuron;
  sel.pos = pos >= 0 && pos < DATA.length ? pos : null;
}
function writeHash() {
  let h = "#layer=" + sel.layer + "&vector=" + sel.vector + "&neuron=" + sel.neuron;
  if (sel.pos !== null) h += "&pos=" + sel.pos;
  if (location.hash !== h) history.replaceState(null, "", h);
}

let current = null;
function render() {
  const values = unitValues(sel.layer, sel.vector, sel.neuron);
  const gate = isGate(sel.vector), scale = scaleOf(sel.layer, sel.vector, sel.neuron);
  for (let i = 0; i < spans.length; i++) {
    const rgb = rgbOf(values[i], gate, scale);
    spans[i].style.backgroundColor = "rgb(" + rgb.join(", ") + ")";
    // Black ink on light backgrounds, white on dark ones (the terminal view does the same).
    spans[i].style.color = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 ? "" : "#fff";
  }
  current = values;
  document.getElementById("layer").value = String(sel.layer);
  document.getElementById("vector").value = sel.vector;
  document.getElementById("neuron").value = String(sel.neuron);
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of values) { min = Math.min(min, v); max = Math.max(max, v); sum += v; }
  document.getElementById("stats").textContent = values.length
    ? "min " + fmt(min) + "   max " + fmt(max) + "   mean " + fmt(sum / values.length) : "";
  const ramp = document.getElementById("ramp");
  ramp.style.background = gate
    ? "linear-gradient(to right, " + colour(0, true, 1) + ", " + colour(1, true, 1) + ")"
    : "linear-gradient(to right, " + colour(-1, false, 1) + ", " + colour(0, false, 1) + ", " + colour(1, false, 1) + ")";
  document.getElementById("ramp-lo").textContent = gate ? "0" : (-scale).toFixed(2);
  document.getElementById("ramp-hi").textContent = gate ? "1" : "+" + scale.toFixed(2);
  for (const s of document.querySelectorAll("#text span.pinned")) s.classList.remove("pinned");
  if (sel.pos !== null) spans[sel.pos].classList.add("pinned");
  showInfo(sel.pos);
  if (A) markAtlas();
  writeHash();
}
function showInfo(pos) {
  const info = document.getElementById("info");
  showPredict(pos);
  if (pos === null || pos === undefined) { info.textContent = "hover over a character to see its values; click to pin it"; return; }
  const here = [];
  for (const v of DATA.vectors) {
    const vals = v === sel.vector ? current : unitValues(sel.layer, v, sel.neuron);
    here.push((v === sel.vector ? "▸" : "") + v + " " + fmt(vals[pos]));
  }
  info.textContent = "position " + pos + " " + JSON.stringify(DATA.chars[pos]) + "   layer " + sel.layer + " neuron " +
    sel.neuron + ":   " + here.join("   ");
}

function setup() {
  const layerSel = document.getElementById("layer"), vectorSel = document.getElementById("vector"), neuronIn = document.getElementById("neuron");
  for (const l of DATA.layers) layerSel.add(new Option(String(l), String(l)));
  for (const v of DATA.vectors) vectorSel.add(new Option(v, v));
  neuronIn.max = String(DATA.hiddenSize - 1);
  document.getElementById("units").textContent = "of 0–" + (DATA.hiddenSize - 1);
  layerSel.addEventListener("change", () => { sel.layer = parseInt(layerSel.value, 10); render(); });
  vectorSel.addEventListener("change", () => { sel.vector = vectorSel.value; render(); });
  const setNeuron = (n) => { if (n >= 0 && n < DATA.hiddenSize) { sel.neuron = n; render(); } };
  neuronIn.addEventListener("input", () => { const n = parseInt(neuronIn.value, 10); if (!isNaN(n)) setNeuron(n); });
  document.getElementById("prev").addEventListener("click", () => setNeuron(sel.neuron - 1));
  document.getElementById("next").addEventListener("click", () => setNeuron(sel.neuron + 1));
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight" || e.key === "j") setNeuron(sel.neuron + 1);
    if (e.key === "ArrowLeft" || e.key === "k") setNeuron(sel.neuron - 1);
  });
  const text = document.getElementById("text");
  text.addEventListener("mouseover", (e) => { const i = indexOf.get(e.target); if (i !== undefined) showInfo(i); });
  text.addEventListener("mouseleave", () => showInfo(sel.pos));
  text.addEventListener("click", (e) => { const i = indexOf.get(e.target); if (i !== undefined) { sel.pos = sel.pos === i ? null : i; render(); } });
  window.addEventListener("hashchange", () => { readHash(); render(); });
  text.addEventListener("mouseup", () => setTimeout(matchSelection, 0));
  document.getElementById("threshold").addEventListener("input", () => matchSelection(true));
  setupAtlas();
  readHash();
  render();
}

// ------------------------------------------------------------------ the atlas index (units and labels)
const A = DATA.atlas;
const labelOf = new Map();
function unitKey(layer, vector, neuron) { return layer + "/" + vector + "/" + neuron; }
function pct(bp) { return (bp / 100).toFixed(1) + "%"; }
function labelText(u) {   // u: [layer, vector, unit, feature, r, chance, saturation, verdict]
  const f = A.features[u[3]];
  return (u[7] ? u[7] + " " : "") + f + "  r " + fmt(u[4]) + " (chance " + u[5].toFixed(2) +
    ")  sat " + Math.round(u[6] * 100) + "%";
}
function openUnit(layer, vector, neuron) { sel.layer = layer; sel.vector = vector; sel.neuron = neuron; render(); }
function setupAtlas() {
  const panel = document.getElementById("atlas");
  if (!A) { panel.hidden = true; return; }
  for (const u of A.units) labelOf.set(unitKey(u[0], u[1], u[2]), u);
  const filter = document.getElementById("atlas-filter");
  filter.add(new Option("every unit, furthest above chance first", ""));
  A.features.forEach((f, k) => filter.add(new Option(f + " — " + A.tracking[k] + " tracking; top " + A.ranked[k].length + " by |r|", f)));
  filter.value = DATA.filter || "";
  filter.addEventListener("change", drawAtlas);
  document.getElementById("atlas-rule").textContent = A.rule;
  drawAtlas();
}
function drawAtlas() {
  const list = document.getElementById("atlas-list"), f = document.getElementById("atlas-filter").value;
  list.textContent = "";
  const rows = f ? A.ranked[A.features.indexOf(f)].map((x) => [x, labelOf.get(unitKey(x[0], x[1], x[2]))])
                 : A.units.slice(0, 200).map((u) => [u, u]);
  for (const [x, u] of rows) {
    const li = document.createElement("li");
    li.dataset.key = unitKey(x[0], x[1], x[2]);
    const where = ("L" + x[0] + " " + x[1] + " " + x[2]).padEnd(16);
    // filtered: r with the chosen feature, then the unit's own label where it names another feature
    li.textContent = where + (!f ? labelText(u) : "r " + fmt(x[3]) + "  " + (A.features[u[3]] === f
      ? (u[7] || "") + "  sat " + Math.round(u[6] * 100) + "%" : "label: " + labelText(u)));
    li.addEventListener("click", () => openUnit(x[0], x[1], x[2]));
    list.appendChild(li);
  }
  document.getElementById("atlas-count").textContent = f
    ? rows.length + " units with the highest |r| with " + f
    : rows.length + " of " + A.units.length + " units";
  markAtlas();
}
function markAtlas() {
  const key = unitKey(sel.layer, sel.vector, sel.neuron);
  for (const li of document.querySelectorAll("#atlas-list li")) li.classList.toggle("current", li.dataset.key === key);
  const u = A ? labelOf.get(key) : null;
  document.getElementById("label").textContent = u ? labelText(u) : "";
}

// ------------------------------------------------------- the model's next-character guesses, under each character
const P = DATA.predict;   // P.shown: each vocabulary character as it is shown standing alone (glyphs.alone)
function showPredict(pos) {
  const box = document.getElementById("predict");
  if (!P || pos === null || pos === undefined) { box.hidden = true; return; }
  box.textContent = "";
  const head = document.createElement("div");
  const next = pos + 1 < DATA.length ? DATA.chars[pos + 1] : null;
  head.textContent = "after " + JSON.stringify(DATA.chars[pos]) + " the model expects" +
    (next !== null ? "   (next is " + JSON.stringify(next) + ": " + pct(P.actual[pos]) + ")" : "");
  box.appendChild(head);
  for (let j = 0; j < P.k; j++) {
    const row = document.createElement("div"), p = P.p[pos * P.k + j];
    row.className = "guess";
    row.textContent = P.shown[P.ids[pos * P.k + j]].padEnd(2) + " " + pct(p).padStart(6);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.max(1, Math.round(p / 100)) + "px";
    row.appendChild(bar);
    box.appendChild(row);
  }
  const r = spans[pos].getBoundingClientRect();
  box.style.left = Math.max(0, r.left + window.scrollX) + "px";
  box.style.top = (r.bottom + window.scrollY + 4) + "px";
  box.hidden = false;
}

// ---------------- LSTMVis-style match: units on throughout a selected span, and where else they are on together
let selected = null;
function matchSelection(keep) {
  const s = window.getSelection();
  if (keep !== true) {
    if (!s || s.isCollapsed || !s.rangeCount) return;
    const range = s.getRangeAt(0);
    const spanOf = (node) => (node.nodeType === 1 ? node : node.parentElement).closest("#text span");
    const a = spanOf(range.startContainer), b = spanOf(range.endContainer);
    if (!a || !b || !indexOf.has(a) || !indexOf.has(b)) return;
    let i = indexOf.get(a), j = indexOf.get(b);
    if (range.endOffset === 0 && range.endContainer !== range.startContainer && j > i) j--;   // ended before b
    selected = [Math.min(i, j), Math.max(i, j)];
  }
  if (!selected) return;
  const threshold = parseFloat(document.getElementById("threshold").value);
  const [i, j] = selected, on = [], T = DATA.length;
  const vals = [];
  for (let n = 0; n < DATA.hiddenSize; n++) {
    const v = unitValues(sel.layer, sel.vector, n), scale = scaleOf(sel.layer, sel.vector, n);
    let all = true;
    for (let t = i; t <= j && all; t++) all = v[t] / scale >= threshold;
    if (all) { on.push(n); vals.push([v, scale]); }
  }
  const hits = new Uint8Array(T);
  if (on.length) for (let t = 0; t < T; t++) hits[t] = vals.every(([v, scale]) => v[t] / scale >= threshold) ? 1 : 0;
  let places = 0;
  for (let t = 0; t < T; t++) {
    spans[t].classList.toggle("match", hits[t] === 1);
    if (hits[t] && (t === 0 || !hits[t - 1]) && !(t >= i && t <= j)) places++;
  }
  document.getElementById("match-summary").textContent = on.length
    ? on.length + " " + sel.vector + " unit(s) of layer " + sel.layer + " are ≥ " + threshold + " (of full scale) at every character of " +
      JSON.stringify(DATA.chars.slice(i, j + 1).join("")) + "; underlined: everywhere all of them are, " + places + " other place(s)"
    : "no " + sel.vector + " unit of layer " + sel.layer + " is ≥ " + threshold + " throughout " + JSON.stringify(DATA.chars.slice(i, j + 1).join(""));
  const list = document.getElementById("match-units");
  list.textContent = "";
  for (const n of on) {
    const li = document.createElement("li"), u = A ? labelOf.get(unitKey(sel.layer, sel.vector, n)) : null;
    li.dataset.neuron = String(n);
    li.textContent = ("unit " + n).padEnd(9) + (u ? labelText(u) : "");
    li.addEventListener("click", () => openUnit(sel.layer, sel.vector, n));
    list.appendChild(li);
  }
}
setup();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{generator}
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>charlstm · {title}</title>
<style>{style}</style>
</head>
<body>
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
<select id="atlas-filter"></select>
<div id="atlas-count" class="dim"></div>
<ul id="atlas-list"></ul>
<p id="atlas-rule" class="dim"></p></section>
</aside>
</main>
<div id="predict" hidden></div>
<script type="application/json" id="charlstm-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
