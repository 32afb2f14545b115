"use strict";
// The model page: a trained charlstm model run in the browser. The model itself (weights, step math
// mirroring charlstm/model/cells.py) is model.js's; sampling mirrors generation/sampling.py. Text is
// only ever set as textContent.
const DATA = JSON.parse(document.getElementById("charlstm-data").textContent);
const C = DATA.drawn.colors;
const V = DATA.vocab.length, H = DATA.hidden, L = DATA.numLayers;
const INDEX = new Map(DATA.vocab.map((c, i) => [c, i]));
const NET = new Net(DATA);   // the shape and weights (model.js; DATA holds views/weights.py's network_facts)

// ------------------------------------------------------------------ unknown characters (data/vocab.py's admit)
// A page never refuses typed text: "skip" drops a character the model never saw, "replace" reads it as
// the vocabulary's substitute. Returns the text as the model reads it and the unknown characters.
function admit(text, policy) {
  const unknown = [];
  let out = "";
  for (const ch of text) {
    if (INDEX.has(ch)) { out += ch; continue; }
    if (!unknown.includes(ch)) unknown.push(ch);
    if (policy === "replace") out += DATA.substitute;
  }
  return { text: out, unknown };
}
function unknownNote(unknown, policy) {
  if (!unknown.length) return "";
  const shown = unknown.slice(0, 12).map((c) => JSON.stringify(c)).join(", ") + (unknown.length > 12 ? " …" : "");
  return unknown.length + " character(s) this model never saw: " + shown + (policy === "replace"
    ? " — read as " + JSON.stringify(DATA.substitute) + " (as --unknown replace)" : " — skipped (as --unknown skip)");
}

// ------------------------------------------------------------------ sampling (generation/sampling.py)
// sfc32, seeded through a string hash: reproducible in this page, not PyTorch's generator.
function seededRandom(seed) {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = 0x71374491;
  for (const ch of String(seed)) {
    const k = ch.charCodeAt(0);
    a = Math.imul(a ^ k, 2654435761); b = Math.imul(b ^ k, 1597334677);
    c = Math.imul(c ^ k, 2246822507); d = Math.imul(d ^ k, 3266489909);
  }
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0; t = (t + d) | 0; c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}
function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}
// The distribution sampling draws from: logits / T, the top k kept, softmax, then the fewest likeliest
// characters whose probability reaches p (the first always stays).
function distribution(logits, s) {
  const z = Array.from(logits, (x) => x / s.temperature);
  if (s.topK !== null && s.topK < z.length) {
    const kth = [...z].sort((a, b) => b - a)[s.topK - 1];
    for (let i = 0; i < z.length; i++) if (z[i] < kth) z[i] = -Infinity;
  }
  let top = -Infinity, total = 0;
  for (const x of z) if (x > top) top = x;   // no spread: a vocabulary of 100k characters overflows the call stack
  const p = z.map((x) => { const e = Math.exp(x - top); total += e; return e; });
  for (let i = 0; i < p.length; i++) p[i] /= total;
  if (s.topP !== null && s.topP < 1) {
    const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    let before = 0;
    for (const i of order) { const q = p[i]; if (before >= s.topP) p[i] = 0; before += q; }
  }
  return p;
}
function pick(logits, s, random) {
  if (s.temperature <= 0) return argmax(logits);
  const p = distribution(logits, s);
  let total = 0;
  for (const q of p) total += q;
  let u = random() * total;
  for (let i = 0; i < p.length; i++) { if (p[i] > 0 && (u -= p[i]) < 0) return i; }
  return p.reduce((best, q, i) => (q > 0 ? i : best), 0);
}
// Holds back characters that might begin a stop string, so a stop string is never written (_StopFilter).
class StopFilter {
  constructor(stops) { this.stops = stops.filter((s) => s); this.pending = ""; this.done = false; }
  push(ch) {
    if (this.done) return "";
    if (!this.stops.length) return ch;
    this.pending += ch;
    const hits = this.stops.filter((s) => this.pending.includes(s)).map((s) => this.pending.indexOf(s));
    if (hits.length) { this.done = true; const out = this.pending.slice(0, Math.min(...hits)); this.pending = ""; return out; }
    let keep = 0;
    const longest = Math.max(...this.stops.map((s) => s.length));
    for (let n = 1; n <= Math.min(this.pending.length, longest); n++) {
      if (this.stops.some((s) => s.startsWith(this.pending.slice(-n)))) keep = n;
    }
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return out;
  }
  flush() { const out = this.pending; this.pending = ""; return out; }
}

