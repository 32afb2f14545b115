"use strict";
const DATA = JSON.parse(document.getElementById("charlstm-data").textContent);
const spans = Array.from(document.querySelectorAll("#text span"));
const indexOf = new Map(spans.map((s, i) => [s, i]));
const C = DATA.drawn.colors;
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
const isGate = (v) => DATA.drawn.gates.includes(v);
// The |value| at full colour, one per unit, chosen in Python (colours.vector_scale) as in the terminal.
const scaleOf = (layer, vector, neuron) => DATA.traces[String(layer)][vector].scale[neuron];

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
    spans[i].style.color = ink(rgb);
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
const P = DATA.predict;
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
    row.textContent = DATA.drawn.vocabShown[P.ids[pos * P.k + j]].padEnd(2) + " " + pct(p).padStart(6);
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
