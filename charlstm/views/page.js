"use strict";
// The inspect page: the text coloured by any unit of the model reading it. The model runs here
// (model.js, its weights from the page's data) over the text once, a slice at a time; every unit
// is read or computed from the states that pass keeps. Text is only ever set as textContent.
const DATA = JSON.parse(document.getElementById("charlstm-data").textContent);
const spans = Array.from(document.querySelectorAll("#text span"));
const indexOf = new Map(spans.map((s, i) => [s, i]));
const C = DATA.drawn.colors;
const NET = new Net(DATA.model), T = DATA.length, H = NET.H;
const VOCAB = new Map(DATA.vocab.map((c, i) => [c, i]));
const ids = Int32Array.from(DATA.chars, (c) => VOCAB.get(c));
let sel = { layer: DATA.initial.layer, vector: DATA.initial.vector, neuron: DATA.initial.neuron, pos: null };

// ------------------------------------------------------------------ reading the text, once, a slice at a time
// Every layer's hidden state (and cell state) after each character, float32, time-major (T, H).
const states = Array.from({ length: NET.L }, () => ({ h: new Float32Array(T * H), c: NET.cellState ? new Float32Array(T * H) : null }));
let readTo = 0;   // characters read so far
function readText() {
  const model = new Model(NET);
  const slice = () => {
    const started = performance.now(), from = readTo;
    while (readTo < T && performance.now() - started < 80) {   // a slice: short enough to stay responsive
      model.read(ids[readTo]);
      for (let k = 0; k < NET.L; k++) {
        states[k].h.set(model.h[k], readTo * H);
        if (states[k].c) states[k].c.set(model.c[k], readTo * H);
      }
      readTo++;
    }
    if (readTo < T) { extend(from); setTimeout(slice, 0); }
    else { render(); if (selected) matchSelection(true); document.body.dataset.done = "1"; }
  };
  slice();
}
const ZERO = new Float32Array(H), BUF = NET.unitBuffers();
const stateAt = (a, t) => (t < 0 ? ZERO : a.subarray(t * H, (t + 1) * H));
// One unit's value at character t (read already): hidden and cell from the kept states, any other
// vector computed for that unit alone from them (Net.unitStep).
function unitAt(layer, vector, n, t) {
  const k = layer - 1, s = states[k];
  if (vector === "hidden") return s.h[t * H + n];
  if (vector === "cell" && s.c) return s.c[t * H + n];
  const x = k === 0 ? ids[t] : stateAt(states[k - 1].h, t);
  return NET.unitStep(k, n, x, stateAt(s.h, t - 1), s.c ? stateAt(s.c, t - 1) : null, BUF)[vector][n];
}
// The unit shown, over the characters read so far: each value computed once.
const view = { key: null, values: new Float64Array(T), upto: 0 };
function viewValues() {
  const key = unitKey(sel.layer, sel.vector, sel.neuron);
  if (view.key !== key) { view.key = key; view.upto = 0; }
  for (let t = view.upto; t < readTo; t++) view.values[t] = unitAt(sel.layer, sel.vector, sel.neuron, t);
  view.upto = readTo;
  return view.values.subarray(0, readTo);
}
const isGate = (v) => DATA.drawn.gates.includes(v);
// The |value| at full colour, one per unit, chosen in Python (colours.vector_scale) as in the terminal.
const scaleOf = (layer, vector, neuron) => DATA.scales[String(layer)][vector][neuron];
function paint(from, to) {
  const gate = isGate(sel.vector), scale = scaleOf(sel.layer, sel.vector, sel.neuron), values = view.values;
  for (let i = from; i < to; i++) {
    const rgb = rgbOf(values[i], gate, scale);
    spans[i].style.backgroundColor = "rgb(" + rgb.join(", ") + ")";
    spans[i].style.color = ink(rgb);
  }
}
// After a slice: colour what it read, and say how far the reading is.
function extend(from) {
  const before = view.upto;
  viewValues();
  paint(Math.min(before, from), readTo);
  document.getElementById("stats").textContent = "reading " + readTo.toLocaleString("en") + " of " +
    T.toLocaleString("en") + " characters";
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const layer = parseInt(p.get("layer"), 10), neuron = parseInt(p.get("neuron"), 10), pos = parseInt(p.get("pos"), 10);
  if (DATA.layers.includes(layer)) sel.layer = layer;
  if (DATA.vectors.includes(p.get("vector"))) sel.vector = p.get("vector");
  if (neuron >= 0 && neuron < H) sel.neuron = neuron;
  sel.pos = pos >= 0 && pos < DATA.length ? pos : null;
}
function writeHash() {
  let h = "#layer=" + sel.layer + "&vector=" + sel.vector + "&neuron=" + sel.neuron;
  if (sel.pos !== null) h += "&pos=" + sel.pos;
  if (location.hash !== h) history.replaceState(null, "", h);
}

