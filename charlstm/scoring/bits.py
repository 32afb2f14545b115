"""Scoring a text: bits per character and the surprisal of every character under a model.

Runs the fused forward in chunks with the state carried (`chunked_cross_entropy`, which validation
in training/validation.py shares); knows nothing of the terminal.

Shape legend: T time, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import memory
from ..data.vocab import Vocab, id_dtype
from ..errors import NeuronError
from ..inspection.tracing import TRACE_CHUNK, encode_texts, ids_chunk
from ..model.network import CharModel

#: Bytes a `TextScore` keeps per character beside the compact arrays it is made from: float64
#: bits and int64 ids.
TEXT_SCORE_BYTES = 16


@dataclass(frozen=True)
class TextScore:
    """How surprised the model is by each character of a text, given the ones before it.

    bits[t] = −log2 p(text[t + 1] | text[: t + 1]); the first character is context only.
    """

    text: str
    bits: np.ndarray             # (T − 1,)
    predicted: np.ndarray        # (T − 1,) id of the model's most likely next character

    @property
    def bits_per_char(self) -> float:
        return float(self.bits.mean()) if len(self.bits) else float("nan")


def chunked_cross_entropy(model: CharModel, ids: np.ndarray, chunk: int,
                          reduction: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Read ids (B, T) — an array in any integer type, made an int64 tensor a chunk at a time —
    through the fused forward `chunk` characters at a time, the state carried from chunk to chunk,
    predicting each next character; yield for every chunk (nats, logits): the cross-entropy of
    ids[:, 1:] in that chunk, flattened (B·t,) or reduced ("sum": a scalar), and the logits
    (B, t, V). Scoring and validation both read text this way, their chunks sized by
    `memory.forward`. Runs in the caller's grad mode (both call it under no_grad or inference_mode)."""
    state = None
    device = next(model.parameters()).device
    for start in range(0, ids.shape[1] - 1, chunk):
        end = min(ids.shape[1], start + chunk + 1)
        window = ids_chunk(ids, start, end, device)                                    # (B, t + 1)
        x, y = window[:, :-1], window[:, 1:]                                           # (B, t) inputs, targets
        logits, state = model(x, state)                                                # (B, t, V)
        yield F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction=reduction), logits


def surprisal_need(config, kept: int = 0) -> memory.Need:
    """What `surprisal` holds with a model of `config` (a ModelConfig): the forward in chunks
    (memory.forward) and per character the text's id, its float32 bits and predicted id, and the
    caller's own `kept` bytes."""
    width = id_dtype(config.vocab_size).itemsize
    return memory.forward(config, id_bytes=width) + memory.Need(per_char=memory.FLOAT + width + kept)


@torch.no_grad()
def surprisal(model: CharModel, vocab: Vocab, text: str, chunk: int = TRACE_CHUNK,
              kept: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(bits (T − 1,) float32, predicted (T − 1,) ids in the vocabulary's compact type) of `text`,
    through the fused forward in chunks (state carried) sized to the memory budget with `kept`
    bytes per character more kept by the caller (`surprisal_need`); a MemoryBudgetError first
    when they cannot fit."""
    if len(text) < 2:
        raise NeuronError("need at least 2 characters to score (the first one is only context)")
    need = surprisal_need(model.config, kept)

    def refusal(need: memory.Need) -> str:
        return (f"{len(text):,} characters is too long to score: this model's scores hold at most "
                f"{need.most_chars():,} characters in the memory budget of {memory.megabytes(memory.budget())}; "
                f"give a shorter text")

    step = memory.plan(need, len(text), max(1, chunk), refusal)
    ids = encode_texts(vocab, [text])                                                 # (1, T)
    bits = np.empty(len(text) - 1, dtype=np.float32)
    predicted = np.empty(len(text) - 1, dtype=ids.dtype)
    at = 0
    for nats, logits in chunked_cross_entropy(model, ids, step):
        n = len(nats)
        bits[at : at + n] = (nats / math.log(2.0)).cpu().numpy()                      # (t,)
        predicted[at : at + n] = logits[0].argmax(-1).cpu().numpy()
        at += n
    return bits, predicted


@torch.no_grad()
def score_text(model: CharModel, vocab: Vocab, text: str, chunk: int = TRACE_CHUNK) -> TextScore:
    """Bits per character and per-character surprisal, through the fused forward in chunks (state
    carried); a text whose scores cannot fit the memory budget is a MemoryBudgetError."""
    bits, predicted = surprisal(model, vocab, text, chunk, kept=TEXT_SCORE_BYTES)
    return TextScore(text, bits.astype(np.float64), predicted.astype(np.int64))
