"""The one estimate of the memory a pass over a text holds, and the one refusal of what cannot fit.

Every pass that reads text through a model sizes its chunks here: training's step (the output
layer taken in pieces of positions) and its evaluation, scoring, tracing, the co-writer's reads,
and what the analyses of `inspect` keep per character. A pass is a `Need`, built from the model's sizes (layers, hidden,
vocabulary, the cell kind's gates) and the request (the vectors and layers kept, the streams read
side by side, what an analysis keeps):

    fixed          bytes held whatever the text's length (a model in training and its copies)
    per_char       bytes kept for every character of the text for the whole pass (traces, scores)
    per_position   working bytes per position of one chunk (logits, gates, the cell state's scan)

`plan` gives the positions per chunk that keep fixed + per_char × characters + per_position × chunk
within config.MEMORY_BUDGET (never more than the caller's own chunk), and refuses with one
MemoryBudgetError, before any work starts, what does not fit even one position at a time.
What the counts leave out — the interpreter, the loaded model, the text itself — is outside the
budget. Torch-free: it counts bytes and holds no tensors.

Shape legend: B streams, V vocab, E embedding, H hidden, L layers, G gates per cell.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from . import config as _config
from .config import ModelConfig
from .errors import MemoryBudgetError

#: Bytes of one float32 value, of one int64 index, and of a character's id as kept for a whole
#: text at most (data.vocab.id_dtype; a caller that knows the vocabulary passes its own width).
FLOAT, INDEX, ID = 4, 8, 4
#: Streams a validation during training reads side by side (data.streams.eval_streams).
EVAL_STREAMS = 32
#: Positions per chunk of a validation during training, at most (or its seq_len, if longer).
EVAL_CHUNK = 256


def budget() -> int:
    """The bytes a pass may hold (config.MEMORY_BUDGET, read when asked)."""
    return _config.MEMORY_BUDGET


def megabytes(count: float) -> str:
    """Bytes in MiB, as a person reads them ('1,536 MiB')."""
    return f"{count / (1 << 20):,.0f} MiB"


@dataclass(frozen=True)
class Need:
    """What one pass holds: `fixed` bytes, `per_char` bytes per character of the text, and
    `per_position` working bytes per position of a chunk."""

    fixed: int = 0
    per_char: int = 0
    per_position: int = 0

    def __add__(self, other: "Need") -> "Need":
        return Need(self.fixed + other.fixed, self.per_char + other.per_char, self.per_position + other.per_position)

    def total(self, chars: int, chunk: int = 1) -> int:
        """Bytes held for a text of `chars` read `chunk` positions at a time."""
        return self.fixed + self.per_char * chars + self.per_position * chunk

    def most_chars(self) -> int:
        """The longest text that fits the budget, read one position at a time (0: none)."""
        room = budget() - self.fixed - self.per_position
        if room < 0:
            return 0
        return room // self.per_char if self.per_char else sys.maxsize

    def chunk(self, chars: int, most: int) -> int:
        """Positions per chunk for a text of `chars`: as many as the budget has room for, at most
        `most`; 0 when not even one fits."""
        room = budget() - self.fixed - self.per_char * chars
        if room < max(self.per_position, 1) or most < 1:
            return 0
        return max(1, min(most, room // max(self.per_position, 1)))


def plan(need: Need, chars: int, most: int, refusal: Callable[[Need], str],
         error: type[MemoryBudgetError] = MemoryBudgetError) -> int:
    """Positions per chunk for a pass of `need` over `chars` characters (see Need.chunk); `error`
    (a MemoryBudgetError) with `refusal(need)` as its message when nothing fits."""
    chunk = need.chunk(chars, most)
    if not chunk:
        raise error(refusal(need))
    return chunk


def over_budget(need: Need, chars: int) -> str:
    """'needs about 2,345 MB, over the memory budget of 1,074 MB' for a text of `chars`."""
    return f"needs about {megabytes(need.total(chars))}, over the memory budget of {megabytes(budget())}"


# ----------------------------------------------------------------------------- what a model costs


def weights(config: ModelConfig) -> int:
    """Bytes of a model's float32 weights."""
    return config.parameter_count * FLOAT


def forward(config: ModelConfig, streams: int = 1, logits: bool = True, id_bytes: int = ID) -> Need:
    """The fused forward with its cross-entropy (scoring, validation) over `streams` streams: the
    ids of the text (`id_bytes` each), and per position of a chunk the embedding, each layer's
    gates and outputs, the logits, their log-softmax and the arg-max (not with logits=False: the
    state alone), and the position's input and target ids."""
    E, H, L, V, G = _sizes(config)
    work = FLOAT * (E + L * (G + 2) * H + (3 * V if logits else 0)) + 2 * INDEX
    return Need(per_char=streams * id_bytes, per_position=streams * work)


