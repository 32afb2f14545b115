"""The model as a browser runs it: the weights and shape every charlstm page that steps a model
embeds (the model page of `export --html`, the inspect page of `inspect --html`), for model.js.

The weights are arranged for stepping as `network.Stepper` arranges them: layer 0's input side
folded into a (V, G·H) table by `fold_first_layer`, the biases split by `split_biases`, each array
base64 of little-endian float32 (WEB_DTYPE), row-major. Holds no drawing and no text; builds
JSON-ready dicts.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from ..model.network import fold_first_layer, split_biases

#: How the weights travel: little-endian float32 (float16 halves the page but moves unit values by
#: more than inspect's three decimals and can flip an argmax; docs/browser.md has the measurement).
WEB_DTYPE = "<f4"


def _packed(tensor: torch.Tensor) -> str:
    """A tensor as base64 of its little-endian float32 values, row-major."""
    array = np.ascontiguousarray(tensor.detach().cpu().to(torch.float32).numpy().astype(WEB_DTYPE))
    return base64.b64encode(array.tobytes()).decode("ascii")


@torch.no_grad()
def weight_arrays(model) -> dict:
    """The weights of a CharModel as the page steps with them: per layer the input side (layer 0: the
    folded (V, G·H) table; deeper: W_ih (G·H, in) and b_x), W_hh (G·H, H), the hidden-side bias b_h
    of a GRU and the peephole weights (3, H); then the head (V, H) and its bias."""
    config, layers = model.config, []
    for k in range(config.num_layers):
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(k)
        b_x, b_h = split_biases(config.kind, b_ih, b_hh)
        layer = {"table": _packed(fold_first_layer(model))} if k == 0 else {"wih": _packed(w_ih), "bx": _packed(b_x)}
        layer["whh"] = _packed(w_hh)
        if b_h is not None:
            layer["bh"] = _packed(b_h)
        if config.kind.peepholes:
            layer["peep"] = _packed(model.rnn.peephole(k))
        layers.append(layer)
    return {"layers": layers, "headW": _packed(model.head.weight), "headB": _packed(model.head.bias)}


def network_facts(model) -> dict:
    """What model.js's Net takes: the cell kind and what it records (config.CELL_KINDS), the sizes,
    and the weights (`weight_arrays`)."""
    config = model.config
    kind = config.kind
    return {"cell": config.cell, "numLayers": config.num_layers, "hidden": config.hidden_size,
            "blocks": list(kind.blocks), "cellState": kind.cell_state, "peepholes": kind.peepholes,
            "coupled": kind.coupled, "vectors": list(config.vectors), "weights": weight_arrays(model)}
