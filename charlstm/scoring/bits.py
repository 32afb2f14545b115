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

from ..data.vocab import Vocab
from ..errors import NeuronError
from ..inspection.tracing import TRACE_CHUNK, encode_texts
from ..model.network import CharModel


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


def chunked_cross_entropy(model: CharModel, ids: torch.Tensor, chunk: int,
                          reduction: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Read ids (B, T) through the fused forward `chunk` characters at a time, the state carried
    from chunk to chunk, predicting each next character; yield for every chunk (nats, logits):
    the cross-entropy of ids[:, 1:] in that chunk, flattened (B·t,) or reduced ("sum": a scalar),
    and the logits (B, t, V). Scoring and validation both read text this way. Runs in the caller's
    grad mode (both call it under no_grad or inference_mode)."""
    state = None
    for start in range(0, ids.shape[1] - 1, chunk):
        y = ids[:, start + 1 : start + chunk + 1]                                      # (B, t) targets
        x = ids[:, start : start + y.shape[1]]                                          # (B, t) inputs
        logits, state = model(x, state)                                                # (B, t, V)
        yield F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction=reduction), logits


@torch.no_grad()
def score_text(model: CharModel, vocab: Vocab, text: str, chunk: int = TRACE_CHUNK) -> TextScore:
    """Bits per character and per-character surprisal, through the fused forward in chunks (state carried)."""
    if len(text) < 2:
        raise NeuronError("need at least 2 characters to score (the first one is only context)")
    device = next(model.parameters()).device
    ids = encode_texts(vocab, [text], device)                                         # (1, T)
    bits, predicted = [], []
    for nats, logits in chunked_cross_entropy(model, ids, chunk):
        bits.append(nats / math.log(2.0))                                              # (t,)
        predicted.append(logits[0].argmax(-1))
    return TextScore(text, torch.cat(bits).double().cpu().numpy(), torch.cat(predicted).cpu().numpy())
