"""Neuron traces: what every unit of every layer does while the model reads a text.

`trace` runs text through the model's explicit step (`model.Stepper`) and returns a `Trace`: for
each layer, every vector of the cell (LSTM: input, forget, candidate, output gates, cell and hidden
state) as a (T, H) tensor, with the characters they belong to. Several texts run as one batch.
Knows nothing of rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .data import Vocab
from .model import CharModel


class NeuronError(ValueError):
    """A layer, unit or vector that the model does not have."""


@dataclass
class Trace:
    """Per-character activations of one text.

    layers[l][name] is a (T, H) tensor: row t is the value after the model has read text[t].
    logits[t] (V,) is the model's prediction of text[t + 1].
    """

    text: str
    cell: str
    layers: list[dict[str, torch.Tensor]]
    logits: torch.Tensor

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return next(iter(self.layers[0].values())).shape[1]

    def values(self, layer: int, vector: str, neuron: int) -> torch.Tensor:
        """(T,) trace of one unit; layer is 1-based as on the command line."""
        check_neuron(self.num_layers, self.hidden_size, tuple(self.layers[0]), layer, vector, neuron)
        return self.layers[layer - 1][vector][:, neuron]


def check_neuron(num_layers: int, hidden_size: int, vectors: Sequence[str], layer: int, vector: str, neuron: int) -> None:
    """Raise a NeuronError stating the valid range when (layer, vector, neuron) does not exist."""
    if not 1 <= layer <= num_layers:
        raise NeuronError(f"layer {layer} out of range: this model has layers 1 to {num_layers}")
    if vector not in vectors:
        raise NeuronError(f"vector {vector!r} not recorded for this cell; choose from {', '.join(vectors)}")
    if not 0 <= neuron < hidden_size:
        raise NeuronError(f"neuron {neuron} out of range: layer {layer} has neurons 0 to {hidden_size - 1}")


@torch.inference_mode()
def trace_many(model: CharModel, vocab: Vocab, texts: Sequence[str], vectors: Sequence[str] | None = None) -> list[Trace]:
    """Trace several texts as one batch (shorter ones are padded; padding never reaches them).

    `vectors` limits what is kept, which matters for long texts: a 2×512 LSTM records
    6 vectors × 2 layers × 512 floats per character.
    """
    config = model.config
    keep_vectors = tuple(vectors) if vectors else config.vectors
    for name in keep_vectors:
        if name not in config.vectors:
            raise NeuronError(f"vector {name!r} not recorded for a {config.cell} cell; choose from {', '.join(config.vectors)}")
    for text in texts:
        missing = vocab.unknown(text)
        if missing:
            raise NeuronError(f"the text has characters this model never saw: {', '.join(map(repr, missing[:12]))}")
    device = next(model.parameters()).device
    B, T = len(texts), max((len(t) for t in texts), default=0)
    ids = torch.zeros(B, T, dtype=torch.long, device=device)
    for b, text in enumerate(texts):
        if text:
            ids[b, : len(text)] = torch.as_tensor(vocab.encode(text).astype("int64"), device=device)
    stepper = model.stepper()
    state = stepper.init_state(B)
    steps_logits: list[torch.Tensor] = []
    recorded: list[dict[str, list[torch.Tensor]]] = [{name: [] for name in keep_vectors} for _ in range(config.num_layers)]
    for t in range(T):
        logits, state, gates = stepper.step(ids[:, t], state, record=True)
        steps_logits.append(logits)
        for layer, values in zip(recorded, gates):
            for name in keep_vectors:
                layer[name].append(values[name])
    V, H = config.vocab_size, config.hidden_size
    logits_all = torch.stack(steps_logits, dim=1) if T else torch.zeros(B, 0, V)              # (B, T, V)
    stacked = [{name: (torch.stack(v, dim=1) if T else torch.zeros(B, 0, H)) for name, v in layer.items()}
               for layer in recorded]                                                          # (B, T, H) each
    traces = []
    for b, text in enumerate(texts):
        n = len(text)
        layer_dicts = [{name: v[b, :n].cpu() for name, v in layer.items()} for layer in stacked]
        traces.append(Trace(text, config.cell, layer_dicts, logits_all[b, :n].cpu()))
    return traces


def trace(model: CharModel, vocab: Vocab, text: str, vectors: Sequence[str] | None = None) -> Trace:
    """Trace one text through every layer; see `trace_many`."""
    return trace_many(model, vocab, [text], vectors)[0]
