"""The character model: embedding → stacked recurrent layers → linear head.

Holds `ModelConfig` and `CharModel`. Two routes through the same weights:

* `CharModel.forward` runs the fused `nn.LSTM` / `nn.GRU` / `nn.RNN` over whole sequences — the fast
  path for training and for scoring text — or, for the peephole and coupled-gate LSTMs, the explicit
  cells of `cells.py` (plain PyTorch ops with a hand-derived backward).
* `CharModel.stepper()` returns a `Stepper` that advances every layer by one character with plain
  matrix products and the kind's step math from `cells.CELL_MATH`. It serves sampling (a batch-1
  step through the fused module takes the slow oneDNN route on CPU) and inspection: with
  `record=True` it returns every gate of every layer. Tests pin it to the fused forward.
* `fold_first_layer` and `split_biases` arrange weights for stepping and tracing alike.

Imports no data, click, rich or tqdm.

Shape legend: B batch, T time, V vocab, E embedding, H hidden, L layers, G gates per cell.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn as nn

from ..config import CELL_KINDS, CELLS, GATE_VECTORS, CellKind, ModelConfig  # noqa: F401  (re-exported)
from .cells import CELL_MATH, ExplicitLSTM

_FUSED = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


State = tuple[torch.Tensor, ...]  # LSTM-like: (h, c); GRU, RNN: (h,); each (L, B, H)


class CharModel(nn.Module):
    """Predicts the next character from the characters so far, carrying a recurrent state.

    Every weight and bias starts as PyTorch initialises it unless `forget_bias` is set: the default
    has no forget-gate bias of 1 (char-rnn's choice), which trained worse here (benchmarks/README.md,
    "How the training defaults were chosen"). The probe-task recipes set it.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embedding_size)
        dropout = config.dropout if config.num_layers > 1 else 0.0
        if config.explicit:
            self.rnn = ExplicitLSTM(config.cell, config.embedding_size, config.hidden_size, config.num_layers, dropout)
        else:
            self.rnn = _FUSED[config.cell](config.embedding_size, config.hidden_size, config.num_layers,
                                           batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.forget_bias and config.has_cell_state:
            H, k = config.hidden_size, config.kind.forget_block       # (i, f, g, o): block 1; (f, g, o): block 0
            with torch.no_grad():
                for layer in range(config.num_layers):
                    getattr(self.rnn, f"bias_ih_l{layer}")[k * H : (k + 1) * H].fill_(config.forget_bias)
                    getattr(self.rnn, f"bias_hh_l{layer}")[k * H : (k + 1) * H].zero_()

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        c = self.config
        device = device if device is not None else self.head.weight.device
        zeros = lambda: torch.zeros(c.num_layers, batch_size, c.hidden_size, device=device)  # noqa: E731
        return (zeros(), zeros()) if c.has_cell_state else (zeros(),)

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        out, new = self.features(idx, state)                # (B, T, H)
        return self.head(out), new                          # logits (B, T, V)

    def features(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """What the head reads at every position (B, T, H), dropout applied, and the new state:
        the forward without its output layer (training takes that layer in pieces: loss.py)."""
        emb = self.drop(self.embed(idx))                    # (B, T, E)
        if state is None:
            out, new = self.rnn(emb)
        else:
            out, new = self.rnn(emb, state if self.config.has_cell_state else state[0])
        return self.drop(out), (tuple(new) if self.config.has_cell_state else (new,))

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W_ih (G·H, in), W_hh (G·H, H), b_ih (G·H,), b_hh (G·H,)) of one layer, 0-based."""
        r = self.rnn
        return (getattr(r, f"weight_ih_l{layer}"), getattr(r, f"weight_hh_l{layer}"),
                getattr(r, f"bias_ih_l{layer}"), getattr(r, f"bias_hh_l{layer}"))

    def stepper(self) -> "Stepper":
        return Stepper(self)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


Edits = Mapping[tuple[int, int], float]  # (layer, unit) → value forced into the cell (LSTM) or hidden state


def split_biases(kind: CellKind, b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer's two biases (G·H,) regrouped for products x W_ih + b_x and h W_hh + b_h: both biases
    go to the input side, except that of `kind.hidden_bias_block` (GRU's candidate sees
    r ⊙ (W_hn h + b_hn)), which stays on the hidden side. b_h is None when nothing stays there."""
    if kind.hidden_bias_block is None:
        return b_ih + b_hh, None
    H, k = b_ih.shape[0] // kind.gates, kind.hidden_bias_block
    b_x, b_h = b_ih + b_hh, torch.zeros_like(b_hh)
    b_x[k * H : (k + 1) * H] = b_ih[k * H : (k + 1) * H]
    b_h[k * H : (k + 1) * H] = b_hh[k * H : (k + 1) * H]
    return b_x, b_h


@torch.no_grad()
def fold_first_layer(model: CharModel) -> torch.Tensor:
    """Layer 0's input side for every character: embedding · W_ih + b_x (see `split_biases`) as a
    (V, G·H) table, so that stepping and tracing look a row up instead of multiplying."""
    w_ih, _, b_ih, b_hh = model.layer_weights(0)
    b_x, _ = split_biases(model.config.kind, b_ih, b_hh)
    return torch.addmm(b_x, model.embed.weight, w_ih.t())              # (V, E) @ (E, G·H) → (V, G·H)


class _LayerInput:
    """One layer's preactivations for a step, from its input (ids for layer 0, else x (B, in)) and
    h (B, H): a (B, G·H), or for a kind with a hidden-side bias (GRU) the pair (input side, hidden side)."""

    @torch.no_grad()
    def __init__(self, model: CharModel, layer: int):
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(layer)
        b_x, self.b_h = split_biases(model.config.kind, b_ih, b_hh)
        self.table = fold_first_layer(model) if layer == 0 else None    # (V, G·H)
        if self.table is None and self.b_h is None:
            self.stacked = torch.cat([w_ih, w_hh], dim=1).t().contiguous()  # (in + H, G·H): one GEMM for [x, h]
        else:
            self.w_ih = w_ih.t().contiguous() if self.table is None else None   # (in, G·H)
            self.w_hh = w_hh.t().contiguous()                                    # (H, G·H)
        self.b_x = b_x.contiguous()

    def __call__(self, x: torch.Tensor, h: torch.Tensor):
        if self.table is not None:
            x_side = self.table.index_select(0, x)                       # (B, G·H)
            if self.b_h is None:
                return torch.addmm(x_side, h, self.w_hh)
            return x_side, torch.addmm(self.b_h, h, self.w_hh)
        if self.b_h is None:
            return torch.addmm(self.b_x, torch.cat([x, h], dim=1), self.stacked)
        return torch.addmm(self.b_x, x, self.w_ih), torch.addmm(self.b_h, h, self.w_hh)


class Stepper:
    """One character at a time through every layer, with plain matrix products.

    Weights are rearranged once, up front, for the step (`_LayerInput`):
    * layer 0's input projection is folded into the embedding table — a row lookup instead of a
      matrix product — together with the biases (`fold_first_layer`);
    * deeper layers multiply [x, h] by one stacked matrix, one GEMM instead of two.
    The gate math is the cell kind's own (`cells.CELL_MATH`, gate order and equations as in
    PyTorch's docs), so it serves sampling, tracing and neuron edits. Build it after training: it
    copies the weights.
    """

    @torch.no_grad()
    def __init__(self, model: CharModel):
        self.config = c = model.config
        self.step_math = CELL_MATH[c.cell]
        self.inputs = [_LayerInput(model, layer) for layer in range(c.num_layers)]
        peephole = getattr(model.rnn, "peephole", None)
        self.peepholes = [peephole(k).detach().clone() if c.kind.peepholes else None for k in range(c.num_layers)]
        self.head_w = model.head.weight.t().contiguous()                   # (H, V)
        self.head_b = model.head.bias.clone()
        self.H = c.hidden_size
        self.device = model.embed.weight.device

    def init_state(self, batch_size: int) -> State:
        zeros = lambda: torch.zeros(self.config.num_layers, batch_size, self.H, device=self.device)  # noqa: E731
        return (zeros(), zeros()) if self.config.has_cell_state else (zeros(),)

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, state: State, record: bool = False, edits: Edits | None = None):
        """Advance one character. ids (B,) → logits (B, V), new state, and per-layer gate dicts if record.

        `edits` forces units of the cell state (LSTM) or hidden state (GRU, RNN) to fixed values
        after each update, so what the model does next is what it does with that unit pinned.
        """
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if self.config.has_cell_state else None
        logits, recorded = self.advance(ids, hs, cs, record, edits)
        new_state = (torch.stack(hs), torch.stack(cs)) if cs is not None else (torch.stack(hs),)
        return logits, new_state, recorded

    def advance(self, ids: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor] | None,
                record: bool = False, edits: Edits | None = None):
        """The step itself, on per-layer lists of (B, H) states that it updates in place: the
        sampler's hot loop calls this directly (under inference mode) to skip stacking states."""
        recorded = [] if record else None
        layer_step, x = self.step_math.layer_step, ids
        for layer, layer_input in enumerate(self.inputs):
            h = hs[layer]                                                   # (B, H)
            edit = (lambda v, layer=layer: _apply_edits(v, layer, edits)) if edits else None
            h, c, values = layer_step(layer_input(x, h), h, cs[layer] if cs is not None else None,
                                      self.peepholes[layer], edit, record)
            hs[layer] = x = h
            if cs is not None:
                cs[layer] = c
            if record:
                recorded.append(values)
        return torch.addmm(self.head_b, x, self.head_w), recorded          # logits (B, V)


def _apply_edits(values: torch.Tensor, layer: int, edits: Edits | None) -> torch.Tensor:
    if not edits:
        return values
    targets = [(unit, v) for (l, unit), v in edits.items() if l == layer]
    if not targets:
        return values
    values = values.clone()
    for unit, v in targets:
        values[:, unit] = v
    return values