// ------------------------------------------------------------------ generating, streamed into #output
let running = null;
// Settings from `get(name)` (a control's value or the address's), held to SampleConfig's bounds: what
// `charlstm sample` would refuse is taken as the nearest setting it accepts, so the page never breaks.
function settingsFrom(get) {
  const d = DATA.sampling;
  const num = (name, parse) => { const v = parse(get(name)); return Number.isFinite(v) ? v : null; };
  const within = (v, b) => Math.min(Math.max(v, b.low ?? -Infinity), b.high ?? Infinity);
  let temperature = within(num("temperature", parseFloat) ?? d.temperature.default, d.temperature);
  if (temperature > 0 && temperature < d.temperature.floor) temperature = d.temperature.floor;
  const topK = num("top_k", parseInt), topP = num("top_p", parseFloat), seed = get("seed");
  return {
    prime: get("prime") || "", length: within(num("length", parseInt) ?? d.length.default, d.length), temperature,
    topK: topK === null ? null : within(topK, d.top_k), topP: topP === null || topP <= 0 ? null : Math.min(topP, 1),
    seed: seed === null || seed === "" ? String(crypto.getRandomValues(new Uint32Array(2)).join("")) : seed,
    stop: (get("stop") || "").split("|").map(unescapeStop).filter((s) => s),
    unknown: DATA.policies.includes(get("unknown")) ? get("unknown") : DATA.policies[0],
  };
}
function unescapeStop(text) {   // '\n' means a line break, as `charlstm sample --stop` reads it
  return text.replace(/\\([nrt\\])/g, (_, c) => ({ n: "\n", r: "\r", t: "\t", "\\": "\\" })[c]);
}
function generate(s, done) {
  if (running) running.cancelled = true;
  const job = { cancelled: false };
  running = job;
  const out = document.getElementById("output"), note = document.getElementById("prime-note");
  const admitted = admit(s.prime, s.unknown);
  note.textContent = unknownNote(admitted.unknown, s.unknown);
  note.hidden = !note.textContent;
  const model = new Model(NET), random = seededRandom(s.seed), filter = new StopFilter(s.stop);
  let logits = null;
  for (const ch of admitted.text || DATA.start) logits = model.step(INDEX.get(ch));
  out.textContent = admitted.text;
  let made = 0;
  const slice = () => {
    if (job.cancelled) return;
    const started = performance.now();
    let piece = "";
    while (made < s.length && !filter.done && performance.now() - started < 30) {
      const id = pick(logits, s, random);
      piece += filter.push(DATA.vocab[id]);
      made++;
      if (!filter.done) logits = model.step(id);
    }
    if (made >= s.length && !filter.done) piece += filter.flush();
    out.append(piece);
    if (made < s.length && !filter.done) setTimeout(slice, 0);
    else { running = null; if (done) done(); }
  };
  slice();
}
function generateFromControls() {
  const id = { prime: "prime", length: "length", temperature: "temperature", top_k: "top-k", top_p: "top-p",
    seed: "seed", stop: "stop", unknown: "unknown" };
  generate(settingsFrom((name) => document.getElementById(id[name]).value));
}

// ------------------------------------------------------------------ reading typed text, position by position
// What the reader keeps: for each admitted character its recorded vectors (every layer), and the
// logits after the last one. A keystroke rereads only from the first character that changed.
const reading = { text: [], model: new Model(NET), states: [], records: [], logits: null, unknown: [] };
function saveState(model) {
  return { h: model.h.map((a) => Float64Array.from(a)), c: model.c.map((a) => (a ? Float64Array.from(a) : null)) };
}
function loadState(model, state) {
  for (let k = 0; k < L; k++) { model.h[k].set(state.h[k]); if (state.c[k]) model.c[k].set(state.c[k]); }
}
function read(raw, policy) {
  const admitted = admit(raw, policy);
  const text = Array.from(admitted.text);   // characters, not UTF-16 units
  let same = 0;
  while (same < text.length && same < reading.text.length && text[same] === reading.text[same]) same++;
  const model = reading.model;
  if (same === 0) loadState(model, saveState(new Model(NET)));
  else loadState(model, reading.states[same - 1]);
  reading.states.length = same; reading.records.length = same;
  for (let t = same; t < text.length; t++) {
    model.step(INDEX.get(text[t]));
    reading.states.push(saveState(model)); reading.records.push(model.snapshot());
  }
  reading.text = text; reading.unknown = admitted.unknown;
  reading.logits = Float64Array.from(text.length ? model.logits : startLogits());
  document.body.dataset.stepped = String(text.length - same);   // characters this update read
}
function startLogits() { const m = new Model(NET); return m.step(INDEX.get(DATA.start)); }
function unitValues(layer, vector, neuron) {   // layers from 1, as in inspect
  return reading.records.map((r) => r[layer - 1][vector][neuron]);
}

