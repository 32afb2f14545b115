"""SVG line charts for the report, and the axis arithmetic of every chart (Axis, nice_ticks; the live
view's braille chart uses them too). The y axis starts at zero (a figure that can be negative aside),
so a chart shows how large a change is, not only its shape. Any finite values draw: ticks are few
and end, a zero range is flat, every coordinate is finite. What a run's log holds beyond what a
figure can take (config.LOG_FIGURES) never reaches an axis: LogFigures leaves it out and counts it."""

from __future__ import annotations

import html
import math
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..config import LOG_FIGURES

#: Most points one curve draws (a longer log is thinned evenly, its last point kept).
MAX_POINTS = 1500


#: One colour per run, in order (colour-blind-safe Okabe–Ito hues).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: list[tuple[float, float, float]]    # (step, seconds, y)
    dashed: bool = False


@dataclass(frozen=True)
class Reference:
    """A level drawn across a chart as a dotted line with its label (a yardstick)."""

    label: str
    y: float


def _thin(points: list, limit: int = MAX_POINTS) -> list:
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


@dataclass(frozen=True)
class Axis:
    """Values from `lo` to `hi` (any finite floats, lo <= hi) laid along an axis: the one scale of
    every chart, the report's and the live view's. A range float arithmetic cannot split (equal
    values) is flat: every value lies at its middle, under one tick."""

    lo: float
    hi: float

    @classmethod
    def spanning(cls, lo: float, hi: float, head_room: float = 0.0) -> "Axis":
        """lo..hi (in either order), its top raised by `head_room` of the range where that is finite."""
        lo, hi = min(lo, hi), max(lo, hi)
        raised = hi + (hi / 2 - lo / 2) * 2 * head_room          # halves: hi − lo may pass the float range
        return cls(lo, raised if math.isfinite(raised) else hi)

    def fraction(self, value: float) -> float:
        """Where `value` lies between lo (0) and hi (1), clamped to 0..1; 0.5 on a flat axis. Each
        value is divided by the largest magnitude first, so no difference leaves the float range."""
        size = max(abs(self.lo), abs(self.hi))
        span = self.hi / size - self.lo / size if size > 0 else 0.0
        if not span > 0:
            return 0.5
        share = (value / size - self.lo / size) / span
        return min(max(share, 0.0), 1.0) if math.isfinite(share) else 0.5

    def ticks(self, count: int = 5) -> list[float]:
        return nice_ticks(self.lo, self.hi, count)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering lo..hi: at most count + 2 of them, each
    a finite float in lo..hi, in order. [lo] for a flat range (hi <= lo); [] for a bound that is
    not finite. The step is never below the spacing of floats at the range (1e16 and its next float
    are two ticks, not a step that cannot advance); where no round step is a normal float (a range
    of subnormals), the ticks are lo and hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    size = max(abs(lo), abs(hi))
    raw = (hi / size - lo / size) / max(count, 1) * size            # (hi − lo) / count, within the float range
    step = _round_step(max(raw, math.ulp(size))) if raw < math.inf else None
    if step is None:
        return [lo, hi]
    digits, exponent = step
    width = digits * 10.0 ** exponent
    first, last = math.ceil(lo / width), math.floor(hi / width)
    if last - first > count + 1:                                   # rounding aside, never more than count + 2
        return [lo, hi]
    ticks: list[float] = []
    for k in range(first, last + 1):
        tick = min(max(float(f"{k * digits}e{exponent}"), lo), hi)  # k·step in decimal: no 0.30000000000000004
        if not ticks or tick > ticks[-1]:
            ticks.append(tick)
    return ticks or [lo]


def _round_step(raw: float) -> tuple[int, int] | None:
    """The smallest m × 10^e (m in 1, 2, 5) at least `raw`, as (m, e); None when it is not a normal,
    finite float."""
    exponent = math.floor(math.log10(raw))
    for digits in (1, 2, 5, 10, 20):
        width = digits * 10.0 ** exponent
        if width >= raw:
            return (digits, exponent) if sys.float_info.min <= width < math.inf else None
    return None


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds >= 2 * 3600:
        return "h", 3600.0
    if seconds >= 120:
        return "min", 60.0
    return "s", 1.0


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if 10_000 <= abs(value) < 1e21:
        return f"{value:,.0f}"
    if abs(value) >= 1e21:
        return f"{value:.6g}"
    return f"{value:.6g}"


