"use strict";
// The colour of a value, as colours.py draws it (value_rgb, _style), shared by every page that
// colours text in the browser. C, the colours themselves, is the page's: its script defines
// `const C = DATA.drawn.colors`, written by Python from colours.py.
function blend(a, b, w) {
  w = Math.min(Math.max(w, 0), 1);
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * w));
}
// Gates on white→green over 0..1; signed values white→red (negative) or →blue (positive), full at |value| = scale.
function rgbOf(value, gate, scale) {
  return gate ? blend(C.white, C.green, value / scale) : blend(C.white, value < 0 ? C.red : C.blue, Math.abs(value) / scale);
}
function colour(value, gate, scale) { return "rgb(" + rgbOf(value, gate, scale).join(", ") + ")"; }
// Black ink on light backgrounds, white on dark ones (the terminal view does the same).
function ink(rgb) { return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 ? "" : "#fff"; }
function fmt(v) { return (v >= 0 ? "+" : "") + v.toFixed(3); }