function render() {
  const values = viewValues();
  const gate = isGate(sel.vector), scale = scaleOf(sel.layer, sel.vector, sel.neuron);
  paint(0, readTo);
  document.getElementById("layer").value = String(sel.layer);
  document.getElementById("vector").value = sel.vector;
  document.getElementById("neuron").value = String(sel.neuron);
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of values) { min = Math.min(min, v); max = Math.max(max, v); sum += v; }
  document.getElementById("stats").textContent = readTo < T
    ? "reading " + readTo.toLocaleString("en") + " of " + T.toLocaleString("en") + " characters"
    : values.length ? "min " + fmt(min) + "   max " + fmt(max) + "   mean " + fmt(sum / values.length) : "";
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
  const where = "position " + pos + " " + JSON.stringify(DATA.chars[pos]) + "   layer " + sel.layer + " neuron " + sel.neuron + ":   ";
  if (pos >= readTo) { info.textContent = where + "not read yet"; return; }
  const here = DATA.vectors.map((v) => (v === sel.vector ? "▸" : "") + v + " " + fmt(unitAt(sel.layer, v, sel.neuron, pos)));
  info.textContent = where + here.join("   ");
}

function setup() {
  const layerSel = document.getElementById("layer"), vectorSel = document.getElementById("vector"), neuronIn = document.getElementById("neuron");
  for (const l of DATA.layers) layerSel.add(new Option(String(l), String(l)));
  for (const v of DATA.vectors) vectorSel.add(new Option(v, v));
  neuronIn.max = String(H - 1);
  document.getElementById("units").textContent = "of 0–" + (H - 1);
  layerSel.addEventListener("change", () => { sel.layer = parseInt(layerSel.value, 10); render(); });
  vectorSel.addEventListener("change", () => { sel.vector = vectorSel.value; render(); });
  const setNeuron = (n) => { if (n >= 0 && n < H) { sel.neuron = n; render(); } };
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
  readText();
}

// ------------------------------------------------------------------ the atlas index (units and labels)
const A = DATA.atlas;
const labelOf = new Map();
function unitKey(layer, vector, neuron) { return layer + "/" + vector + "/" + neuron; }
function pct(p) { return (p * 100).toFixed(1) + "%"; }
function labelText(u) {   // u: [layer, vector, unit, feature, r, chance, saturation, verdict, kind, label r, held-out r, label chance, input, ablation, promotes, suppresses]
  const f = A.features[u[3]];
  if (u.length <= 8) return (u[7] ? u[7] + " " : "") + f + "  r " + fmt(u[4]) + " (chance " + u[5].toFixed(2) +
    ")  sat " + Math.round(u[6] * 100) + "%";
  return (u[7] ? u[7] + " " : "") + f + "  r " + fmt(u[9]) + (u[8] === "state" ? " beyond the character" : "") +
    " (chance " + u[11].toFixed(2) + ", held-out " + fmt(u[10]) + ")" +
    (u[13] === null || u[13] === undefined ? "" : "  ablation " + fmt(u[13]) + " bits/char") +
    (u[14] ? "  promotes " + u[14] + "  suppresses " + u[15] : "") +
    "  sat " + Math.round(u[6] * 100) + "%";
}
function openUnit(layer, vector, neuron) { sel.layer = layer; sel.vector = vector; sel.neuron = neuron; render(); }
const rowOf = new Map();   // unit key → its index in A.units (its portrait, if the page holds one)
function setupAtlas() {
  const panel = document.getElementById("atlas");
  if (!A) { panel.hidden = true; return; }
  A.units.forEach((u, k) => { labelOf.set(unitKey(u[0], u[1], u[2]), u); rowOf.set(unitKey(u[0], u[1], u[2]), k); });
  const filter = document.getElementById("atlas-filter");
  filter.add(new Option("every unit: carrying state first, furthest above chance first", ""));
  A.features.forEach((f, k) => filter.add(new Option(f + " — " + A.tracking[k] + " tracking; top " + A.ranked[k].length + " by |r|", f)));
  filter.value = DATA.filter || "";
  filter.addEventListener("change", drawAtlas);
  document.getElementById("atlas-rule").textContent = A.rule;
  document.getElementById("atlas-text").textContent = A.text || "";
  drawAtlas();
}
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); }
function drawAtlas() {
  const body = document.querySelector("#atlas-list tbody"), f = document.getElementById("atlas-filter").value;
  body.textContent = "";
  const rows = f ? A.ranked[A.features.indexOf(f)].map((x) => [x, labelOf.get(unitKey(x[0], x[1], x[2]))])
                 : A.units.slice(0, 200).map((u) => [u, u]);
  for (const [x, u] of rows) {
    const tr = document.createElement("tr");
    tr.dataset.key = unitKey(x[0], x[1], x[2]);
    const full = u && u.length > 8;
    cell(tr, "L" + x[0] + " " + x[1] + " " + x[2]);
    cell(tr, u ? (u[8] === "input" ? "reacts to " : "") + A.features[u[3]] : "");
    cell(tr, f ? fmt(x[3]) : full ? fmt(u[9]) : fmt(u[4]), "num");
    cell(tr, full ? fmt(u[10]) : "", "num");
    cell(tr, u ? (full ? u[11] : u[5]).toFixed(2) : "", "num");
    cell(tr, u ? u[7] : "");
    cell(tr, full && u[13] !== null ? fmt(u[13]) : "", "num");
    cell(tr, full ? u[14] : "");
    tr.addEventListener("click", () => openUnit(x[0], x[1], x[2]));
    body.appendChild(tr);
  }
  document.getElementById("atlas-count").textContent = f
    ? rows.length + " units with the highest |r| with " + f + " (r: with it, over the whole text)"
    : rows.length + " of " + A.units.length + " units";
  markAtlas();
}
function markAtlas() {
  const key = unitKey(sel.layer, sel.vector, sel.neuron);
  for (const tr of document.querySelectorAll("#atlas-list tbody tr")) tr.classList.toggle("current", tr.dataset.key === key);
  const u = A ? labelOf.get(key) : null;
  document.getElementById("label").textContent = u ? labelText(u) : "";
  drawPortrait(A ? rowOf.get(key) : undefined);
}
// The current unit's histogram over the atlas's text and an example from each quantile of its values.
function drawPortrait(k) {
  const box = document.getElementById("atlas-unit");
  box.textContent = "";
  const d = A && A.detail && k !== undefined ? A.detail[k] : null;
  if (!d) return;
  const most = Math.max(...d.counts, 1), bars = "▁▂▃▄▅▆▇█";
  const hist = document.createElement("div");
  hist.className = "hist";
  hist.textContent = fmt(d.lo) + " " + d.counts.map((c) => c ? bars[Math.min(7, Math.floor(c / most * 7.999))] : " ").join("") + " " + fmt(d.hi);
  hist.title = "histogram of the unit's values over the atlas's text: " + d.counts.join(", ");
  box.appendChild(hist);
  const q = ["2%", "25%", "50%", "75%", "98%"];
  d.examples.forEach((e, j) => {
    const row = document.createElement("div");
    row.className = "example";
    const head = document.createElement("span"); head.className = "dim"; head.textContent = (q[j] || "") + " " + fmt(e[0]) + " ";
    const before = document.createElement("span"); before.textContent = e[1];
    const peak = document.createElement("b"); peak.textContent = e[2];
    const after = document.createElement("span"); after.textContent = e[3];
    row.append(head, before, peak, after);
    box.appendChild(row);
  });
}

