"""The live training view: what `charlstm train` draws on a terminal while it trains.

A rich Live display on stderr, redrawn a few times a second: the budget as a bar, the figures of the
moment (step, training loss, last validation, chars/s), the training and validation curves in
bits per character drawn with braille dots, and the latest preview. Notices print above it and stay.
Only used when stderr is a terminal; otherwise `cli/train.py` prints plain lines.

Imports rich only; knows nothing of training beyond the events it is handed (train.Event).
"""

from __future__ import annotations

import math
import time

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .glyphs import keeping_lines

LOG2E = 1.0 / math.log(2.0)
#: Braille dot bits of a cell, [row][column] for the 4 × 2 dots of one character.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
#: Points kept per curve (older ones thinned, so a long run draws in constant time).
MAX_POINTS = 4000


def braille_plot(series: list[tuple[str, str, list[tuple[float, float]]]], width: int, height: int,
                 x_max: float | None = None) -> Text:
    """Curves (label, style, [(x, y)…]) on one chart `width` × `height` cells (each cell 2 × 4 dots),
    a y axis labelled with its range on the left, the x axis from 0 to x_max (or the last x)."""
    points = [(x, y) for _, _, pts in series for x, y in pts if math.isfinite(y)]
    text = Text()
    if not points or width < 4 or height < 2:
        return text
    lo, hi = min(y for _, y in points), max(y for _, y in points)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    x_top = max(x_max or 0.0, max(x for x, _ in points), 1e-9)
    cols, rows = width * 2, height * 4
    cells: dict[tuple[int, int], tuple[int, str]] = {}

    def dot(col: int, row: float, style: str) -> None:
        row = min(max(int(row + 0.5), 0), rows - 1)
        key = (row // 4, col // 2)
        bits, _ = cells.get(key, (0, style))
        cells[key] = (bits | _DOTS[row % 4][col % 2], style)       # the later curve colours a shared cell

    for _, style, pts in series:
        last = None
        for x, y in pts:
            if not math.isfinite(y):
                last = None
                continue
            col = min(int(x / x_top * (cols - 1) + 0.5), cols - 1)
            row = (hi - y) / (hi - lo) * (rows - 1)
            if last is not None and col > last[0] + 1:  # join to the previous point, column by column
                for c in range(last[0] + 1, col):
                    dot(c, last[1] + (row - last[1]) * (c - last[0]) / (col - last[0]), style)
            dot(col, row, style)
            last = (col, row)
    label_width = 6
    for r in range(height):
        label = f"{hi:5.2f} " if r == 0 else f"{lo:5.2f} " if r == height - 1 else " " * label_width
        text.append(label, style="dim")
        text.append("│", style="dim")
        for c in range(width):
            bits, style = cells.get((r, c), (0, ""))
            text.append(chr(0x2800 + bits) if bits else " ", style=style)
        text.append("\n")
    text.append(" " * label_width + "└" + "─" * width + "\n", style="dim")
    end = f"{x_top:,.0f}"
    text.append(" " * (label_width + 1) + "0" + " " * max(width - 1 - len(end), 1) + end, style="dim")
    return text


class LiveView:
    """Training events drawn as a live panel on a terminal (same interface as cli/train._Progress:
    a context manager called with each train.Event)."""

    def __init__(self, out_dir, config, console: Console | None = None, refresh_per_second: float = 4,
                 fitted: str = "") -> None:
        self.out_dir, self.config, self.fitted = out_dir, config, fitted
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
        figures = Text()
        figures.append(f"step {self.step:,}")
        if self.loss is not None:
            figures.append(f"   loss {self.loss * LOG2E:.3f} bpc")
        if self.val is not None:
            figures.append("   validation ")
            figures.append(f"{self.val:.3f} bpc", style="bold")
            figures.append(f" (best {self.best:.3f})")
            if self.weights_val is not None:
                figures.append(f" averaged; weights {self.weights_val:.3f}", style="dim")
        if self.rate:
            figures.append(f"   {self.rate / 1000:.1f}k chars/s")
        parts = [Text(self.header, style="dim", overflow="fold"), bar, figures]
        if self.train_curve or self.val_curve:
            x_max = self.config.max_steps if not self.by_time and self.config.max_steps else None
            chart = braille_plot([("training", "cyan", self.train_curve), ("validation", "magenta", self.val_curve)],
                                 width=max(width - 12, 20), height=8, x_max=x_max)
            legend = Text("bits per character, by step:  ", style="dim")
            legend.append("⣿ training", style="cyan")
            legend.append("   ")
            legend.append("⣿ validation", style="magenta")
            parts += [legend, chart]
        if self.preview:
            parts.append(Panel(Text(self.preview.strip("\n")[-600:], overflow="fold"),
                               title=f"preview at step {self.val_curve[-1][0]:.0f}" if self.val_curve else "preview",
                               title_align="left", border_style="dim", height=8))
        return Group(*parts)