// ------------------------------------------------------------------ the five likeliest next characters
function showGuesses() {
  const box = document.getElementById("guesses"), p = softmax(reading.logits), order = likeliest(p, 5);
  box.textContent = "";
  const head = document.createElement("span");
  head.className = "dim";
  head.textContent = "next: ";
  box.appendChild(head);
  for (const i of order) {
    const item = document.createElement("span");
    item.className = "guess";
    item.textContent = DATA.alone[i] + " " + (100 * p[i]).toFixed(1) + "%";
    box.appendChild(item);
  }
}

// ------------------------------------------------------------------ a unit over the typed text
const sel = { layer: L, vector: "hidden", neuron: 0, pos: null };
const isGate = (v) => DATA.drawn.gates.includes(v);
// The |value| at full colour: 1 for gates and tanh-bounded vectors, else the largest |value| in the text
// (colours.py's full_scale).
function scaleOf(values, vector) {
  if (DATA.drawn.fixed.includes(vector)) return 1;
  let top = 0;
  for (const v of values) if (Math.abs(v) > top) top = Math.abs(v);
  return top > 0 ? top : 1;
}
function shown(ch) { return (DATA.glyphs[ch] ?? ch) + (ch === "\n" || ch === "\t" ? ch : ""); }
function drawStrip() {
  const strip = document.getElementById("strip"), values = unitValues(sel.layer, sel.vector, sel.neuron);
  const gate = isGate(sel.vector), scale = scaleOf(values, sel.vector);
  strip.textContent = "";
  reading.text.forEach((ch, t) => {
    const span = document.createElement("span"), rgb = rgbOf(values[t], gate, scale);
    span.textContent = shown(ch);
    span.style.backgroundColor = "rgb(" + rgb.join(", ") + ")";
    span.style.color = ink(rgb);
    span.dataset.pos = String(t);
    span.title = "position " + t + " " + JSON.stringify(ch) + ": " + sel.vector + " " + fmt(values[t]);
    if (t === sel.pos) span.classList.add("pinned");
    strip.appendChild(span);
  });
  drawRamp(gate, scale);
  drawLabel();
}
function drawRamp(gate, scale) {
  document.getElementById("ramp").style.background = gate
    ? "linear-gradient(to right, " + colour(0, true, 1) + ", " + colour(1, true, 1) + ")"
    : "linear-gradient(to right, " + colour(-1, false, 1) + ", " + colour(0, false, 1) + ", " + colour(1, false, 1) + ")";
  document.getElementById("ramp-lo").textContent = gate ? "0" : (-scale).toFixed(2);
  document.getElementById("ramp-hi").textContent = gate ? "1" : "+" + scale.toFixed(2);
}
function update() {
  const policy = document.getElementById("unknown").value;
  read(document.getElementById("typed").value, policy);
  const note = document.getElementById("typed-note");
  note.textContent = unknownNote(reading.unknown, policy);
  note.hidden = !note.textContent;
  if (sel.pos !== null && sel.pos >= reading.text.length) sel.pos = reading.text.length ? reading.text.length - 1 : null;
  showGuesses();
  drawStrip();
  drawDiagram();
}

