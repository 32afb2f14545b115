"""What a run in progress tells: metrics.jsonl lines (rank 0) and typed events to the callback —
the start, each step, each evaluation, notices, an early stop. Decides nothing; the loop calls it
with where the run stands (its Clock).
"""

from __future__ import annotations

from typing import Any, Callable

from ..config import LOG2E, TrainConfig
from ..runs.folder import Run
from ..runs.logs import MetricsWriter
from .clock import Clock
from .events import Event, EventKind
from .validation import Weights


class Reporter:
    """The run's log and its events. metrics.jsonl holds one line of strict JSON per `log_every`
    steps (the mean training loss over them), one per evaluation and one for an early stop; it is
    written while `open` (rank 0 alone opens it). Events go to `on_event` (None on the other ranks)."""

    def __init__(self, config: TrainConfig, on_event: Callable[[Event], None] | None) -> None:
        self.config, self._on_event = config, on_event
        self._metrics: MetricsWriter | None = None
        self.window_loss, self.window_steps = 0.0, 0          # the steps since the last step line

    def open(self, run: Run, fresh: bool) -> None:
        """Log to the run's metrics.jsonl (emptied first when `fresh`)."""
        self._metrics = run.log.open_metrics(fresh=fresh)

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
        self._metrics = None

    def start(self, clock: Clock, text: str) -> None:
        """The run begins (or resumes); `text` describes the model and the data."""
        self.emit(Event(kind=EventKind.START, step=clock.steps, max_steps=self.config.max_steps,
                        elapsed_s=clock.elapsed_before, time_budget=self.config.time_budget, text=text))

    def step(self, clock: Clock, loss: float, lr: float, val_bpc: float | None) -> None:
        """A step was taken with loss `loss` (nats) at `lr`; `val_bpc` is the last evaluation's figure."""
        self.window_loss += loss
        self.window_steps += 1
        elapsed, rate = clock.elapsed, clock.chars_per_s
        if clock.steps % self.config.log_every == 0:
            self.log({"step": clock.steps, "elapsed_s": round(elapsed, 3),
                      "train_loss": round(self.window_loss / self.window_steps, 5), "lr": lr,
                      "chars_per_s": round(rate, 1)})
            self.window_loss, self.window_steps = 0.0, 0
        self.emit(Event(kind=EventKind.STEP, step=clock.steps, max_steps=self.config.max_steps, elapsed_s=elapsed,
                        time_budget=self.config.time_budget, train_loss=loss, val_bpc=val_bpc, lr=lr,
                        chars_per_s=rate))

    def evaluation(self, clock: Clock, val_bpc: float | None, preview: str, weights: Weights,
                   loss: float | None = None, lr: float | None = None) -> None:
        """An evaluation scored `val_bpc` (None without validation text) with the better of `weights`
        and sampled `preview`; `loss` and `lr` are those of the step just taken (None for the closing
        evaluation, which follows no step of its own)."""
        elapsed, rate = clock.elapsed, clock.chars_per_s
        record = {"step": clock.steps, "elapsed_s": round(elapsed, 3),
                  "val_bpc": None if val_bpc is None else round(val_bpc, 5),
                  "val_loss": None if val_bpc is None else round(val_bpc / LOG2E, 5)}
        if val_bpc is not None:
            record.update(weights.figures())
        if lr is not None:
            record["lr"] = lr
        self.log({**record, "chars_per_s": round(rate, 1)})
        self.emit(Event(kind=EventKind.EVAL, step=clock.steps, max_steps=self.config.max_steps, elapsed_s=elapsed,
                        time_budget=self.config.time_budget, train_loss=loss, val_bpc=val_bpc, lr=lr,
                        chars_per_s=rate if lr is not None else None, text=preview,
                        weights_val_bpc=weights.beaten_figure if val_bpc is not None else None))

    def stopped(self, clock: Clock, why: str) -> None:
        """The run ends early (--patience): logged, and told as a notice."""
        self.log({"step": clock.steps, "elapsed_s": round(clock.elapsed, 3), "stopped": why})
        self.notice(f"stopping early at step {clock.steps}: {why}", clock.steps)

    def notice(self, text: str, step: int) -> None:
        """Something the user should know."""
        self.emit(Event(kind=EventKind.NOTICE, step=step, text=text))

    def log(self, record: dict[str, Any]) -> None:
        """One record of the log (rank 0; runs/logs.py writes it as a line of strict JSON)."""
        if self._metrics is not None:
            self._metrics.write(record)

    def emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
