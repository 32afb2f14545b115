"use strict";
// A trained charlstm model run in the browser, shared by every page that runs one (the model page,
// the inspect page). The weights come as views/weights.py arranges them (network.Stepper's layout:
// layer 0's input side folded into a (V, G·H) table, the biases split); the step math mirrors
// charlstm/model/cells.py (CELL_MATH), gate for gate. Computes numbers only; draws nothing.

function floats(b64) {   // base64 of little-endian float32 (every browser's Float32Array is little-endian)
  if (!b64) return null;
  const raw = atob(b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

// out[r] = bias[r] + Σ_c M[r, c] x[c] for M (rows, cols) row-major; no bias when bias is null. Eight
// rows at a time share each load of x (the step's cost is here: a fifth faster than four, twice one).
function affine(out, M, x, rows, cols, bias) {
  let r = 0;
  for (; r + 7 < rows; r += 8) {
    const k0 = r * cols, k1 = k0 + cols, k2 = k1 + cols, k3 = k2 + cols, k4 = k3 + cols, k5 = k4 + cols, k6 = k5 + cols,
      k7 = k6 + cols;
    let a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
    for (let j = 0; j < cols; j++) {
      const xj = x[j];
      a += M[k0 + j] * xj; b += M[k1 + j] * xj; c += M[k2 + j] * xj; d += M[k3 + j] * xj;
      e += M[k4 + j] * xj; f += M[k5 + j] * xj; g += M[k6 + j] * xj; h += M[k7 + j] * xj;
    }
    out[r] = a; out[r + 1] = b; out[r + 2] = c; out[r + 3] = d; out[r + 4] = e; out[r + 5] = f; out[r + 6] = g; out[r + 7] = h;
  }
  for (; r < rows; r++) out[r] = dotRow(M, x, r, cols, null);
  if (bias) for (let i = 0; i < rows; i++) out[i] += bias[i];
  return out;
}
// Row r of that product alone: bias[r] + Σ_c M[r, c] x[c].
function dotRow(M, x, r, cols, bias) {
  let s = 0;
  for (let j = 0, k = r * cols; j < cols; j++) s += M[k + j] * x[j];
  return bias ? s + bias[r] : s;
}
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// ------------------------------------------------------------------ one step of every cell kind (cells.py)
// Each fills `v` (vector name → Float64Array(H)) and updates h, c in place for the units [j0, j1): a
// unit's new value depends only on its own old one once the preactivations ax (input side) and ah
// (hidden side) of its rows exist, so the same math steps a whole layer or one unit.
const CELLS = {
  lstm(net, ax, ah, h, c, p, v, j0, j1) {
    const H = net.H, bi = net.block("input"), bf = net.block("forget"), bg = net.block("candidate"), bo = net.block("output");
    const vi = v.input, vf = v.forget, vg = v.candidate, vo = v.output, vc = v.cell, vh = v.hidden;
    for (let j = j0; j < j1; j++) {
      const cp = c[j];
      const i = sigmoid(ax[bi + j] + ah[bi + j] + (p ? p[j] * cp : 0));
      const f = sigmoid(ax[bf + j] + ah[bf + j] + (p ? p[H + j] * cp : 0));
      const g = Math.tanh(ax[bg + j] + ah[bg + j]);
      const cn = f * cp + i * g;
      const o = sigmoid(ax[bo + j] + ah[bo + j] + (p ? p[2 * H + j] * cn : 0));
      c[j] = cn; h[j] = o * Math.tanh(cn);
      vi[j] = i; vf[j] = f; vg[j] = g; vo[j] = o; vc[j] = cn; vh[j] = h[j];
      if (p) { v.peep_input[j] = p[j] * cp; v.peep_forget[j] = p[H + j] * cp; v.peep_output[j] = p[2 * H + j] * cn; }
    }
  },
  coupled(net, ax, ah, h, c, p, v, j0, j1) {   // blocks (f, g, o); the input gate is 1 − f: c = g + f (c' − g)
    const bf = net.block("forget"), bg = net.block("candidate"), bo = net.block("output");
    const vi = v.input, vf = v.forget, vg = v.candidate, vo = v.output, vc = v.cell, vh = v.hidden;
    for (let j = j0; j < j1; j++) {
      const f = sigmoid(ax[bf + j] + ah[bf + j]), g = Math.tanh(ax[bg + j] + ah[bg + j]);
      const o = sigmoid(ax[bo + j] + ah[bo + j]), cn = g + f * (c[j] - g);
      c[j] = cn; h[j] = o * Math.tanh(cn);
      vi[j] = 1 - f; vf[j] = f; vg[j] = g; vo[j] = o; vc[j] = cn; vh[j] = h[j];
    }
  },
  gru(net, ax, ah, h, c, p, v, j0, j1) {       // nn.GRU: n = tanh(x_n + r ⊙ (W_hn h' + b_hn)), h = (1 − z) n + z h'
    const br = net.block("reset"), bz = net.block("update"), bn = net.block("candidate");
    const vr = v.reset, vz = v.update, vn = v.candidate, vh = v.hidden;
    for (let j = j0; j < j1; j++) {
      const r = sigmoid(ax[br + j] + ah[br + j]), z = sigmoid(ax[bz + j] + ah[bz + j]);
      const n = Math.tanh(ax[bn + j] + r * ah[bn + j]);
      h[j] = n + z * (h[j] - n);
      vr[j] = r; vz[j] = z; vn[j] = n; vh[j] = h[j];
    }
  },
  rnn(net, ax, ah, h, c, p, v, j0, j1) {
    const vh = v.hidden;
    for (let j = j0; j < j1; j++) { h[j] = Math.tanh(ax[j] + ah[j]); vh[j] = h[j]; }
  },
};
CELLS.peephole = CELLS.lstm;      // the LSTM's loop with the peephole terms (p given)

// The network: its shape and weights (`spec`, from views/weights.py's network_facts), and the step
// of its cell kind. Holds no state: a Model carries that.
class Net {
  constructor(spec) {
    this.cell = spec.cell; this.L = spec.numLayers; this.H = spec.hidden; this.blocks = spec.blocks;
    this.G = spec.blocks.length; this.cellState = spec.cellState; this.vectors = spec.vectors;
    this.layers = spec.weights.layers.map((l) => ({ table: floats(l.table), wih: floats(l.wih), bx: floats(l.bx),
      whh: floats(l.whh), bh: floats(l.bh), peep: floats(l.peep) }));
    this.headW = floats(spec.weights.headW); this.headB = floats(spec.weights.headB);
    this.V = this.headB.length;
    this.cellStep = CELLS[spec.cell];
  }
  block(name) { return this.blocks.indexOf(name) * this.H; }   // where a gate's rows start (config.CELL_KINDS blocks)
  // Layer k's input-side preactivations: a row of the folded table for layer 0 (x a character id),
  // else W_ih x + b_x (x the hidden state of the layer below).
  inputSide(k, x, ax) {
    const w = this.layers[k], GH = this.G * this.H;
    if (w.table) { for (let r = 0; r < GH; r++) ax[r] = w.table[x * GH + r]; return ax; }
    return affine(ax, w.wih, x, GH, this.H, w.bx);
  }
  // The logits (V) of the head over a last layer's hidden state h.
  logits(h, out) { return affine(out || new Float64Array(this.V), this.headW, h, this.V, this.H, this.headB); }
  // Buffers for `unitStep`: the preactivations, h and c, and every vector of one layer.
  unitBuffers() {
    const GH = this.G * this.H;
    return { ax: new Float64Array(GH), ah: new Float64Array(GH), h: new Float64Array(this.H), c: new Float64Array(this.H),
      v: Object.fromEntries(this.vectors.map((name) => [name, new Float64Array(this.H)])) };
  }
  // One unit j of layer k for one character, from its input x (a character id for layer 0, else the
  // layer below's h), the layer's h′ and c′ (null without a cell state): only that unit's G rows of
  // the weights are read. Fills buf.v[name][j] for every vector (buf from unitBuffers).
  unitStep(k, j, x, hPrev, cPrev, buf) {
    const w = this.layers[k], H = this.H, GH = this.G * H;
    for (let b = 0; b < this.G; b++) {
      const r = b * H + j;
      buf.ax[r] = w.table ? w.table[x * GH + r] : dotRow(w.wih, x, r, H, w.bx);
      buf.ah[r] = dotRow(w.whh, hPrev, r, H, w.bh);
    }
    buf.h[j] = hPrev[j]; buf.c[j] = cPrev ? cPrev[j] : 0;
    this.cellStep(this, buf.ax, buf.ah, buf.h, buf.c, w.peep, buf.v, j, j + 1);
    return buf.v;
  }
}

// The state of a run of a Net over text, and the buffers one step writes into.
class Model {
  constructor(net) {
    const G = net.G, H = net.H;
    this.net = net; this.h = []; this.c = []; this.ax = []; this.ah = []; this.v = [];
    for (let k = 0; k < net.L; k++) {
      this.h.push(new Float64Array(H)); this.c.push(net.cellState ? new Float64Array(H) : null);
      this.ax.push(new Float64Array(G * H)); this.ah.push(new Float64Array(G * H));
      this.v.push(Object.fromEntries(net.vectors.map((name) => [name, new Float64Array(H)])));
    }
    this.logits = new Float64Array(net.V);
  }
  // Read one character id through every layer (not the head).
  read(id) {
    const net = this.net, GH = net.G * net.H;
    let x = id;
    for (let k = 0; k < net.L; k++) {
      const w = net.layers[k];
      net.inputSide(k, x, this.ax[k]);
      affine(this.ah[k], w.whh, this.h[k], GH, net.H, w.bh);
      net.cellStep(net, this.ax[k], this.ah[k], this.h[k], this.c[k], w.peep, this.v[k], 0, net.H);
      x = this.h[k];
    }
  }
  // Read one character id: every layer, then the head. Returns the logits (V).
  step(id) {
    this.read(id);
    return this.net.logits(this.h[this.net.L - 1], this.logits);
  }
  // Every recorded vector of every layer after the last step, as float32 copies: [layer][vector] → (H).
  snapshot() {
    return this.v.map((byName) => Object.fromEntries(Object.entries(byName).map(([n, a]) => [n, Float32Array.from(a)])));
  }
}

// Probabilities (float64) of the logits: softmax.
function softmax(logits) {
  let top = -Infinity, total = 0;
  for (const x of logits) if (x > top) top = x;
  const p = Float64Array.from(logits, (x) => { const e = Math.exp(x - top); total += e; return e; });
  for (let i = 0; i < p.length; i++) p[i] /= total;
  return p;
}

// The k ids of highest probability, likeliest first (the lower id first on a tie): one pass over p.
function likeliest(p, k) {
  const top = [];
  for (let i = 0; i < p.length; i++) {
    if (top.length === k) { if (p[i] <= p[top[k - 1]]) continue; top.pop(); }
    let at = top.length;
    while (at > 0 && p[top[at - 1]] < p[i]) at--;
    top.splice(at, 0, i);
  }
  return top;
}
