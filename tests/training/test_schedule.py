"""training/schedule.py: the learning rate: linear warmup, constant, then a cosine decay over the last
fraction of the budget to the floor. (On resume it never rises again: test_resume.py.)"""

from __future__ import annotations

import pytest

from charlstm.config import TrainConfig
from charlstm.training.schedule import learning_rate


def test_learning_rate_schedule():
    config = TrainConfig(learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1, decay_fraction=1.0)
    assert learning_rate(config, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(config, 9, 0.0) == pytest.approx(1.0)
    assert learning_rate(config, 50, 0.5) == pytest.approx(0.55)
    assert learning_rate(config, 100, 1.0) == pytest.approx(0.1)
    # constant, then cosine over the last fifth of the budget
    late = TrainConfig(learning_rate=1.0, warmup_steps=0, min_lr_ratio=0.1, decay_fraction=0.2)
    assert [learning_rate(late, 5, p) for p in (0.0, 0.5, 0.8)] == [1.0, 1.0, 1.0]
    assert learning_rate(late, 5, 0.9) == pytest.approx(0.55)
    assert learning_rate(late, 5, 1.0) == pytest.approx(0.1)
    assert learning_rate(late, 5, 1.5) == pytest.approx(0.1)
    assert learning_rate(TrainConfig(learning_rate=1.0, warmup_steps=0, decay_fraction=0.0), 5, 0.99) == 1.0
