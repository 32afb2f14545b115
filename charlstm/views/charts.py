"""SVG line charts for the report. The y axis starts at zero (a figure that can be negative aside),
so a chart shows how large a change is, not only its shape."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Sequence

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


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering lo..hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.floor(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        if value >= lo - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds >= 2 * 3600:
        return "h", 3600.0
    if seconds >= 120:
        return "min", 60.0
    return "s", 1.0


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
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
    x_lo, x_hi = 0.0, max(max(xs) / scale, 1e-9)
    y_lo, y_hi = min(min(ys), 0.0), max(ys)
    if y_hi - y_lo < 1e-9:
        y_hi = y_lo + 1.0
    y_hi += (y_hi - y_lo) * 0.05
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x / scale - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(y_label)}">']
    for tick in nice_ticks(y_lo, y_hi):
        y = py(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    for tick in nice_ticks(x_lo, x_hi):
        x = left + (tick - x_lo) / (x_hi - x_lo) * plot_w
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


def _finite(value) -> float | None:
    """A JSON number as a finite float, else None (NaN, ±inf, an integer past float range, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
