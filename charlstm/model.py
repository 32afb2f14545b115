"""The character model: embedding → stacked recurrent layers → linear head.

Holds `ModelConfig` and `CharModel`. Two routes through the same weights:

* `CharModel.forward` runs the fused `nn.LSTM` / `nn.GRU` / `nn.RNN` over whole sequences — the fast
  path for training and for scoring text — or, for the peephole and coupled-gate LSTMs, the explicit
  cells of `cells.py` (plain PyTorch ops with a hand-derived backward).
* `CharModel.stepper()` returns a `Stepper` that advances every layer by one character with plain
  matrix products. It serves sampling (a batch-1 step through the fused module takes the slow
  oneDNN route on CPU) and inspection: with `record=True` it returns every gate of every layer.
  Tests pin it to the fused forward.

Imports no data, click, rich or tqdm.

Shape legend: B batch, T time, V vocab, E embedding, H hidden, L layers, G gates per cell.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn as nn

from .cells import FORGET_BLOCK, ExplicitLSTM, gate_step, peephole_terms

from .config import CELL_KINDS, CELLS, GATE_VECTORS, ModelConfig  # noqa: F401  (re-exported)

_FUSED = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
#: What a trace records for each cell type.
CELL_VECTORS = {name: kind.vectors for name, kind in CELL_KINDS.items()}
#: Cells with a cell state c next to the hidden state h.
LSTM_LIKE = frozenset(name for name, kind in CELL_KINDS.items() if kind.cell_state)

State = tuple[torch.Tensor, ...]  # LSTM-like: (h, c); GRU, RNN: (h,); each (L, B, H)


def pick_device(device: str | None = None) -> torch.device:
    """The device asked for, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class CharModel(nn.Module):
    """Predicts the next character from the characters so far, carrying a recurrent state.

    Every weight and bias starts as PyTorch initialises it unless `forget_bias` is set. The default
    has no forget-gate bias of 1 (char-rnn's choice): on tiny-shakespeare that bias left validation
    0.10–0.14 nats/char worse after 500 steps, in the reference loop and in charlstm's own (see
    benchmarks/README.md). The probe-task recipes (probes.py) keep it, as they were measured with it.
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
            H, k = config.hidden_size, FORGET_BLOCK[config.cell]       # (i, f, g, o): block 1; (f, g, o): block 0
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
        emb = self.drop(self.embed(idx))                    # (B, T, E)
        if state is None:
            out, new = self.rnn(emb)
        else:
            out, new = self.rnn(emb, state if self.config.has_cell_state else state[0])
        logits = self.head(self.drop(out))                  # out (B, T, H) → logits (B, T, V)
        return logits, (tuple(new) if self.config.has_cell_state else (new,))

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


class Stepper:
    """One character at a time through every layer, with plain matrix products.

    Weights are rearranged once, up front, for the step:
    * layer 0's input projection is folded into the embedding table — a row lookup instead of a
      matrix product — together with both biases;
    * deeper layers multiply [x, h] by one stacked matrix, one GEMM instead of two.
    The math is exactly the fused module's (gate order and equations as in PyTorch's docs), so it
    serves sampling, tracing and neuron edits. Build it after training: it copies the weights.
    The peephole and coupled cells take the same route to their preactivations, then `cells.gate_step`.
    """

    @torch.no_grad()
    def __init__(self, model: CharModel):
        self.config = c = model.config
        self.cell = c.cell
        H = c.hidden_size
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(0)
        emb = model.embed.weight                                           # (V, E)
        if c.cell == "gru":
            # The GRU candidate sees r ⊙ (W_hn h + b_hn), so the hidden bias stays separate.
            self.table0 = torch.addmm(b_ih, emb, w_ih.t())                  # (V, 3H)
        else:
            self.table0 = torch.addmm(b_ih + b_hh, emb, w_ih.t())           # (V, G·H)
        self.w_hh0 = w_hh.t().contiguous()                                  # (H, G·H)
        self.layers = []
        for layer in range(1, c.num_layers):
            w_ih, w_hh, b_ih, b_hh = model.layer_weights(layer)
            if c.cell == "gru":
                self.layers.append((w_ih.t().contiguous(), b_ih.clone(), w_hh.t().contiguous(), b_hh.clone()))
            else:
                stacked = torch.cat([w_ih, w_hh], dim=1).t().contiguous()   # (2H, G·H)
                self.layers.append((stacked, (b_ih + b_hh).contiguous()))
        self.b_hh0 = model.layer_weights(0)[3].clone()
        self.peepholes = [model.rnn.peephole(k).detach().clone() for k in range(c.num_layers)] if c.cell == "peephole" else None
        self.head_w = model.head.weight.t().contiguous()                   # (H, V)
        self.head_b = model.head.bias.clone()
        self.H = H
        self.device = emb.device

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
        H = self.H
        recorded = [] if record else None
        x = None
        for layer in range(self.config.num_layers):
            h = hs[layer]                                                   # (B, H)
            if self.cell == "gru":
                if layer == 0:
                    gi = self.table0.index_select(0, ids)                   # (B, 3H)
                    gh = torch.addmm(self.b_hh0, h, self.w_hh0)             # (B, 3H)
                else:
                    w_ih, b_ih, w_hh, b_hh = self.layers[layer - 1]
                    gi = torch.addmm(b_ih, x, w_ih)
                    gh = torch.addmm(b_hh, h, w_hh)
                r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
                n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
                h = torch.lerp(n, h, z)                                     # (1 − z) n + z h
                h = _apply_edits(h, layer, edits)
                if record:
                    recorded.append({"reset": r, "update": z, "candidate": n, "hidden": h})
            else:
                if layer == 0:
                    gates = torch.addmm(self.table0.index_select(0, ids), h, self.w_hh0)  # (B, G·H)
                else:
                    stacked, bias = self.layers[layer - 1]
                    gates = torch.addmm(bias, torch.cat([x, h], dim=1), stacked)
                if self.cell in LSTM_LIKE:
                    peep = self.peepholes[layer] if self.peepholes else None
                    edit = (lambda c, layer=layer: _apply_edits(c, layer, edits)) if edits else None
                    c_prev = cs[layer]
                    i, f, g, o, c, h = gate_step(self.cell, gates, c_prev, peep, edit)
                    cs[layer] = c
                    if record:
                        recorded.append({"input": i, "forget": f, "candidate": g, "output": o, "cell": c, "hidden": h})
                        if peep is not None:
                            recorded[-1].update(peephole_terms(peep, c_prev, c))
                else:
                    h = _apply_edits(torch.tanh(gates), layer, edits)
                    if record:
                        recorded.append({"hidden": h})
            hs[layer] = h
            x = h
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