// ------------------------------------------------------------------ the cell, drawn for one unit at one character
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}
// The values of the selected unit at position t, and before it (c', h' are 0 before the first character).
function unitAt(t) {
  const at = (pos, name) => (pos < 0 ? 0 : reading.records[pos][sel.layer - 1][name][sel.neuron]);
  const out = { prevHidden: at(t - 1, "hidden"), prevCell: DATA.cellState ? at(t - 1, "cell") : 0, char: reading.text[t] };
  for (const name of DATA.vectors) out[name] = at(t, name);
  return out;
}
// A part of the diagram: a box at (x, y) with its name, its value and its colour.
function part(g, x, y, name, label, value, vector) {
  const values = unitValues(sel.layer, vector, sel.neuron);
  const rgb = rgbOf(value, isGate(vector), scaleOf(values, vector));
  g.appendChild(svg("rect", { x: x - 42, y: y - 18, width: 84, height: 36, rx: 6, fill: "rgb(" + rgb.join(",") + ")",
    stroke: "#555", "data-part": name }));
  const fill = ink(rgb) || "#000";
  g.appendChild(svg("text", { x, y: y - 3, "text-anchor": "middle", fill }, label));
  g.appendChild(svg("text", { x, y: y + 12, "text-anchor": "middle", fill, class: "value" }, fmt(value)));
}
function line(g, points, dashed) {
  g.appendChild(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#444",
    "stroke-width": 1.5, "stroke-dasharray": dashed ? "4 3" : "none", "marker-end": "url(#arrow)" }));
}
function op(g, x, y, symbol) {
  g.appendChild(svg("circle", { cx: x, cy: y, r: 11, fill: "#fff", stroke: "#444" }));
  g.appendChild(svg("text", { x, y: y + 5, "text-anchor": "middle" }, symbol));
}
function note(g, x, y, text, anchor) { g.appendChild(svg("text", { x, y, "text-anchor": anchor || "middle", class: "dim" }, text)); }
function drawLSTM(g, u) {   // Olah's "Understanding LSTMs": the cell state runs along the top
  const gates = [["forget", "forget f", 90], ["input", DATA.coupled ? "input 1−f" : "input i", 200],
    ["candidate", "candidate g", 310], ["output", "output o", 430]];
  note(g, 14, 30, "c′ " + fmt(u.prevCell), "start");
  line(g, [[14, 40], [79, 40]]);
  op(g, 90, 40, "×"); op(g, 310, 40, "+");
  line(g, [[101, 40], [299, 40]]);
  part(g, 520, 40, "cell", "cell c", u.cell, "cell");
  line(g, [[321, 40], [478, 40]]);
  op(g, 200, 100, "×"); line(g, [[200, 89], [200, 80], [310, 80], [310, 51]]);
  for (const [name, label, x] of gates) {
    part(g, x, 170, name, label, u[name], name);
    if (name === "forget") line(g, [[x, 152], [x, 51]]);
    if (name === "input" || name === "candidate") line(g, [[x, 152], [x, 130], [200, 130], [200, 111]]);
  }
  if (DATA.coupled) line(g, [[132, 170], [158, 170]], true);
  line(g, [[520, 58], [520, 90]]); part(g, 520, 110, "tanh", "tanh c", Math.tanh(u.cell), "hidden");
  op(g, 520, 170, "×"); line(g, [[472, 170], [509, 170]]); line(g, [[520, 128], [520, 159]]);
  part(g, 620, 170, "hidden", "hidden h", u.hidden, "hidden"); line(g, [[531, 170], [578, 170]]);
  note(g, 14, 262, "h′ " + fmt(u.prevHidden) + " and the character " + JSON.stringify(u.char) + " feed every gate", "start");
  for (const [, , x] of gates) line(g, [[x, 248], [x, 188]]);
  if (DATA.peepholes) drawPeepholes(g, u);
}
function drawPeepholes(g, u) {   // p ⊙ c′ into forget and input, p ⊙ c into output
  line(g, [[30, 40], [30, 170], [46, 170]], true); note(g, 34, 204, "p_f·c′ " + fmt(u.peep_forget), "start");
  line(g, [[30, 124], [140, 124], [140, 162], [156, 162]], true); note(g, 150, 216, "p_i·c′ " + fmt(u.peep_input), "start");
  line(g, [[564, 40], [590, 40], [590, 140], [450, 140], [450, 150]], true);
  note(g, 596, 100, "p_o·c " + fmt(u.peep_output), "start");
}
function drawGRU(g, u) {    // h = (1 − z) ⊙ n + z ⊙ h′, n = tanh(x_n + r ⊙ (W_hn h′ + b_hn))
  note(g, 14, 30, "h′ " + fmt(u.prevHidden), "start");
  line(g, [[14, 40], [219, 40]]); op(g, 230, 40, "×"); op(g, 400, 40, "+");
  line(g, [[241, 40], [389, 40]]);
  part(g, 520, 40, "hidden", "hidden h", u.hidden, "hidden"); line(g, [[411, 40], [478, 40]]);
  part(g, 120, 170, "reset", "reset r", u.reset, "reset");
  part(g, 230, 170, "update", "update z", u.update, "update"); line(g, [[230, 152], [230, 51]]);
  part(g, 400, 170, "candidate", "candidate n", u.candidate, "candidate");
  op(g, 400, 100, "×"); line(g, [[400, 152], [400, 111]]); line(g, [[400, 89], [400, 51]]);
  line(g, [[272, 170], [330, 170], [330, 100], [389, 100]]); note(g, 330, 90, "1 − z");
  line(g, [[120, 188], [120, 222], [380, 222], [380, 190]], true); note(g, 250, 216, "r ⊙ (W_hn h′ + b_hn) inside n");
  note(g, 14, 262, "h′ and the character " + JSON.stringify(u.char) + " feed r, z and n", "start");
  for (const x of [100, 230, 420]) line(g, [[x, 248], [x, 188]]);
}
function drawRNN(g, u) {
  note(g, 14, 104, "h′ " + fmt(u.prevHidden) + " and " + JSON.stringify(u.char), "start");
  line(g, [[230, 100], [318, 100]]);
  part(g, 360, 100, "hidden", "tanh: hidden h", u.hidden, "hidden");
}
function drawDiagram() {
  const box = document.getElementById("diagram");
  box.textContent = "";
  if (sel.pos === null || sel.pos >= reading.text.length) return;
  const u = unitAt(sel.pos);
  const root = svg("svg", { viewBox: "0 0 700 272", width: 700, height: 272, role: "img" });
  const defs = svg("defs", {}), marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#444" }));
  defs.appendChild(marker); root.appendChild(defs);
  const g = svg("g", {});
  ({ gru: drawGRU, rnn: drawRNN })[DATA.cell] ? ({ gru: drawGRU, rnn: drawRNN })[DATA.cell](g, u) : drawLSTM(g, u);
  root.appendChild(g);
  const caption = document.createElement("div");
  caption.textContent = DATA.cell + " cell, layer " + sel.layer + " unit " + sel.neuron + " at position " + sel.pos +
    " " + JSON.stringify(reading.text[sel.pos]) + "   (← → step along the text)";
  box.append(caption, root);
}

