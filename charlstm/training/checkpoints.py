"""Writing a run's checkpoints: assembling one (the model, optimizer tensors, carried state, RNG, the
weights' other half, the run's record), the finiteness guard every save and evaluation passes, and
the message that stops a diverged run naming the last good checkpoint. Writes through runs/
(checkpoint.save into the run folder's latest and best); decides nothing about when to save.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from ..errors import TrainingError
from ..model.network import State
from ..runs import checkpoint as ckpt
from ..runs.folder import Run
from ..runs.runinfo import RunInfo
from .clock import Clock
from .distributed import Cluster
from .schedule import LearningRate
from .validation import Weights

#: Below this learning rate a divergence is not plausibly the learning rate's doing, and the message
#: does not suggest lowering it (the updates of AdamW are about the learning rate in size).
PLAUSIBLE_DIVERGENT_LR = 1e-4


def nonfinite_tensor(named: Iterable[tuple[str, Any]]) -> str | None:
    """The name of the first floating-point tensor holding NaN or an infinity, else None."""
    for name, tensor in named:
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The optimizer's state as checkpoint tensors (`optim.<index>.<name>`) and its groups (JSON)."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    """The optimizer state_dict that `optimizer_tensors` wrote as tensors and groups."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


class CheckpointWriter:
    """Saves a run in progress through its folder, and stops it when its numbers stop being finite.

    Every save passes `save`, and nothing non-finite is saved: each tensor that would go into the
    file (weights, optimizer moments, carried state) is checked first, and a non-finite one stops
    the run with a TrainingError naming the last good checkpoint, the files left as they were.
    Every rank takes part (the carried state is gathered from all, the checks are agreed); rank 0
    writes. Reads the step from the clock and the last update's rate from the learning rate."""

    def __init__(self, run: Run, cluster: Cluster, clock: Clock, rate: LearningRate, *, model_config, vocab,
                 weights: Weights, optimizer: torch.optim.Optimizer, saved_step: int | None = None) -> None:
        self.run, self.cluster, self.clock, self.rate = run, cluster, clock, rate
        self.model_config, self.vocab, self.weights, self.optimizer = model_config, vocab, weights, optimizer
        self.saved_step = saved_step      # the step of the last checkpoint written (or found, on resume)

    def save(self, state: State | None, run_info: Callable[[tuple[dict, ...]], RunInfo], best: bool = False) -> None:
        """Write latest.safetensors (and best.safetensors): the model, `state` (this rank's carried
        state) and `run_info(optimizer groups)`, the run's record."""
        full_state = self.cluster.gather_rows(state)                             # each (L, B, H)
        checkpoint = self._assemble(full_state, run_info) if self.cluster.main else None
        bad = None if checkpoint is None else nonfinite_tensor(
            [*(("model." + k, v) for k, v in checkpoint.model_state.items()), *checkpoint.tensors.items()])
        self.guard(bad is not None, f"{bad or 'a tensor to save'} became non-finite, so it was not saved")
        if not self.cluster.main:
            return
        for path in (self.run.latest, self.run.best) if best else (self.run.latest,):
            try:
                ckpt.save(path, checkpoint)
            except OSError as error:
                raise TrainingError(f"could not write {path} ({error.strerror or error}); "
                                    f"the previous checkpoint there is intact") from None
            if path == self.run.latest:
                self.saved_step = self.clock.steps

    def _assemble(self, full_state: State | None, run_info: Callable[[tuple[dict, ...]], RunInfo]) -> ckpt.Checkpoint:
        opt_tensors, groups = optimizer_tensors(self.optimizer)
        extra = dict(opt_tensors)
        if full_state is not None:
            extra.update({f"state.{i}": s for i, s in enumerate(full_state)})
        extra["rng.torch"] = torch.get_rng_state()
        extra.update(self.weights.beside())
        info = run_info(tuple(groups))
        return ckpt.Checkpoint(self.model_config, self.vocab, self.weights.scored.state_dict(), info.to_dict(), extra)

    def guard(self, broken: bool, what: str) -> None:
        """Stop the run (the divergence error, `what` happened) if `broken` on any rank."""
        if self.cluster.agree(broken):
            raise self.diverged(what)

    def check_weights(self, model: torch.nn.Module) -> None:
        """Stop the run if any weight of `model` is not finite (the same on every rank)."""
        bad = nonfinite_tensor(model.named_parameters())
        self.guard(bad is not None, f"the weights became non-finite (in {bad})")

    def diverged(self, what: str) -> TrainingError:
        """The one-line error for a run whose numbers stopped being finite: what, where, the likely
        cause (the learning rate only when that is plausible) and the checkpoint that is still good."""
        last_lr = self.rate.last
        if last_lr is None:
            hint = ("before any update of this session, so not the learning rate: the model options "
                    "(--forget-bias …) or the checkpoint are the likely cause")
        elif last_lr >= PLAUSIBLE_DIVERGENT_LR:
            hint = f"the learning rate was {last_lr:.3g}: try a lower --lr"
        else:
            hint = f"at a learning rate of {last_lr:.3g} the learning rate is an unlikely cause"
        if self.saved_step is None:
            kept = "no checkpoint was written"
        else:
            kept = f"the last good checkpoint is {self.run.latest} (step {self.saved_step})"
            kept += (f"; it and {self.run.best.name} are left as they were" if self.run.best.exists()
                     else ", left as it was")
        return TrainingError(f"training diverged at step {self.clock.steps}: {what} ({hint}); {kept}")
