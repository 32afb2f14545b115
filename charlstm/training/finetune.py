"""Starting a run from a model that already reads (`train --init-from MODEL`): the base model found
and loaded (a run folder, a checkpoint file, or the name of a model charlstm ships: runtime.find_model),
the options that may be typed with it, the vocabulary the run's corpus is read with, the grown
model it starts as, the recipe it trains with, and the record its checkpoints keep of the base
(runinfo.StartedFrom). The base is only read, never written. Trains nothing (loop.py does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from .. import memory
from ..config import (
    FINE_TUNING,
    FINE_TUNING_WIDTH,
    LOG2E,
    MAX_PARAMETERS,
    ModelConfig,
    TrainConfig,
)
from ..data.vocab import Vocab
from ..errors import CharlstmError, CheckpointError, ConfigError, TrainingError
from ..model.growth import HEAD_BIAS, frequency_biases, grown_state
from ..model.network import CharModel
from ..runs import checkpoint as ckpt
from ..runs.folder import Run
from ..runs.runinfo import StartedFrom
from ..runtime import find_model
from ..scoring.yardsticks import char_counts
from .fit import scaled_rate
from .resume import MODEL_OPTIONS

#: The model options a run started from a base keeps from it (its dropout may be set anew: it
#: changes how the run trains, not its weights).
KEPT_OPTIONS = {name: flag for name, flag in MODEL_OPTIONS.items() if name != "dropout"}


@dataclass(frozen=True)
class Base:
    """A model a run starts from: what the user named it (`source`), the checkpoint file read, the
    checkpoint, its fingerprint (checkpoint.Checkpoint.fingerprint), and how the rows of the
    characters it lacks start (model/growth.py)."""

    source: str
    path: Path
    checkpoint: ckpt.Checkpoint
    fingerprint: str
    new_embedding_rows: str = "spread"
    new_head_rows: str = "frequency"

    @property
    def vocab(self) -> Vocab:
        return self.checkpoint.vocab

    @property
    def config(self) -> ModelConfig:
        return self.checkpoint.config

    def record(self) -> StartedFrom:
        return StartedFrom(self.source, self.fingerprint, len(self.vocab))

    def model_config(self, vocab_size: int, dropout: float | None = None) -> ModelConfig:
        """The base's architecture for `vocab_size` characters (with `dropout`, else its own); a
        vocabulary that takes the model over config.py's caps is one ConfigError line."""
        try:
            return replace(self.config, vocab_size=vocab_size, **({} if dropout is None else {"dropout": dropout}))
        except ConfigError:
            raise ConfigError(f"{self.source}: grown to {vocab_size:,} characters ({vocab_size - len(self.vocab):,} "
                              f"new in the corpus), this model would be over charlstm's cap of {MAX_PARAMETERS:,} "
                              f"parameters; start from a smaller model, or fold rare characters with "
                              f"--min-char-count") from None

    @torch.no_grad()
    def weights(self, model: CharModel, train_ids: np.ndarray) -> dict[str, torch.Tensor]:
        """The base's weights grown to `model`'s vocabulary (model/growth.py): the base's rows kept,
        the new ones set from the base and, for the output biases, from how often each character
        occurs in `train_ids` against what the grown model predicts there. Leaves `model` holding them."""
        state = grown_state(self.checkpoint.model_state, model.state_dict(), self.new_embedding_rows,
                            self.new_head_rows)
        model.load_state_dict(state)
        if self.new_head_rows == "frequency" and len(self.vocab) < model.config.vocab_size:
            counts = torch.from_numpy(char_counts(train_ids, model.config.vocab_size))
            biases = frequency_biases(counts, _partition(model, train_ids, len(self.vocab)), len(self.vocab))
            if biases is not None:
                state[HEAD_BIAS][len(self.vocab):] = biases
                model.load_state_dict(state)
        return state

    def describe(self, vocab: Vocab) -> str:
        """One line for the start of training: the model, where from, the characters it gains."""
        c, added = self.config, len(vocab) - len(self.vocab)
        gained = f" and {added:,} new in the corpus" if added else ", the corpus adding none"
        return (f"model {c.num_layers}×{c.hidden_size} ({c.cell}) started from {self.source} ({self.path}): "
                f"its {len(self.vocab):,} characters{gained}")


def load_base(target: str | os.PathLike) -> Base:
    """The base model `target` names (runtime.find_model), loaded and checked as every checkpoint
    is (runs/checkpoint.load: one CheckpointError line for a file that is not one)."""
    path = find_model(target)
    loaded = ckpt.load(path)
    return Base(str(target), path, loaded, loaded.fingerprint())


def refuse_changes(base: Base, model: ModelConfig | None, typed: Iterable[str]) -> None:
    """A TrainingError naming the model options typed (`typed`: field names) with a value other
    than the base's: a run started from a model keeps its architecture (the same value is fine)."""
    differ = [name for name in KEPT_OPTIONS if model is not None and name in set(typed)
              and getattr(model, name) != getattr(base.config, name)]
    if differ:
        shown = lambda config: " ".join(f"{KEPT_OPTIONS[n]} {getattr(config, n)}" for n in differ)  # noqa: E731
        raise TrainingError(f"{base.source} has {shown(base.config)}; a run started from it keeps its model, so "
                            f"{shown(model)} cannot apply: drop it, or leave out --init-from to train a new model")


