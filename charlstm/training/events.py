"""What training reports: typed events to a callback, and how a call to `train` ended."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class EventKind(str, Enum):
    """What an Event reports; a str, so `event.kind == "step"` holds."""

    START = "start"    # the run begins (or resumes): `text` describes the model and the data
    STEP = "step"      # one optimisation step done
    EVAL = "eval"      # a validation (and checkpoint): `val_bpc`, `text` the preview sample
    NOTICE = "notice"  # something the user should know: `text`


@dataclass(frozen=True, kw_only=True)
class Event:
    """What the loop reports to its callback; built with keyword fields."""

    kind: EventKind
    step: int
    max_steps: int | None = None
    elapsed_s: float = 0.0
    time_budget: float | None = None
    train_loss: float | None = None  # nats per character
    val_bpc: float | None = None
    lr: float | None = None
    chars_per_s: float | None = None
    text: str = ""                   # preview sample or notice
    weights_val_bpc: float | None = None  # EVAL: the weights' own figure when their moving average scored better


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    out_dir: Path
    step: int
    elapsed_s: float
    best_val_bpc: float | None
    last_val_bpc: float | None
    chars_per_s: float
    interrupted: bool
    threads: str = ""                # how the CPU thread count was chosen (runtime.ThreadTuner.describe)
    stopped: str | None = None       # why it stopped before the budget was spent (--patience)
