"""Validation during training: bits per character on the held-out text, which of the weights and
their moving average is the model, and the run's record of figures (best, last, --patience).
Writes nothing; the loop saves what these choose.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..config import LOG2E
from ..data.streams import eval_streams
from ..memory import EVAL_CHUNK, EVAL_STREAMS
from ..model.average import AVERAGE_PREFIX, TRAINING_PREFIX, WeightAverage
from ..model.network import CharModel
from ..runs import checkpoint as ckpt
from ..runs.runinfo import RunInfo
from ..scoring.bits import chunked_cross_entropy


@torch.inference_mode()
def evaluate(model: CharModel, val_ids: np.ndarray, seq_len: int, device: torch.device, max_chars: int | None = None,
             num_streams: int = EVAL_STREAMS, chunk: int | None = None) -> float:
    """Validation bits per character: the text as contiguous streams, state carried chunk to chunk
    (`scoring.bits.chunked_cross_entropy`, the same reading as scoring), `chunk` characters of each
    stream at a time (default max(seq_len, EVAL_CHUNK); a run takes memory.training_chunks's)."""
    if max_chars:
        val_ids = val_ids[: max_chars + 1]
    streams = eval_streams(val_ids, num_streams)                                      # (S, L)
    was_training = model.training
    model.eval()
    total = 0.0
    for nats, _ in chunked_cross_entropy(model, streams, chunk or max(seq_len, EVAL_CHUNK), reduction="sum"):
        total += nats.item()
    model.train(was_training)
    count = streams.shape[0] * max(streams.shape[1] - 1, 0)                           # every target
    return total / max(count, 1) * LOG2E


class Weights:
    """The training weights and, with a decay above 0, their moving average kept beside them
    (model.average). Each evaluation scores both, and the better is the model that is previewed and
    saved (`scored`); the other is saved beside it, under its prefix, so a resume has both."""

    def __init__(self, model: CharModel, decay: float) -> None:
        self.model = model
        self.average = WeightAverage(model, decay) if decay > 0 else None
        self.use_average = False
        self.val_training: float | None = None    # the training weights' own figure, when averaged

    @property
    def scored(self) -> CharModel:
        """The model previewed and saved for sampling: the weights' average when it scored better at
        the last evaluation, else the training weights."""
        return self.average.model if self.average is not None and self.use_average else self.model

    def update(self) -> None:
        """After an update of the training weights."""
        if self.average is not None:
            self.average.update(self.model)

    def score(self, measure: Callable[[CharModel], float]) -> float:
        """The better figure of the two by `measure` (lower is better), which then is the model; the
        average is not scored when the weights' own figure is not finite."""
        val_bpc = measure(self.model)
        if self.average is not None and math.isfinite(val_bpc):
            averaged = measure(self.average.model)
            self.val_training, self.use_average = val_bpc, averaged < val_bpc
            val_bpc = min(val_bpc, averaged)
        return val_bpc

    def figures(self) -> dict:
        """For an evaluation's metrics line: which of the two is the model, and the weights' figure."""
        if self.average is None:
            return {}
        return {"averaged": self.use_average, "training_val_bpc": round(self.val_training, 5)}

    @property
    def beaten_figure(self) -> float | None:
        """The training weights' own figure when their average scored better and is the model."""
        return self.val_training if self.use_average else None

    def beside(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint holds beside the model: the one of the two that is not the model."""
        if self.average is None:
            return {}
        prefix, other = (TRAINING_PREFIX, self.model) if self.use_average else (AVERAGE_PREFIX, self.average.model)
        return {prefix + name: tensor for name, tensor in other.state_dict().items()}

    def restore(self, saved: ckpt.Checkpoint) -> None:
        """Both as `saved` holds them: the model tensors are the better of the two and the other is
        beside them; a checkpoint without an average holds the training weights alone (an average
        then starts from them)."""
        beside = lambda prefix: {name[len(prefix):]: t for name, t in saved.tensors.items() if name.startswith(prefix)}
        training, average = beside(TRAINING_PREFIX), beside(AVERAGE_PREFIX)
        self.model.load_state_dict(training or saved.model_state)
        if self.average is not None:
            self.average.load(average or saved.model_state, saved.run_info.step)
            self.use_average = bool(training)


class Scores:
    """A run's record of validation figures: the last, the best, the evaluations since the best
    (`stale`), and why --patience ended the run (`stopped`, None while it goes on)."""

    def __init__(self, info: RunInfo | None = None) -> None:
        self.best: float | None = None
        self.last: float | None = None
        self.stale, self.stopped = 0, None
        if info is not None:
            # a run stopped by --patience and given more budget starts counting afresh
            self.stale = 0 if info.stopped else info.evals_since_best
            # a run without validation text may have stored NaN
            self.best = info.best_val_bpc if info.best_val_bpc is not None and math.isfinite(info.best_val_bpc) else None
            self.last = info.last_val_bpc if info.last_val_bpc is not None and math.isfinite(info.last_val_bpc) else None

    def record(self, val_bpc: float | None) -> bool:
        """An evaluation's figure (None without validation text); whether it is the best so far (the
        first evaluation always is, so best.safetensors exists)."""
        self.last = val_bpc
        improved = self.best is None or (val_bpc is not None and val_bpc < self.best)
        if improved and val_bpc is not None:
            self.best = val_bpc
        if val_bpc is not None:
            self.stale = 0 if improved else self.stale + 1
        return improved

    def out_of_patience(self, patience: int | None) -> bool:
        """`patience` evaluations in a row without a better figure (never without a figure)."""
        return bool(patience) and self.best is not None and self.stale >= patience
