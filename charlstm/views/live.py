"""The live training view: what `charlstm train` draws on a terminal while it trains.

A rich Live display on stderr, redrawn a few times a second: the budget as a bar, the figures of the
moment (step, training loss, last validation, chars/s), the training and validation curves in
bits per character drawn with braille dots, and the latest preview. Notices print above it and stay.
Only used when stderr is a terminal; otherwise `cli/train.py` prints plain lines.

Imports rich only; knows nothing of training beyond the events it is handed (training.events.Event).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..config import LOG2E
from .charts import Axis
from .glyphs import keeping_lines

#: Braille dot bits of a cell, [row][column] for the 4 × 2 dots of one character.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
#: Points kept per curve (older ones thinned, so a long run draws in constant time).
MAX_POINTS = 4000
#: The chart's y axis reaches up to the highest point of this last share of the run so far: the
#: first steps fall from a blind guess in seconds, and an axis drawn from there would leave the
#: rest of the run, where progress is slow, a line along the bottom rows. (A log axis would not:
#: the slow part is a few percent of the loss on it too.) Three quarters leave most of the width to
#: the curve, rather than to the flat top row the plunge runs off at.
RECENT_SHARE = 0.75
#: Where validation was scored: one mark a point, so the two curves differ without colour too.
VALIDATION_MARK = "•"
LABEL_WIDTH = 6


class Curve(NamedTuple):
    """One curve of a braille chart: a line of braille dots through its points, or, with `mark`,
    that character at each point."""

    label: str
    style: str
    points: list[tuple[float, float]]
    mark: str = ""


def braille_plot(series: Sequence[Curve | tuple], width: int, height: int, x_max: float | None = None,
                 recent: float | None = None) -> Text:
    """Curves (Curve, or (label, style, points[, mark])) on one chart `width` × `height` cells (each
    cell 2 × 4 dots), the x axis from 0 to x_max (or the last x). A line is drawn through the mean
    of the points in each dot column. The y axis, labelled on the left, runs from the lowest of
    those to the highest, or with `recent` to the highest in that last share of the x axis so far;
    points above it are left out (a line breaks there), and the x axis says so."""
    curves = [Curve(*c) for c in series]
    xs = [x for c in curves for x, y in c.points if math.isfinite(y)]
    if not xs or width < 4 or height < 2:
        return Text()
    canvas = _Canvas(width, height)
    x_top = max(x_max or 0.0, max(xs), 1e-9)
    x_axis = Axis.spanning(min(min(xs), 0.0), x_top)
    drawn = [(curve, _column_means(curve.points, lambda x: int(x_axis.fraction(x) * (canvas.cols - 1) + 0.5)))
             for curve in curves]
    means = [point for _, runs in drawn for run in runs for point in run]
    since = max(col for col, _ in means) * (1.0 - recent) if recent else 0
    lo, hi = min(y for _, y in means), max(y for col, y in means if col >= since)
    if hi - lo < 1e-9:     # a level line, half a unit either side (a flat axis where that is lost to rounding)
        lo, hi = lo - 0.5, hi + 0.5
    y_axis = Axis.spanning(lo, hi)
    for curve, runs in drawn:
        for run in runs:
            for shown in _below(run, hi):
                rows = [(col, (1.0 - y_axis.fraction(y)) * (canvas.rows - 1)) for col, y in shown]
                if curve.mark:
                    canvas.mark(rows, curve.mark, curve.style)
                else:
                    canvas.line(rows, curve.style)
    clipped = any(y > hi + 1e-9 for _, y in means)
    return canvas.text((f"{_figure(hi)} ", f"{_figure(lo)} "), f"{x_top:,.0f}" if x_top < 1e21 else f"{x_top:.3g}",
                       "the first steps, higher, run off the top" if clipped else "")


def _figure(value: float) -> str:
    """A y-axis label: two decimals, or two figures and an exponent for a value too large for them."""
    return f"{value:5.2f}" if abs(value) < 1e5 else f"{value:5.2g}"


def _below(run: list[tuple[int, float]], top: float) -> list[list[tuple[int, float]]]:
    """The stretches of a run at or below `top` (what lies above the chart is not drawn)."""
    stretches: list[list[tuple[int, float]]] = [[]]
    for col, y in run:
        if y > top + 1e-9:
            stretches.append([])
        else:
            stretches[-1].append((col, y))
    return [stretch for stretch in stretches if stretch]


def _column_means(points: Sequence[tuple[float, float]], column) -> list[list[tuple[int, float]]]:
    """The points as runs of (dot column, mean y of the points in it), a run broken at a value that
    is not finite (NaN, ±inf): one dot a column keeps a noisy curve a line rather than a smear."""
    runs: list[list[tuple[int, float]]] = [[]]
    values: list[float] = []
    at = None
    for x, y in [*points, (None, math.nan)]:
        col = column(x) if x is not None and math.isfinite(y) else None
        if values and col != at:
            scale = max(abs(v) for v in values) or 1.0                   # no sum leaves the float range:
            runs[-1].append((at, scale * (math.fsum(v / scale for v in values) / len(values))))  # each |v / scale| ≤ 1
            values = []
        if col is None:
            runs.append([])
            continue
        values.append(y)
        at = col
    return [run for run in runs if run]


class _Canvas:
    """Braille dots and marks on a grid of character cells, each 2 dots wide and 4 high."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height, self.cols, self.rows = width, height, width * 2, height * 4
        self.cells: dict[tuple[int, int], tuple[int, str]] = {}   # (cell row, cell column): (dot bits, style)
        self.marks: dict[tuple[int, int], tuple[str, str]] = {}   # (cell row, cell column): (mark, style)

    def dot(self, col: int, row: float, style: str) -> None:
        row = min(max(int(row + 0.5), 0), self.rows - 1)
        key = (row // 4, col // 2)
        bits, _ = self.cells.get(key, (0, style))
        self.cells[key] = (bits | _DOTS[row % 4][col % 2], style)       # the later curve colours a shared cell

    def line(self, points: Sequence[tuple[int, float]], style: str) -> None:
        """Dots at (column, row) points, joined: across the columns between two points, and up or
        down between neighbouring columns (half the rise in each), so the curve is one line."""
        last = None
        for col, row in points:
            if last is not None and col > last[0] + 1:
                for c in range(last[0] + 1, col):
                    self.dot(c, last[1] + (row - last[1]) * (c - last[0]) / (col - last[0]), style)
            elif last is not None and abs(row - last[1]) > 1:
                step = 1 if row > last[1] else -1
                middle = (last[1] + row) / 2
                for r in range(round(last[1]) + step, round(row), step):
                    self.dot(last[0] if (r - middle) * step < 0 else col, r, style)
            self.dot(col, row, style)
            last = (col, row)

    def mark(self, points: Sequence[tuple[int, float]], mark: str, style: str) -> None:
        """`mark` in the cell of each (column, row) point, over any dots there."""
        for col, row in points:
            self.marks[min(int(row + 0.5), self.rows - 1) // 4, col // 2] = (mark, style)

    def text(self, y_labels: tuple[str, str], x_end: str, note: str = "") -> Text:
        """The grid with the y axis labelled top and bottom, and an x axis from 0 to `x_end` with
        `note` between them."""
        text = Text()
        for r in range(self.height):
            label = y_labels[0] if r == 0 else y_labels[1] if r == self.height - 1 else ""
            text.append(label.rjust(LABEL_WIDTH), style="dim")
            text.append("│", style="dim")
            for c in range(self.width):
                bits, style = self.cells.get((r, c), (0, ""))
                mark, mark_style = self.marks.get((r, c), ("", ""))
                if mark:
                    text.append(mark, style=mark_style)
                else:
                    text.append(chr(0x2800 + bits) if bits else " ", style=style)
            text.append("\n")
        text.append(" " * LABEL_WIDTH + "└" + "─" * self.width + "\n", style="dim")
        room = max(self.width - 1 - len(x_end), 1)
        if note and len(note) + 4 <= room:
            note = f"({note})".center(room)
        else:
            note = " " * room
        text.append(" " * (LABEL_WIDTH + 1) + "0" + note + x_end, style="dim")
        return text


def pieces_in_lines(pieces: Sequence[Text], width: int, gap: str = "   ") -> Text:
    """Pieces (a figure and its unit, a legend entry) joined by `gap`, a line broken only between
    two pieces where the next would pass `width`: a figure never wraps inside itself."""
    lines = Text(no_wrap=True, overflow="fold")
    used = 0
    for piece in pieces:
        if used and used + len(gap) + piece.cell_len > width:
            lines.append("\n")
            used = 0
        elif used:
            lines.append(gap)
            used += len(gap)
        lines.append_text(piece)
        used += piece.cell_len
    return lines


class LiveView:
    """Training events drawn as a live panel on a terminal (same interface as views.progress.PlainProgress:
    a context manager called with each training.events.Event)."""

    def __init__(self, out_dir, config, console: Console | None = None, refresh_per_second: float = 4,
                 fitted: str = "", yardsticks=None) -> None:
        self.out_dir, self.config, self.fitted = out_dir, config, fitted
        self.yardsticks = yardsticks            # scoring.yardsticks.Yardsticks of the corpus, or None
        self.console = console or Console(stderr=True, highlight=False)
        self.by_time = config.max_steps is None and config.time_budget is not None
        self.header = ""
        self.step, self.elapsed, self.loss, self.val, self.rate, self.best = 0, 0.0, None, None, None, None
        self.train_curve: list[tuple[float, float]] = []     # (step, bits per char of the training batch)
        self.val_curve: list[tuple[float, float]] = []
        self.preview = ""
        self.weights_val: float | None = None   # the weights' own figure when their average is the model
        self.started = time.monotonic()
        self.live = Live(console=self.console, refresh_per_second=refresh_per_second, transient=False,
                         get_renderable=self.render, redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> "LiveView":
        self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.live.stop()

    def __call__(self, event) -> None:
        if event.kind == "start":
            self.header = f"training into {self.out_dir}/ — {event.text}" + (f"; {self.fitted}" if self.fitted else "")
            self.step, self.elapsed = event.step, event.elapsed_s
            return
        if event.kind == "notice":
            self.live.console.print(f"charlstm: {event.text}", markup=False, highlight=False)
            return
        self.step, self.elapsed = event.step, event.elapsed_s
        if event.chars_per_s:
            self.rate = event.chars_per_s
        if event.train_loss is not None:
            self.loss = event.train_loss
            if event.kind == "step":
                self._add(self.train_curve, (event.step, event.train_loss * LOG2E))
        if event.kind == "eval":
            self.weights_val = event.weights_val_bpc
            if event.val_bpc is not None:
                self.val = event.val_bpc
                self.best = event.val_bpc if self.best is None else min(self.best, event.val_bpc)
                self._add(self.val_curve, (event.step, event.val_bpc))
            if event.text:
                self.preview = keeping_lines(event.text)

    @staticmethod
    def _add(curve: list, point: tuple[float, float]) -> None:
        curve.append(point)
        if len(curve) > MAX_POINTS:  # keep every other point: the chart's resolution is far coarser
            del curve[::2]

    # -- drawing

    def _fraction(self) -> tuple[float, str]:
        config = self.config
        if self.by_time:
            total = config.time_budget
            return min(self.elapsed / total, 1.0) if total else 0.0, f"{self.elapsed:.0f}/{total:.0f} s"
        total = config.max_steps or 1
        return min(self.step / total, 1.0), f"{self.step}/{total} steps"

    def render(self):
        width = max(self.console.width, 40)
        fraction, done = self._fraction()
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=fraction, width=max(width - 30, 10)),
                    Text(f"{fraction * 100:3.0f}%  {done}"))
        figures = [Text(f"step {self.step:,}")]
        if self.loss is not None:
            figures.append(Text(f"loss {self.loss * LOG2E:.3f} bpc"))
        if self.val is not None:
            figures.append(Text.assemble("validation ", (f"{self.val:.3f} bpc", "bold"), f" (best {self.best:.3f})"))
            if self.weights_val is not None:
                figures.append(Text(f"averaged; the weights alone {self.weights_val:.3f}", style="dim"))
        if self.rate:
            figures.append(Text(f"{self.rate / 1000:.1f}k chars/s"))
        parts = [Text(self.header, style="dim", overflow="fold"), bar, pieces_in_lines(figures, width)]
        if self.train_curve or self.val_curve:
            parts += self._chart(width)
        if self.preview:
            parts.append(Panel(Text(self.preview.strip("\n")[-600:], overflow="fold"),
                               title=f"preview at step {self.val_curve[-1][0]:,.0f}" if self.val_curve else "preview",
                               title_align="left", border_style="dim", height=8))
        return Group(*parts)

    def _chart(self, width: int) -> list[Text]:
        """The legend, with the yardsticks, and the braille chart, scaled to the recent part of the run."""
        x_max = self.config.max_steps if not self.by_time and self.config.max_steps else None
        curves = [Curve("training", "cyan", self.train_curve),
                  Curve("validation", "magenta", self.val_curve, mark=VALIDATION_MARK)]
        legend = [Text("bits/char by step:", style="dim"), Text("⠤⠒ training", style="cyan"),
                  Text(f"{VALIDATION_MARK} validation", style="magenta")]
        if self.yardsticks is not None:
            legend.append(Text(f"for scale: {self.yardsticks.short()}", style="dim"))
        chart = braille_plot(curves, width=max(width - 12, 20), height=8, x_max=x_max, recent=RECENT_SHARE)
        return [pieces_in_lines(legend, width), chart]