def trace(config: ModelConfig, vectors: int, layers: int, logits: bool, streams: int = 1,
          streamed: bool = False, id_bytes: int = ID) -> Need:
    """A trace (inspection.tracing) of `streams` texts keeping `vectors` × `layers` vectors of H
    units (and the V logits, with `logits`) and the id of every character (`id_bytes` each);
    working memory per position: one layer's gates, outputs and cell-state scan at a time, and a
    chunk's logits. `streamed`: the vectors are kept a chunk at a time only."""
    E, H, L, V, G = _sizes(config)
    kept = FLOAT * (vectors * layers * H + (V if logits else 0))
    work = FLOAT * (E + (2 * G + 8) * H + V) + INDEX
    if streamed:
        return Need(per_char=streams * id_bytes, per_position=streams * (work + kept))
    return Need(per_char=streams * (id_bytes + kept), per_position=streams * work)


def training(config: ModelConfig, batch_size: int, seq_len: int, average: bool) -> Need:
    """One training step of `batch_size` streams × `seq_len` characters: the weights, their
    gradients, AdamW's two moments and the moving average (`average`), with whichever is larger
    of the step's activations and a checkpoint as it is written (its tensors — all but the
    gradients — made into bytes, and those joined into the file's: twice their size); per position
    of a piece of the output layer, its logits, their softmax and their gradient."""
    E, H, L, V, G = _sizes(config)
    copies = _copies(average)
    activations = batch_size * seq_len * (FLOAT * (2 * E + L * (G + 5) * H + 2 * H) + 2 * INDEX)
    payload = 2 * weights(config) * (copies - 1)
    return Need(fixed=weights(config) * copies + max(activations, payload), per_position=3 * FLOAT * V)


def evaluation(config: ModelConfig, average: bool) -> Need:
    """A validation during training: the weights and their copies, and the forward of EVAL_STREAMS streams."""
    return Need(fixed=weights(config) * _copies(average)) + forward(config, EVAL_STREAMS)


def training_fits(config: ModelConfig, batch_size: int, seq_len: int, average: bool) -> bool:
    """Whether a model of `config` trains within the budget (see `training_chunks`)."""
    return (training(config, batch_size, seq_len, average).chunk(0, 1) > 0
            and evaluation(config, average).chunk(0, 1) > 0)


def training_chunks(config: ModelConfig, batch_size: int, seq_len: int, average: bool) -> tuple[int, int]:
    """(positions per piece of the output layer in a training step, positions per chunk of a
    validation): the step's B × T positions and max(seq_len, EVAL_CHUNK) when they fit. A model
    that cannot train within the budget is refused in one line naming what to make smaller."""
    refusal = lambda need: _refuse_training(config, need, batch_size, seq_len, average)  # noqa: E731
    head = plan(training(config, batch_size, seq_len, average), 0, batch_size * seq_len, refusal)
    return head, plan(evaluation(config, average), 0, max(seq_len, EVAL_CHUNK), refusal)


def _copies(average: bool) -> int:
    """The weights, their gradients and AdamW's two moments, and the moving average when kept."""
    return 4 + int(average)


def _refuse_training(config: ModelConfig, need: Need, batch_size: int, seq_len: int, average: bool) -> str:
    """What a refused run says: what it needs, and what to make smaller — the vocabulary's share of
    the weights, the rest of the model, or the step — by which of them passes half the budget."""
    copies = _copies(average)
    training_weights = weights(config) * (copies + 2 * (copies - 1))     # as `training` counts them
    vocabulary = config.vocab_size * (config.embedding_size + config.hidden_size + 1)
    fix = ("make --batch-size or --seq-len smaller" if training_weights <= budget() // 2 else
           "raise --min-char-count to read rare characters as one symbol, or make --embedding-size and --hidden-size smaller"
           if 2 * vocabulary > config.parameter_count else "make --hidden-size, --num-layers or --embedding-size smaller")
    return (f"training a model of {config.parameter_count:,} parameters and {config.vocab_size:,} characters, "
            f"{batch_size} streams × {seq_len} characters a step, {over_budget(need, 0)}: {fix}")


def _sizes(config: ModelConfig) -> tuple[int, int, int, int, int]:
    return config.embedding_size, config.hidden_size, config.num_layers, config.vocab_size, config.kind.gates
