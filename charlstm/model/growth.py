"""A model's vocabulary grown by new characters: the weights of a model of V' ≥ V characters whose
first V characters are the base model's, row for row, and whose new rows start from the base.

Every cell kind reads characters through the embedding (V, E) and writes them through the head
(V, H) and its bias (V,); nothing else has a row per character, and `grown_state` checks that
against the model it grows into (a layout it does not know is a ConfigError, never a guess). How a
new row starts is one of NEW_EMBEDDING_ROWS and NEW_HEAD_ROWS (what each costs or gains:
benchmarks/README.md, "Starting from a model that already reads"). Knows tensors and the network's
parameter names; nothing of vocabularies, corpora or runs.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from ..errors import ConfigError

#: Where the network keeps a row per character: its input table and its output layer.
EMBEDDING, HEAD_WEIGHT, HEAD_BIAS = "embed.weight", "head.weight", "head.bias"

#: A new character's embedding: drawn at random from the base's rows' spread (each number from a
#: normal distribution with the mean and standard deviation of that column of the base's), the
#: mean of the base's rows, zeros, or a fresh model's random row.
NEW_EMBEDDING_ROWS = ("spread", "mean", "zero", "fresh")
#: A new character's output row: zero weights and a bias from how often it occurs in the new text,
#: set against the base's own predictions there (`frequency_biases`), zero weights and the base's
#: mean bias, or a fresh model's random row.
NEW_HEAD_ROWS = ("frequency", "mean", "fresh")


@torch.no_grad()
def grown_state(base: Mapping[str, torch.Tensor], fresh: Mapping[str, torch.Tensor], embedding: str = "spread",
                head: str = "frequency") -> dict[str, torch.Tensor]:
    """The base's weights (`base`, a state dict of V characters) for the model `fresh` is the state
    dict of (V' characters, its other shapes the base's): the base's tensors as they are, its V rows
    of the embedding and the head kept exactly, the V' − V new rows set by `embedding` and `head`
    (head="frequency" starts as "mean": its biases need the grown model's predictions,
    `frequency_biases`). A tensor of another shape than the base's, other than those rows, is a
    ConfigError."""
    if embedding not in NEW_EMBEDDING_ROWS or head not in NEW_HEAD_ROWS:
        raise ValueError(f"new rows must be one of {NEW_EMBEDDING_ROWS} and {NEW_HEAD_ROWS}, not {embedding!r}, {head!r}")
    old = base[EMBEDDING].shape[0]
    grown = {}
    for name, tensor in fresh.items():
        kept = base.get(name)
        if kept is not None and kept.shape == tensor.shape:
            grown[name] = kept.detach().clone()
        elif kept is not None and name in (EMBEDDING, HEAD_WEIGHT, HEAD_BIAS) and tensor.shape[1:] == kept.shape[1:] \
                and tensor.shape[0] >= old == kept.shape[0]:
            grown[name] = torch.cat([kept.detach(), tensor[old:].detach()]).clone()
        else:
            shape = None if kept is None else tuple(kept.shape)
            raise ConfigError(f"cannot grow this model's vocabulary: its {name} is {shape}, the grown model needs "
                              f"{tuple(tensor.shape)}")
    if set(base) - set(fresh):
        raise ConfigError(f"cannot grow this model's vocabulary: {sorted(set(base) - set(fresh))[0]} has no place in it")
    new = slice(old, grown[EMBEDDING].shape[0])
    table = base[EMBEDDING]
    if embedding == "spread":  # (V' − V, E); drawn from torch's generator, so seeded runs repeat
        grown[EMBEDDING][new] = table.mean(0) + table.std(0, correction=0) * torch.randn_like(grown[EMBEDDING][new])
    elif embedding != "fresh":
        grown[EMBEDDING][new] = table.mean(0) if embedding == "mean" else 0.0
    if head != "fresh":
        grown[HEAD_WEIGHT][new] = 0.0
        grown[HEAD_BIAS][new] = base[HEAD_BIAS].mean()
    return grown


def frequency_biases(counts: torch.Tensor, partition: torch.Tensor, old: int) -> torch.Tensor | None:
    """The head biases of the new characters (ids `old` on) that give each, on average over the
    positions of a text, about its share f of the text as probability: log f − log(1 − F) −
    log mean(1 / Z), where F is the new characters' share together and Z the sum of exp(logit) over
    the base's characters at each position (`partition`: log Z, (N,), from the grown model with zero
    new output weights). `counts` (V'): how often each character occurs in the text (a new one it
    lacks counts half). None when the text holds no base character or no new one (then the mean
    bias stays)."""
    counts = counts.to(torch.float64)
    total = counts.sum()
    share = counts.clamp(min=0.5)[old:] / total.clamp(min=1.0)
    together = float(share.sum())
    if not (0 < together < 1) or not counts[:old].any() or not len(partition):
        return None
    mean_inverse = torch.logsumexp(-partition.to(torch.float64), 0) - math.log(len(partition))  # log mean(1/Z)
    return (share.log() - math.log(1 - together) - mean_inverse).to(torch.float32)
