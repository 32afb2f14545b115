"""The moving average of a run's weights: an exponential moving average of the training weights,
kept beside them by torch's `AveragedModel`, scored at each evaluation against them.

At a constant learning rate the weights jitter about a better point, and the average sits nearer
it (how much: benchmarks/README.md, "The moving average of the weights"). While the loss still
falls fast it lags behind, so each evaluation scores both and the run keeps the better. Its decay
warms up, min(decay, (1 + n) / (10 + n)) after n updates, so a young run averages over its last
tenth or so rather than reaching back to the initial weights.

Knows models and tensors only; training decides when to update, score, choose and save.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch.optim.swa_utils import AveragedModel

from .network import CharModel

#: A checkpoint's model tensors hold whichever of the two scored better; the other goes beside them
#: under its prefix (both are needed to resume exactly).
TRAINING_PREFIX, AVERAGE_PREFIX = "train.", "average."


def warm_decay(decay: float, updates: int) -> float:
    """The decay of the update after `updates` earlier ones: `decay`, less while the run is young."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """The moving average of `model`'s parameters, as a model of its own (`.model`)."""

    def __init__(self, model: CharModel, decay: float, updates: int = 0) -> None:
        def lerp(averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor) -> None:
            weight = 1.0 - warm_decay(decay, int(count))
            torch._foreach_lerp_(averaged, current, weight)

        self._averaged = AveragedModel(model, multi_avg_fn=torch.no_grad()(lerp), use_buffers=False)
        self._averaged.n_averaged.fill_(updates)
        self.model: CharModel = self._averaged.module

    @property
    def updates(self) -> int:
        return int(self._averaged.n_averaged)

    def update(self, model: CharModel) -> None:
        """Fold in the weights after one more optimisation step (the first copies them)."""
        self._averaged.update_parameters(model)

    def load(self, state: Mapping[str, torch.Tensor], updates: int) -> None:
        """The average as saved, after `updates` updates."""
        self.model.load_state_dict(state)
        self._averaged.n_averaged.fill_(updates)