// ------------------------------------------------------------------ the atlas index, and what the model is
function drawLabel() {
  const A = DATA.atlas, label = document.getElementById("label");
  const u = A ? A.units.find((x) => x[0] === sel.layer && x[1] === sel.vector && x[2] === sel.neuron) : null;
  label.textContent = u ? u[3] : "";
  for (const li of document.querySelectorAll("#atlas-list li")) {
    li.classList.toggle("current", li.dataset.key === sel.layer + "/" + sel.vector + "/" + sel.neuron);
  }
}
function setupAtlas() {
  const A = DATA.atlas;
  if (!A) return;
  document.getElementById("atlas").hidden = false;
  document.getElementById("atlas-text").textContent = "units the atlas labels (inspect --atlas, " + A.vectors.join("/") + " units, on " +
    A.text + "); click one to watch it";
  const list = document.getElementById("atlas-list");
  for (const [layer, vector, unit, label] of A.units) {
    const li = document.createElement("li");
    li.dataset.key = layer + "/" + vector + "/" + unit;
    li.textContent = ("L" + layer + " " + vector + " " + unit).padEnd(16) + label;
    li.addEventListener("click", () => select(layer, vector, unit));
    list.appendChild(li);
  }
}
function drawAbout() {
  const a = DATA.about, parts = [
    a.layers + "×" + a.hidden + " " + a.cell + ", " + a.parameters.toLocaleString("en") + " parameters, " + a.vocab + " characters",
    "corpus " + (a.corpus ?? "not recorded") + (a.corpusChars ? " (" + a.corpusChars.toLocaleString("en") + " characters)" : ""),
    (a.steps ?? "?") + " training steps",
    "validation " + (a.valBpc === null ? "not measured" : a.valBpc.toFixed(3) + " bits/char")];
  const box = document.getElementById("about"), line1 = document.createElement("div"), cmd = document.createElement("code");
  line1.textContent = parts.join(" · ");
  cmd.textContent = a.command;
  const line2 = document.createElement("div");
  line2.append("train it again: ", cmd);
  box.append(line1, line2);
}

