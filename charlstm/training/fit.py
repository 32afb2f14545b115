"""The model a run gets when the user does not choose one: sized to the corpus and the budget.

Three limits, the smallest wins:

- **the data**: the weights that see the data — the recurrent layers and the softmax head; not the
  input embedding, which each character only looks up — stay within DATA_RATIO × the training
  characters, so that a model does not learn the corpus by heart before the language. The ratio is
  high because a larger model learns faster before it overfits and the run keeps its best checkpoint.
- **the budget**: the recurrent weights grow as the square root of the compute (as in the scaling
  laws of language models), pinned at REFERENCE_PARAMETERS — a 2×256 LSTM — for REFERENCE_SECONDS
  of CPU training, and never below it. The head is left out of this count: it is one large matrix
  product per step, much faster per weight than the step-by-step recurrence. A budget in steps
  counts as the characters those steps read, at REFERENCE_CHARS_PER_PARAMETER.
- **memory**: training the model (its weights and their copies, a step, a validation) fits the
  memory budget (memory.training_fits), which only a very large vocabulary makes bind.

A model fitted this way trains with dropout FITTED_DROPOUT when the budget plans DROPOUT_EPOCHS
passes over the training text or more, without it below. A time budget's passes are estimated at the
reference rate, as if the model read no faster than a 2×256 and slower in proportion to its
recurrent weights when larger, so the estimate errs towards no dropout.

The learning rate follows the width, fitted or chosen: a model narrower than the 2×256 the
default rate was chosen at trains at a higher one (fitted_rate; 2.5e-2 for 10 units, near the 3e-2
the probe recipes take).

Widths come from a ladder, two layers (one below MIN_TWO_LAYER_WIDTH), an embedding of at most 64.
Torch-free: the device is named by its kind ("cpu", "cuda", "mps"). How the rule was measured, and
against what: benchmarks/README.md, "The fitted model" (benchmarks/defaults.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from .. import memory
from ..config import CELL_KINDS, TrainConfig

#: Hidden widths a fitted model takes.
WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
#: Weights that see the data (all but the input embedding) per training character, at most.
DATA_RATIO = 64.0
#: The recurrent weights that train best in REFERENCE_SECONDS on a CPU (a 2×256 LSTM) …
REFERENCE_PARAMETERS = 856_064
REFERENCE_SECONDS = 180.0
#: … and the characters per recurrent weight it reads in that time (≈ 16k chars/s).
REFERENCE_CHARS_PER_PARAMETER = 3.4
#: An accelerator trains ~20× the CPU's characters per second: √20 ≈ 4.5× the weights pay.
ACCELERATOR_FACTOR = 4.5
#: A fitted model trains with dropout FITTED_DROPOUT when the budget plans DROPOUT_EPOCHS passes or more.
DROPOUT_EPOCHS = 10.0
FITTED_DROPOUT = 0.2
MIN_TWO_LAYER_WIDTH = 64
MAX_EMBEDDING = 64
#: The width TrainConfig.learning_rate was chosen at (a 2×256 LSTM). A narrower model trained from
#: scratch with no rate typed takes scaled_rate(learning_rate, LEARNING_RATE_WIDTH, its hidden size)
#: (fitted_rate); a wider one the rate itself. How chosen: benchmarks/README.md, "A narrower model
#: wants a higher rate".
LEARNING_RATE_WIDTH = 256


@dataclass(frozen=True)
class FittedModel:
    hidden_size: int
    num_layers: int
    embedding_size: int
    parameters: int
    limit: str          # what chose the size: "the corpus", "the budget" or "the memory budget"
    train_chars: int    # the training characters it was fitted to
    epochs: float = 0.0     # the passes over them the budget plans (estimated for a time budget)
    dropout: float = 0.0    # chosen from the planned passes

    def describe(self, budget: str) -> str:
        passes = "no end" if math.isinf(self.epochs) else f"~{self.epochs:,.0f}"
        regular = f"dropout {self.dropout:g}" if self.dropout else "no dropout"
        return (f"model {self.num_layers}×{self.hidden_size} fitted to {self.train_chars:,} training characters and "
                f"{budget}, sized by {self.limit}; {regular} for {passes} planned passes "
                f"(--hidden-size, --num-layers and --dropout choose them)")


def lstm_parameters(vocab_size: int, hidden: int, layers: int, embedding: int, gates: int = 4) -> tuple[int, int, int]:
    """(all parameters, those that see the data: all but the embedding, the recurrent ones) of an L×H model."""
    first = gates * hidden * (embedding + hidden + 2)
    rest = (layers - 1) * gates * hidden * (2 * hidden + 2)
    head = hidden * vocab_size + vocab_size
    recurrent = first + rest
    return recurrent + head + vocab_size * embedding, recurrent + head, recurrent


def compute_cap(time_budget: float | None, max_steps: int | None, chars_per_step: int, device: str = "cpu") -> float:
    """The recurrent weights the budget pays for (the smaller of a time and a steps budget; never
    below the reference)."""
    caps = []
    if time_budget is not None:
        caps.append(REFERENCE_PARAMETERS * math.sqrt(max(time_budget, 1.0) / REFERENCE_SECONDS))
    if max_steps is not None:
        reads = max_steps * chars_per_step
        caps.append(REFERENCE_PARAMETERS * math.sqrt(reads / (REFERENCE_PARAMETERS * REFERENCE_CHARS_PER_PARAMETER)))
    cap = max(min(caps), REFERENCE_PARAMETERS) if caps else math.inf
    return cap * (ACCELERATOR_FACTOR if device != "cpu" else 1.0)


def planned_epochs(train_chars: int, recurrent: int, time_budget: float | None, max_steps: int | None,
                   chars_per_step: int, device: str = "cpu") -> float:
    """The passes over the training text the budget plans (the fewer of a time and a steps budget;
    inf without either): a steps budget exactly, a time budget at the reference rate for a model
    with `recurrent` weights (never faster than the reference 2×256's; ×ACCELERATOR_FACTOR² off the CPU)."""
    reads = []
    if max_steps is not None:
        reads.append(max_steps * chars_per_step)
    if time_budget is not None:
        rate = REFERENCE_CHARS_PER_PARAMETER * REFERENCE_PARAMETERS / REFERENCE_SECONDS   # ≈ 16k chars/s
        rate *= REFERENCE_PARAMETERS / max(recurrent, REFERENCE_PARAMETERS)
        rate *= ACCELERATOR_FACTOR ** 2 if device != "cpu" else 1.0
        reads.append(time_budget * rate)
    return min(reads) / max(train_chars, 1) if reads else math.inf


def fitted_dropout(epochs: float) -> float:
    return FITTED_DROPOUT if epochs >= DROPOUT_EPOCHS else 0.0


def fit_model(train_chars: int, vocab_size: int, time_budget: float | None, max_steps: int | None,
              chars_per_step: int, device: str = "cpu", gates: int = 4,
              fits: Callable[[int, int, int], bool] | None = None) -> FittedModel:
    """The widest model of the ladder within both limits, and whose training `fits(hidden, layers,
    embedding)` in memory (the narrowest if none is), with the dropout its planned passes call for."""
    fitted = _fit_size(train_chars, vocab_size, time_budget, max_steps, chars_per_step, device, gates, fits)
    _, _, recurrent = lstm_parameters(vocab_size, fitted.hidden_size, fitted.num_layers, fitted.embedding_size, gates)
    epochs = planned_epochs(train_chars, recurrent, time_budget, max_steps, chars_per_step, device)
    return replace(fitted, epochs=epochs, dropout=fitted_dropout(epochs))


def _fit_size(train_chars: int, vocab_size: int, time_budget: float | None, max_steps: int | None,
              chars_per_step: int, device: str, gates: int, fits: Callable[[int, int, int], bool] | None) -> FittedModel:
    data_cap = DATA_RATIO * train_chars
    budget_cap = compute_cap(time_budget, max_steps, chars_per_step, device) * (1 + 1e-9)
    chosen = None
    for width in WIDTHS:
        layers = 2 if width >= MIN_TWO_LAYER_WIDTH else 1
        embedding = min(MAX_EMBEDDING, width)
        total, seeing, recurrent = lstm_parameters(vocab_size, width, layers, embedding, gates)
        over = ("the corpus" if seeing > data_cap else "the budget" if recurrent > budget_cap else
                "the memory budget" if fits is not None and not fits(width, layers, embedding) else None)
        if over and chosen is not None:
            return replace(chosen, limit=over)
        chosen = FittedModel(width, layers, embedding, total, over or "the largest width", train_chars)
        if over:  # even the narrowest is over a limit
            return chosen
    return chosen


def scaled_rate(rate: float, reference: int, width: int) -> float:
    """The learning rate that moves a unit of a `width`-wide layer about as far a step as `rate`
    moves one of a `reference`-wide layer: Adam moves every weight about the rate a step, and a
    unit's sum over n inputs moves about √n times that, so rate × √(reference / width)."""
    return rate * math.sqrt(reference / width)


def fitted_rate(hidden_size: int) -> float:
    """The peak learning rate of a model `hidden_size` units wide trained from scratch with no rate
    typed: TrainConfig.learning_rate, raised for a model narrower than LEARNING_RATE_WIDTH
    (scaled_rate), never lowered."""
    rate = TrainConfig.learning_rate
    return max(rate, float(f"{scaled_rate(rate, LEARNING_RATE_WIDTH, hidden_size):.2g}"))  # as a person writes it


#: The ModelConfig fields a fit sets.
FITTED_FIELDS = ("hidden_size", "num_layers", "embedding_size", "dropout")


def fitted_config(base, train_chars: int, config, device: str = "cpu", keep: frozenset | set = frozenset()):
    """`base` (a config.ModelConfig) with the fields of FITTED_FIELDS not in `keep` fitted (the
    width and depth only when neither was given) → (ModelConfig, FittedModel or None when nothing
    was fitted). Dropout is fitted with the shape only: a model whose shape the user chose keeps
    the dropout given (default none)."""
    keep = set(keep)
    if {"hidden_size", "num_layers"} & keep:  # the user chose the shape: only the embedding follows it
        if "embedding_size" in keep:
            return base, None
        return replace(base, embedding_size=min(MAX_EMBEDDING, base.hidden_size)), None
    per_step = config.batch_size * config.seq_len * (1 - config.short_windows / 2)  # the mean over a step budget

    def fits(hidden: int, layers: int, embedding: int) -> bool:
        sizes = {"hidden_size": hidden, "num_layers": layers, "embedding_size": embedding}
        model = replace(base, **{name: value for name, value in sizes.items() if name not in keep})
        return memory.training_fits(model, config.batch_size, config.seq_len, config.ema_decay > 0)

    fitted = fit_model(train_chars, base.vocab_size, config.time_budget, config.max_steps,
                       round(per_step), device, CELL_KINDS[base.cell].gates, fits)
    chosen = {"hidden_size": fitted.hidden_size, "num_layers": fitted.num_layers}
    if "embedding_size" not in keep:
        chosen["embedding_size"] = fitted.embedding_size
    if "dropout" not in keep:
        chosen["dropout"] = fitted.dropout
    else:
        fitted = replace(fitted, dropout=base.dropout)
    return replace(base, **chosen), fitted