// ------------------------------------------------------- the model's next-character guesses, under each character
// Computed on hover from the last layer's state after the character, through the head (one V × H product).
const P = DATA.predict;
function showPredict(pos) {
  const box = document.getElementById("predict");
  if (!P || pos === null || pos === undefined || pos >= readTo) { box.hidden = true; return; }
  box.textContent = "";
  const p = softmax(NET.logits(stateAt(states[NET.L - 1].h, pos)));
  const top = likeliest(p, P.k);
  const head = document.createElement("div");
  const next = pos + 1 < T ? DATA.chars[pos + 1] : null;
  head.textContent = "after " + JSON.stringify(DATA.chars[pos]) + " the model expects" +
    (next !== null ? "   (next is " + JSON.stringify(next) + ": " + pct(p[ids[pos + 1]]) + ")" : "");
  box.appendChild(head);
  for (const id of top) {
    const row = document.createElement("div");
    row.className = "guess";
    row.textContent = DATA.drawn.vocabShown[id].padEnd(2) + " " + pct(p[id]).padStart(6);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.max(1, Math.round(p[id] * 100)) + "px";
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
  const threshold = parseFloat(document.getElementById("threshold").value), [i, j] = selected;
  if (j >= readTo) {   // readText matches again once it has read the whole text
    document.getElementById("match-summary").textContent = "still reading the text: the match follows";
    return;
  }
  const on = unitsOn(i, j, threshold), hits = together(on, threshold);
  let places = 0;
  for (let t = 0; t < readTo; t++) {
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
// The units of the layer and vector shown at or above `threshold` (of their full scale) at every character i..j.
function unitsOn(i, j, threshold) {
  const on = [];
  for (let n = 0; n < H; n++) {
    const scale = scaleOf(sel.layer, sel.vector, n);
    let all = true;
    for (let t = i; t <= j && all; t++) all = unitAt(sel.layer, sel.vector, n, t) / scale >= threshold;
    if (all) on.push(n);
  }
  return on;
}
// Where all the units `on` are at once, over the characters read: each unit is computed only where
// the ones before it all are.
function together(on, threshold) {
  const hits = new Uint8Array(readTo).fill(on.length ? 1 : 0);
  for (const n of on) {
    const scale = scaleOf(sel.layer, sel.vector, n);
    for (let t = 0; t < readTo; t++) if (hits[t] && !(unitAt(sel.layer, sel.vector, n, t) / scale >= threshold)) hits[t] = 0;
  }
  return hits;
}
setup();