// ------------------------------------------------------------------ controls, keys and the address
function select(layer, vector, neuron) {
  sel.layer = layer; sel.vector = vector; sel.neuron = neuron;
  document.getElementById("layer").value = String(layer);
  document.getElementById("vector").value = vector;
  document.getElementById("neuron").value = String(neuron);
  drawStrip(); drawDiagram();
}
function setupControls() {
  const d = DATA.sampling, set = (id, v) => { if (v !== null) document.getElementById(id).value = String(v); };
  set("length", d.length.default); set("temperature", d.temperature.default);
  document.getElementById("length").max = String(d.length.high);
  const unknown = document.getElementById("unknown");
  for (const p of DATA.policies) unknown.add(new Option(p === "replace" ? "replace with " + JSON.stringify(DATA.substitute) : p, p));
  const layer = document.getElementById("layer"), vector = document.getElementById("vector"), neuron = document.getElementById("neuron");
  for (let k = 1; k <= L; k++) layer.add(new Option(String(k), String(k)));
  for (const v of DATA.vectors) vector.add(new Option(v, v));
  neuron.max = String(H - 1);
  layer.addEventListener("change", () => select(parseInt(layer.value, 10), sel.vector, sel.neuron));
  vector.addEventListener("change", () => select(sel.layer, vector.value, sel.neuron));
  neuron.addEventListener("input", () => { const n = parseInt(neuron.value, 10); if (n >= 0 && n < H) select(sel.layer, sel.vector, n); });
  document.getElementById("typed").addEventListener("input", update);
  unknown.addEventListener("change", () => { reading.text = []; update(); });
  document.getElementById("go").addEventListener("click", generateFromControls);
  document.getElementById("halt").addEventListener("click", () => { if (running) running.cancelled = true; running = null; });
  const strip = document.getElementById("strip");
  strip.addEventListener("click", (e) => { const t = e.target.dataset && e.target.dataset.pos; if (t !== undefined) { sel.pos = parseInt(t, 10); drawStrip(); drawDiagram(); } });
  strip.addEventListener("mouseover", (e) => { if (e.target.title) document.getElementById("info").textContent = e.target.title; });
  document.addEventListener("keydown", stepKeys);
}
function stepKeys(e) {
  if (["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) || sel.pos === null) return;
  const to = sel.pos + (e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0);
  if (to !== sel.pos && to >= 0 && to < reading.text.length) { sel.pos = to; drawStrip(); drawDiagram(); e.preventDefault(); }
}
// #prime=P&length=N&temperature=T&seed=S generates into #output; #text=T&layer=L&vector=V&neuron=K writes
// that unit's values, one per character, as JSON into #values. Either way body.dataset.done = "1" at the end.
function fromAddress() {
  const p = new URLSearchParams(location.hash.slice(1)), finish = () => { document.body.dataset.done = "1"; };
  if (p.has("unknown") && DATA.policies.includes(p.get("unknown"))) document.getElementById("unknown").value = p.get("unknown");
  if (p.has("text")) {
    document.getElementById("typed").value = p.get("text");
    const layer = parseInt(p.get("layer"), 10), neuron = parseInt(p.get("neuron"), 10), vector = p.get("vector");
    if (layer >= 1 && layer <= L) sel.layer = layer;
    if (DATA.vectors.includes(vector)) sel.vector = vector;
    if (neuron >= 0 && neuron < H) sel.neuron = neuron;
    sel.pos = p.has("pos") ? parseInt(p.get("pos"), 10) : null;
    update();
    select(sel.layer, sel.vector, sel.neuron);
    document.getElementById("values").textContent = JSON.stringify(unitValues(sel.layer, sel.vector, sel.neuron));
  }
  if (p.has("prime") || p.has("length")) {
    for (const [name, id] of [["prime", "prime"], ["length", "length"], ["temperature", "temperature"], ["top_k", "top-k"],
      ["top_p", "top-p"], ["seed", "seed"], ["stop", "stop"]]) if (p.has(name)) document.getElementById(id).value = p.get(name);
    generate(settingsFrom((name) => (p.has(name) ? p.get(name) : document.getElementById({ top_k: "top-k", top_p: "top-p" }[name] || name).value)), finish);
  } else finish();
}
function setup() {
  drawAbout();
  setupControls();
  setupAtlas();
  update();
  select(sel.layer, sel.vector, sel.neuron);
  fromAddress();
}
setup();
