"""Where a run stands against its budget: steps taken, the position in the streams, seconds spent
(earlier sessions included), when the next evaluation is due, and whether the next step reads half
a window. Knows the recipe's budget and cadence; nothing of models, files or events.
"""

from __future__ import annotations

import time

from ..config import TrainConfig
from ..runs.runinfo import RunInfo
from .distributed import Cluster


def budget_left(step: int, elapsed: float, config: TrainConfig) -> bool:
    """Room for one more step at `step` after `elapsed` seconds under `config`'s budget (both totals
    of the run, earlier sessions included)."""
    return not ((config.max_steps is not None and step >= config.max_steps)
                or (config.time_budget is not None and elapsed >= config.time_budget))


class Clock:
    """A run's position and time against its budget, kept by every rank; the decisions that must be
    the same on every rank (an evaluation's turn, the end of the short windows) are agreed through
    the cluster. Times are `time.perf_counter()` readings; `start()` begins the session's clock."""

    def __init__(self, config: TrainConfig, cluster: Cluster, info: RunInfo | None = None, seq_len: int = 0) -> None:
        self.config, self.cluster = config, cluster
        self.steps = info.step if info else 0
        # Where the next step starts in the streams, in half windows: a step reads half a window
        # while the first `short_windows` of the budget lasts, then whole ones (short_step).
        self.half_windows = info.position if info else 0
        self.elapsed_before = info.elapsed_s if info else 0.0                     # earlier sessions
        # Windows only grow: half ones while no whole one was read, and there is a budget to take a fraction of.
        self.short_phase = (self.half_windows == self.steps and config.short_windows > 0 and seq_len >= 2
                            and bool(config.max_steps or config.time_budget))
        self.session_steps, self.train_time, self.train_chars = 0, 0.0, 0          # this session's steps alone
        self.last_eval_cost, self.last_eval_step = 0.0, -1
        self._next_eval_at: float | None = None                                   # perf_counter times
        self._clock_eval_at: float | None = None                                 # the last one the clock asked for
        self._t0 = time.perf_counter()

    def start(self) -> None:
        """The session begins now; the clock's first evaluation is scheduled."""
        self._t0 = time.perf_counter()
        self.schedule_evaluation(first=True)

    @property
    def elapsed(self) -> float:
        """Seconds of this run so far, earlier sessions included."""
        return self.elapsed_before + time.perf_counter() - self._t0

    @property
    def chars_per_s(self) -> float:
        """Training throughput of this session, evaluation excluded."""
        return self.train_chars / max(self.train_time, 1e-9)

    @property
    def progress(self) -> float:
        """How much of the budget is spent, 0 → 1 (the larger share when both budgets are set)."""
        elapsed = self.elapsed
        parts = []
        if self.config.max_steps:
            parts.append(self.steps / self.config.max_steps)
        if self.config.time_budget:
            parts.append(elapsed / self.config.time_budget)
        return max(parts) if parts else 0.0

    def spent(self) -> bool:
        """No room for another step: the time budget counts the step (its mean so far) and the
        closing evaluation and save (as long as the last one took) before they run, so a run ends
        on time rather than one step and one evaluation late."""
        mean_step = self.train_time / self.session_steps if self.session_steps else 0.0
        return not budget_left(self.steps, self.elapsed + mean_step + self.last_eval_cost, self.config)

    def short_step(self) -> bool:
        """Whether the next step reads half a window: over the first `short_windows` of the budget
        (twice the updates per character while the loss falls fastest; benchmarks/README.md), and to
        finish a window begun in halves. Once a whole window is read, windows stay whole. Ranks
        decide together."""
        if self.half_windows % 2:
            return True
        if self.short_phase:
            over = self.progress >= self.config.short_windows
            self.short_phase = not self.cluster.agree(over)
        return self.short_phase

    def stepped(self, short: bool, started: float, chars: int) -> None:
        """A step that began at `started` (perf_counter) is done: it read half a window if `short`,
        `chars` characters over all ranks."""
        self.steps += 1
        self.half_windows += 1 if short else 2
        self.session_steps += 1
        self.train_time += time.perf_counter() - started
        self.train_chars += chars

    def evaluation_due(self) -> bool:
        """Every `eval_every` steps, and on the clock: the first `eval_seconds`/2 into this session
        (sooner in a short budget: a sixth of it), then `eval_seconds` after the last one ended — but
        neither kind within a quarter of `eval_seconds` of the end, where the closing evaluation
        comes anyway. A step's turn that comes within a quarter of `eval_seconds` after an
        evaluation the clock asked for is skipped (it would show nearly the same figure, and each
        costs seconds of the budget). Ranks decide together."""
        seconds = self.config.eval_seconds
        clocked = bool(seconds) and seconds > 0
        left = None if self.config.time_budget is None else self.config.time_budget - self.elapsed
        closing_near = clocked and left is not None and left <= seconds / 4
        if self.steps % self.config.eval_every == 0:
            recent = clocked and self._clock_eval_at is not None and (
                time.perf_counter() - self._clock_eval_at < seconds / 4)
            return not self.cluster.agree(recent or closing_near)
        due = False
        if self._next_eval_at is not None and time.perf_counter() >= self._next_eval_at:
            due = not closing_near
        due = self.cluster.agree(due)
        if due:
            self._clock_eval_at = time.perf_counter()
        return due

    def schedule_evaluation(self, first: bool = False) -> None:
        """The clock's next evaluation: `eval_seconds` from now (the first: half of it, at most a
        sixth of the time left); none without `eval_seconds`."""
        seconds = self.config.eval_seconds
        if not seconds or seconds <= 0:
            self._next_eval_at = None
            return
        if first:
            seconds = seconds / 2
            if self.config.time_budget is not None:
                seconds = min(seconds, max(self.config.time_budget - self.elapsed_before, 0.0) / 6)
        self._next_eval_at = time.perf_counter() + seconds

    def evaluated(self, started: float) -> None:
        """An evaluation that began at `started` (perf_counter) is done: its cost is counted against
        the budget's end, and the clock's next one is scheduled."""
        self.last_eval_step, self.last_eval_cost = self.steps, time.perf_counter() - started
        self.schedule_evaluation()
