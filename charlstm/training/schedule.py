"""The learning-rate schedule: warmup, the peak, and a cosine over the last part of the budget."""

from __future__ import annotations

import math

from ..config import TrainConfig


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
