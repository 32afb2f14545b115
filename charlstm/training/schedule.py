"""The learning-rate schedule: warmup, the peak, and a cosine over the last part of the budget; and
the rate each step takes from it, which never rises after warmup."""

from __future__ import annotations

import math

from ..config import TrainConfig
from ..runs.runinfo import RunInfo


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over warmup_steps; the peak until the last decay_fraction of the budget; then
    cosine from the peak to min_lr_ratio·peak as progress → 1 (decay_fraction 1: cosine throughout)."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    start = 1.0 - config.decay_fraction
    if progress <= start or config.decay_fraction <= 0:
        return peak
    floor = peak * config.min_lr_ratio
    phase = min((progress - start) / config.decay_fraction, 1.0)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * phase))


class LearningRate:
    """The rate of each step of a run: the schedule, but after warmup never above the step before's.

    An uninterrupted run is unchanged by that (its schedule only falls), and so is a resume with the
    same budget (bit-identical losses); an extended budget goes on at the rate the run had reached,
    holds it while the new, longer budget's schedule is above it, then follows that schedule's
    cosine to its floor at the new end. No jump back to the peak. `last` is the rate of this
    session's last update (None before one), which a divergence message names."""

    def __init__(self, config: TrainConfig, info: RunInfo | None = None) -> None:
        self.config = config
        self.cap = None if info is None else resumed_cap(info, config)
        self.last: float | None = None

    def at(self, step: int, progress: float) -> float:
        """The rate of step `step` with `progress` (0 → 1) of the budget spent."""
        lr = learning_rate(self.config, step, progress)
        if step >= self.config.warmup_steps:  # after warmup the rate only falls
            if self.cap is not None and lr > self.cap:
                lr = self.cap
            self.cap = lr
        return lr

    def applied(self, lr: float) -> None:
        """An update was made at `lr`."""
        self.last = lr


def resumed_cap(info: RunInfo, config: TrainConfig) -> float | None:
    """The learning rate a resumed run may not exceed: that of the last update before the checkpoint
    (stored with the optimizer's groups), scaled if the peak learning rate changed; None within warmup."""
    if info.step <= info.train_config.warmup_steps or not info.optimizer_groups:
        return None  # the last update was a warmup step (or there was none)
    last = info.optimizer_groups[0].get("lr")
    if isinstance(last, bool) or not isinstance(last, (int, float)) or not math.isfinite(last) or last <= 0:
        return None
    old_peak, peak = info.train_config.learning_rate, config.learning_rate
    return float(last) if old_peak == peak or old_peak <= 0 else float(last) * peak / old_peak