def svg_chart(series: Sequence[Series], axis: str, y_label: str, width: int = 760, height: int = 280,
              references: Sequence[Reference] = ()) -> str:
    """One line chart as inline SVG; axis "steps" or "time" picks the x value of every point. The y
    axis runs from zero (or the lowest point, if below it) to above the highest point or reference."""
    left, right, top, bottom = 64, 16, 12, 44
    drawn = [s for s in series if s.points]
    if not drawn:
        return f'<svg class="chart" viewBox="0 0 {width} 60" role="img"><text x="10" y="30">no data</text></svg>'
    xs = [p[0] if axis == "steps" else p[1] for s in drawn for p in s.points]
    ys = [p[2] for s in drawn for p in s.points] + [r.y for r in references]
    unit, scale = ("", 1.0) if axis == "steps" else _time_unit(max(xs))
    x_axis = Axis.spanning(min(min(xs) / scale, 0.0), max(max(xs) / scale, 1e-9))
    y_lo, y_hi = min(min(ys), 0.0), max(ys)
    if y_hi - y_lo < 1e-9:     # a level line: one unit above it (a flat axis where that is lost to rounding)
        y_hi = y_lo + 1.0
    y_axis = Axis.spanning(y_lo, y_hi, head_room=0.05)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + x_axis.fraction(x / scale) * plot_w

    def py(y: float) -> float:
        return top + (1.0 - y_axis.fraction(y)) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(y_label)}">']
    for tick in y_axis.ticks():
        y = py(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    for tick in x_axis.ticks():
        x = left + x_axis.fraction(tick) * plot_w
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_number(tick)}</text>')
    x_label = "step" if axis == "steps" else f"wall-clock time ({unit})"
    parts.append(f'<text class="label" x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{x_label}</text>'
                 f'<text class="label" transform="translate(14 {top + plot_h / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{html.escape(y_label)}</text>'
                 f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>')
    for r in references:
        y = py(r.y)
        parts.append(f'<line class="reference" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="reference-label" x="{width - right - 4}" y="{y - 4:.1f}" text-anchor="end">'
                     f'{html.escape(r.label)}</text>')
    for s in drawn:
        parts.append(_curve(s, lambda p: px(p[0] if axis == "steps" else p[1]), lambda p: py(p[2])))
    parts.append("</svg>")
    return "".join(parts)


def _curve(s: Series, px, py) -> str:
    """One series as a polyline (dashed if it is), with a dot at each point when they are few."""
    coords = " ".join(f"{px(p):.1f},{py(p):.1f}" for p in s.points)
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    out = [f'<polyline class="curve" data-run="{html.escape(s.name)}" points="{coords}" stroke="{s.colour}"'
           f'{dash}><title>{html.escape(s.name)}</title></polyline>']
    if len(s.points) <= 60:
        out += [f'<circle cx="{px(p):.1f}" cy="{py(p):.1f}" r="2.5" fill="{s.colour}"/>' for p in s.points]
    return "".join(out)


#: What each figure of a run's log is called where the report says it left values out.
FIGURE_NAMES = {"step": "step", "elapsed_s": "elapsed seconds", "train_loss": "training loss (nats)",
                "val_bpc": "validation bits per character", "chars_per_s": "characters per second"}


class LogFigures:
    """Reads the figures the charts draw from a run's log records, each only within what it can
    hold (config.LOG_FIGURES), and counts what it leaves out: a value no such figure can take
    (negative, past its cap, not a number) never reaches an axis, and the page says so (`note`)."""

    def __init__(self) -> None:
        self.left_out: Counter[str] = Counter()

    def __call__(self, record: dict, name: str) -> float | None:
        """The figure `name` of `record` as a float; None when it is absent or null (the log writes
        a non-finite number as null), and when it is out of its range (counted)."""
        value = record.get(name)
        if value is None:
            return None
        if LOG_FIGURES[name].problem(value) is not None:
            self.left_out[name] += 1
            return None
        return float(value)

    def note(self) -> str:
        """What was left out, in words ("" when nothing was)."""
        if not self.left_out:
            return ""
        def amount(value: float) -> str:
            return f"{int(value):,}" if value == int(value) else f"{value:,.6g}"

        parts = [f"{count:,} {FIGURE_NAMES[name]} value{'s' if count > 1 else ''} outside "
                 f"{amount(LOG_FIGURES[name].low)} to {amount(LOG_FIGURES[name].high)}"
                 for name, count in self.left_out.items()]
        return f"Left out of the charts, as no such figure can take them: {'; '.join(parts)}."