def recipe(base_config: ModelConfig) -> dict[str, object]:
    """The recipe of a run started from a base of `base_config` (config.FINE_TUNING, its learning
    rate scaled down for a base wider than config.FINE_TUNING_WIDTH): TrainConfig field → value."""
    rate = FINE_TUNING["learning_rate"]
    return {**FINE_TUNING, "learning_rate": min(rate, scaled_rate(rate, FINE_TUNING_WIDTH, base_config.hidden_size))}


def fine_tuning(config: TrainConfig, typed: Iterable[str], base: Base) -> TrainConfig:
    """`config` with the recipe of a run started from `base` (`recipe`) where the user typed
    nothing (`typed`: field names)."""
    return replace(config, **{name: value for name, value in recipe(base.config).items() if name not in set(typed)})


def start_vocabulary(run: Run, resume: bool, base: Base | None) -> Vocab | None:
    """The vocabulary the run's corpus grows (data.vocab.Vocab.extended), or None for a vocabulary
    of its own: a fresh run's base's; a resumed run's own base's characters, its first ids (its
    checkpoint records how many). A resumed run keeps the model it has: `base` given then must be
    the one it started from (by fingerprint), else a TrainingError; nothing is written."""
    if not (resume and run.has_checkpoint()):
        return base.vocab if base is not None else None
    saved = ckpt.load(run.latest)
    info = saved.run_info
    started = info.init_from if info is not None else None
    if base is not None and (started is None or started.fingerprint != base.fingerprint):
        then = "from scratch" if started is None else f"from {started.source}, another model"
        raise TrainingError(f"{run} was trained {then}; a resumed run keeps its model, so --init-from {base.source} "
                            f"cannot apply: drop it, or pass another --out to start a new run from it")
    if started is None:
        return None
    if started.chars > len(saved.vocab):
        raise CheckpointError(f"{run.latest}: it records a base of {started.chars:,} characters but holds "
                              f"{len(saved.vocab):,}, so the run cannot be resumed from it; nothing was written")
    return saved.vocab.prefix(started.chars)


@dataclass(frozen=True)
class BaseTip:
    """When a fresh `train` suggests starting from the shipped English model
    (`base_reads`): a corpus of at most `max_chars` characters, at least `known` of
    them characters the model knows, whose first `sample` characters (read as `rows` pieces side by
    side) it already reads at `bits` bits/char or better (English reads near 2, code and Spanish
    above 4: benchmarks/README.md, "Fine-tuning the English base")."""

    model: str = "english"
    max_chars: int = 200_000
    known: float = 0.98
    sample: int = 2_000
    rows: int = 8
    bits: float = 3.0


BASE_TIP = BaseTip()


@torch.no_grad()
def base_reads(vocab: Vocab, ids: np.ndarray) -> float | None:
    """The bits/char the shipped English model (BASE_TIP.model) reads a small corpus at
    (`ids` in `vocab`), when it reads it well enough to start from (BASE_TIP: size,
    characters it knows, bits/char on the first characters); None for a bigger corpus, one of other
    characters (Chinese), one it reads badly (code, other languages), or where it is not installed."""
    if len(ids) > BASE_TIP.max_chars or len(ids) == 0:
        return None
    try:
        base = load_base(BASE_TIP.model)
    except CharlstmError:
        return None
    counts = char_counts(ids, len(vocab))
    known = sum(int(n) for char, n in zip(vocab.chars, counts) if char in base.vocab and char != vocab.unknown_char)
    if known < BASE_TIP.known * len(ids):
        return None
    sample = base.vocab.encode("".join(char for char in vocab.decode(ids[:BASE_TIP.sample]) if char in base.vocab))
    rows = max(1, min(BASE_TIP.rows, len(sample) // 2))  # read side by side: a few pieces, each from a fresh state
    width = len(sample) // rows
    if width < 2:
        return None
    pieces = torch.from_numpy(sample[: rows * width].astype(np.int64)).view(rows, width)       # (R, W)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a glance: one thread never waits on a busy neighbour
    try:
        logits, _ = base.checkpoint.model(torch.device("cpu"))(pieces[:, :-1])                # (R, W-1, V)
    finally:
        torch.set_num_threads(threads)
    bits = float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), pieces[:, 1:].flatten())) * LOG2E
    return bits if bits <= BASE_TIP.bits else None


#: Where the base's predictions on the new text are read (frequency_biases): windows of this many
#: characters, at most this many of them, spread over the training text.
PARTITION_WINDOW, PARTITION_WINDOWS = 256, 16


@torch.no_grad()
def _partition(model: CharModel, ids: np.ndarray, old: int) -> torch.Tensor:
    """log Σ exp(logit) over the first `old` characters at every position of a few windows of `ids`
    (N,), from `model` in eval mode (each window from a fresh state)."""
    length = min(PARTITION_WINDOW, len(ids))
    starts = np.linspace(0, len(ids) - length, num=min(PARTITION_WINDOWS, max(len(ids) // length, 1)), dtype=np.int64)
    windows = torch.from_numpy(np.stack([ids[s : s + length] for s in starts]).astype(np.int64))   # (N, T)
    # the windows' logits are read a chunk of positions at a time, the state carried (memory.forward)
    step = memory.plan(memory.forward(model.config, streams=len(windows)), 0, length,
                       lambda need: f"the base's predictions on the new text {memory.over_budget(need, 0)}")
    was_training = model.training
    model.eval()
    parts, state = [], None
    for start in range(0, length, step):
        logits, state = model(windows[:, start : start + step].to(next(model.parameters()).device), state)  # (N, t, V)
        parts.append(torch.logsumexp(logits[..., :old].float(), dim=-1))
    model.train(was_training)
    return torch.cat(parts, dim=1).flatten().cpu()
