"""The step math of every cell kind, and explicit LSTM cells in plain PyTorch ops: the standard LSTM,
the peephole LSTM and the LSTM with coupled input and forget gates — with a backward pass through
time derived by hand.

`CELL_MATH` holds, for each kind of `config.CELL_KINDS`, the one implementation of its equations
from preactivations to gates and new state (LSTMMath, PeepholeMath, CoupledMath, GRUMath, RNNMath).
It is used by the training recurrence of `ExplicitLSTM` (a drop-in for `nn.LSTM(batch_first=True)`,
writing into preallocated buffers), by `network.Stepper` (one character: sampling, clamps) and by
tracing (`trace_layer` here, `trace.trace_many` for the fused kinds). LSTM equations, with
a = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh split into gate blocks, σ the logistic function,
⊙ elementwise, c' the previous cell state (the GRU's and RNN's: GRUMath, RNNMath):

    lstm      i = σ(a_i)            f = σ(a_f)            g = tanh(a_g)   o = σ(a_o)
              c = f ⊙ c' + i ⊙ g    h = o ⊙ tanh(c)                        (PyTorch's nn.LSTM)
    peephole  i = σ(a_i + p_i ⊙ c') f = σ(a_f + p_f ⊙ c') g = tanh(a_g)   o = σ(a_o + p_o ⊙ c)
              c, h as above                                  (Gers & Schmidhuber 2000; Graves 2013)
    coupled   f = σ(a_f)            i = 1 − f             g = tanh(a_g)   o = σ(a_o)
              c = f ⊙ c' + (1 − f) ⊙ g, h as above         (CIFG in Greff et al. 2015, no peepholes)

Gate blocks along the last dimension of a: (i, f, g, o) for lstm and peephole, as in nn.LSTM;
(f, g, o) for coupled. The peephole weights p are diagonal: one (3, H) tensor per layer, rows
(p_i, p_f, p_o).

Why a hand-written backward: autograd through a Python loop of small ops records a score of nodes
per character and layer and computes the recurrent weight gradient one time step at a time. The
backward here keeps one matrix product per step (dh_{t−1} = da_t W_hh) and computes dW_hh for the
whole sequence in a single matrix product at the end. `torch.autograd.gradcheck` pins it to
numerical gradients in float64 (tests/test_cells.py).

Shape legend: T time, B batch, H hidden, G gates per cell (4 or 3).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import CELL_KINDS, CellKind

#: Gate blocks per explicit cell kind (the LSTM-like kinds of the table).
GATES = {name: kind.gates for name, kind in CELL_KINDS.items() if kind.cell_state}

Edit = Callable[[torch.Tensor], torch.Tensor]


def _block(buffer: torch.Tensor | None, k: int, H: int) -> torch.Tensor | None:
    """Block k (…, H) of a (…, G·H) buffer, or None when there is no buffer to write into."""
    return None if buffer is None else buffer[..., k * H : (k + 1) * H]


class CellMath:
    """The step math of one cell kind (`kind`, its row of config.CELL_KINDS). `layer_step` is what
    the Stepper calls: one layer, one character → (h, c or None, recorded vectors or None)."""

    def __init__(self, kind: CellKind):
        self.kind = kind

    def layer_step(self, pre, h_prev, c_prev, peep, edit: Edit | None, record: bool):
        raise NotImplementedError


class LSTMMath(CellMath):
    """The standard LSTM's step math, from preactivations a (B, G·H) to gates and new state; the
    base of the peephole and coupled variants. Every method takes optional `out` buffers: the
    training recurrence writes into preallocated tensors, the Stepper (and autograd) gets new ones.
    Works on any leading shape (…, G·H) where it does not slice by rows.

    Blocks (i, f, g, o), as nn.LSTM: i, f, o = σ(a_i), σ(a_f), σ(a_o); g = tanh(a_g);
    c = f ⊙ c' + i ⊙ g; h = o ⊙ tanh(c).
    """

    def gates(self, a, c_prev, peep, out=None):
        """(i, f, g, o) before the new cell state exists; o is None when it depends on it."""
        H = c_prev.shape[-1]
        s = torch.sigmoid(a, out=out)  # one sigmoid over every block is cheaper than one per gate
        g = torch.tanh(a[:, 2 * H : 3 * H], out=_block(out, 2, H))     # the candidate's share of s is overwritten
        return s[:, :H], s[:, H : 2 * H], g, s[:, 3 * H :]

    def cell(self, i, f, g, c_prev, out=None):
        """The new cell state c (B, H)."""
        return torch.addcmul(f * c_prev, i, g, out=out)

    def drive(self, i, f, g):
        """The part of c that does not depend on c': c = f ⊙ c' + drive (a linear recurrence)."""
        return i * g

    def output(self, a, o, c, peep, out=None):
        """The output gate, once the new cell state c is known."""
        return o

    def input_gate(self, i, f):
        return i

    def split(self, acts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Activated blocks (…, G·H) → (i, f, g, o), views."""
        return acts.chunk(4, dim=-1)

    def record(self, i, f, g, o, c_prev, c, h, peep) -> dict[str, torch.Tensor]:
        """Every vector a trace records for this kind, by name (CellKind.vectors)."""
        return {"input": self.input_gate(i, f), "forget": f, "candidate": g, "output": o, "cell": c, "hidden": h}

    def layer_step(self, a, h_prev, c_prev, peep, edit: Edit | None, record: bool):
        """a (B, G·H) → (h, c, recorded vectors or None); `edit` acts on the cell state."""
        i, f, g, o, c, _, h = lstm_step(self, a, c_prev, peep, edit)
        return h, c, (self.record(i, f, g, o, c_prev, c, h, peep) if record else None)


class PeepholeMath(LSTMMath):
    """i = σ(a_i + p_i ⊙ c'), f = σ(a_f + p_f ⊙ c'), o = σ(a_o + p_o ⊙ c); g, c, h as the LSTM's."""

    def gates(self, a, c_prev, peep, out=None):
        H = c_prev.shape[-1]
        i = torch.sigmoid(torch.addcmul(a[:, :H], peep[0], c_prev), out=_block(out, 0, H))
        f = torch.sigmoid(torch.addcmul(a[:, H : 2 * H], peep[1], c_prev), out=_block(out, 1, H))
        g = torch.tanh(a[:, 2 * H : 3 * H], out=_block(out, 2, H))
        return i, f, g, None

    def output(self, a, o, c, peep, out=None):
        H = c.shape[-1]
        return torch.sigmoid(torch.addcmul(a[:, 3 * H :], peep[2], c), out=_block(out, 3, H))

    def record(self, i, f, g, o, c_prev, c, h, peep):
        return {**super().record(i, f, g, o, c_prev, c, h, peep), **peephole_terms(peep, c_prev, c)}


class CoupledMath(LSTMMath):
    """Blocks (f, g, o); the input gate is 1 − f: c = f ⊙ c' + (1 − f) ⊙ g."""

    def gates(self, a, c_prev, peep, out=None):
        H = c_prev.shape[-1]
        s = torch.sigmoid(a, out=out)
        g = torch.tanh(a[:, H : 2 * H], out=_block(out, 1, H))
        return None, s[:, :H], g, s[:, 2 * H :]

    def cell(self, i, f, g, c_prev, out=None):
        return torch.lerp(g, c_prev, f, out=out)                       # g + f (c' − g) = f c' + (1 − f) g

    def drive(self, i, f, g):
        return (1.0 - f) * g

    def input_gate(self, i, f):
        return 1.0 - f

    def split(self, acts):
        return (None, *acts.chunk(3, dim=-1))


class GRUMath(CellMath):
    """nn.GRU's step: r = σ(a_r), z = σ(a_z), n = tanh(x_n + r ⊙ h_n), h = (1 − z) ⊙ n + z ⊙ h',
    where a_r, a_z are whole preactivations and x_n = W_in x + b_in, h_n = W_hn h' + b_hn the two
    sides of the candidate's (kept apart: CellKind.hidden_bias_block)."""

    @staticmethod
    def candidate(x_part, h_part, r, out=None):
        return torch.tanh(torch.addcmul(x_part, r, h_part), out=out)

    def layer_step(self, pre, h_prev, c_prev, peep, edit: Edit | None, record: bool):
        """pre = (input side (B, 3H), hidden side (B, 3H)) → (h, None, recorded vectors or None)."""
        gi, gh = pre
        H = h_prev.shape[-1]
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = self.candidate(gi[:, 2 * H :], gh[:, 2 * H :], r)
        h = torch.lerp(n, h_prev, z)                                    # (1 − z) n + z h'
        if edit is not None:
            h = edit(h)
        return h, None, ({"reset": r, "update": z, "candidate": n, "hidden": h} if record else None)


class RNNMath(CellMath):
    """The Elman RNN: h = tanh(a)."""

    def layer_step(self, a, h_prev, c_prev, peep, edit: Edit | None, record: bool):
        h = torch.tanh(a)
        if edit is not None:
            h = edit(h)
        return h, None, ({"hidden": h} if record else None)


#: The step math of every cell kind in config.CELL_KINDS, keyed by its name.
CELL_MATH = MappingProxyType({name: cls(CELL_KINDS[name]) for name, cls in (
    ("lstm", LSTMMath), ("gru", GRUMath), ("rnn", RNNMath), ("peephole", PeepholeMath), ("coupled", CoupledMath))})
assert set(CELL_MATH) == set(CELL_KINDS), "every cell kind needs its step math"


def lstm_step(step_math: LSTMMath, a: torch.Tensor, c_prev: torch.Tensor, peep: torch.Tensor | None = None,
              edit: Edit | None = None, out: tuple[torch.Tensor, ...] | None = None):
    """One step of one LSTM-like layer: preactivations a (B, G·H) and c' (B, H) → i, f, g, o, c,
    tanh(c), h (B, H); i is None for the coupled cell (see `input_gate`). `edit`, if given, replaces
    the new cell state before the output gate and h see it (neuron clamps). `out` = (acts (B, G·H),
    c, tanh c, h) buffers to write into, as the training recurrence does."""
    acts, c_out, tc_out, h_out = out if out is not None else (None, None, None, None)
    i, f, g, o = step_math.gates(a, c_prev, peep, acts)
    c = step_math.cell(i, f, g, c_prev, c_out)
    if edit is not None:
        c = edit(c)
    o = step_math.output(a, o, c, peep, acts)
    tc = torch.tanh(c, out=tc_out)
    return i, f, g, o, c, tc, torch.mul(o, tc, out=h_out)


def peephole_terms(peep: torch.Tensor, c_prev: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the cell state adds to each gate's preactivation through the peephole weights (3, H)."""
    return {"peep_input": peep[0] * c_prev, "peep_forget": peep[1] * c_prev, "peep_output": peep[2] * c}


def _forward(kind: str, xa: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor,
             peep: torch.Tensor | None):
    """The recurrence over a whole sequence, without autograd. xa (T, B, G·H) is the input side of a
    (biases included), w_hh (G·H, H). Returns the activated gates (T, B, G·H) in block order, the
    cell states c, tanh(c) and hidden states h (T, B, H each)."""
    T, B, GH = xa.shape
    H = h0.shape[-1]
    acts = torch.empty_like(xa)
    cs, tcs, hs = (xa.new_empty(T, B, H) for _ in range(3))
    w = w_hh.t()                                                       # (H, G·H), a view
    step_math = CELL_MATH[kind]
    h, c = h0, c0
    for t in range(T):
        a = torch.addmm(xa[t], h, w)                                   # (B, G·H)
        lstm_step(step_math, a, c, peep, out=(acts[t], cs[t], tcs[t], hs[t]))
        h, c = hs[t], cs[t]
    return acts, cs, tcs, hs


def _backward(kind: str, d_hs: torch.Tensor, d_c_last: torch.Tensor, acts, cs, tcs, hs, h0, c0, w_hh, peep):
    """Backpropagation through time for `_forward`, derived by hand. Returns the gradients of
    xa (T, B, G·H), h0, c0 (B, H), w_hh (G·H, H) and peep (3, H) or None."""
    T, B, GH = acts.shape
    H = h0.shape[-1]
    spec, step_math = CELL_KINDS[kind], CELL_MATH[kind]
    d_a = torch.empty_like(acts)                                       # ∂L/∂a, (T, B, G·H)
    d_peep = torch.zeros(3, H, dtype=acts.dtype, device=acts.device) if peep is not None else None
    dh = torch.zeros_like(h0)                                          # from step t+1 through W_hh
    dc = d_c_last.clone()
    for t in range(T - 1, -1, -1):
        dh = dh + d_hs[t]
        c_prev = cs[t - 1] if t else c0
        tc, act, da = tcs[t], acts[t], d_a[t]
        i, f, g, o = step_math.split(act)
        da_i, da_f, da_g, da_o = step_math.split(da)
        # h = o tanh(c): through the output gate and through tanh(c)
        torch.mul(dh * tc, o * (1.0 - o), out=da_o)
        dc = torch.addcmul(dc, dh * o, 1.0 - tc * tc)
        if spec.peepholes:                                             # o saw c through p_o
            dc = torch.addcmul(dc, da_o, peep[2])
            d_peep[2] += (da_o * cs[t]).sum(0)
        # c = f c' + i g, with i = 1 − f when coupled
        if spec.coupled:
            torch.mul(dc * (c_prev - g), f * (1.0 - f), out=da_f)
            torch.mul(dc * (1.0 - f), 1.0 - g * g, out=da_g)
        else:
            torch.mul(dc * g, i * (1.0 - i), out=da_i)
            torch.mul(dc * c_prev, f * (1.0 - f), out=da_f)
            torch.mul(dc * i, 1.0 - g * g, out=da_g)
        dc = dc * f
        if spec.peepholes:                                             # i and f saw c' through p_i, p_f
            dc = torch.addcmul(torch.addcmul(dc, da_i, peep[0]), da_f, peep[1])
            d_peep[0] += (da_i * c_prev).sum(0)
            d_peep[1] += (da_f * c_prev).sum(0)
        dh = torch.mm(da, w_hh)                                        # (B, H)
    h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]]).reshape(T * B, H)   # h_{t−1} for every t
    d_w_hh = torch.mm(d_a.reshape(T * B, GH).t(), h_prev)               # (G·H, H): one product for all t
    return d_a, dh, dc, d_w_hh, d_peep


class _Recurrence(torch.autograd.Function):
    """(xa, h0, c0, w_hh, peep) → (h for every step (T, B, H), last c (B, H)), with `_backward`."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, kind, xa, h0, c0, w_hh, peep):
        acts, cs, tcs, hs = _forward(kind, xa, h0, c0, w_hh, peep)
        ctx.kind = kind
        ctx.intermediates = (acts, cs, tcs)
        ctx.save_for_backward(hs, h0, c0, w_hh, peep)
        return hs, cs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_hs, d_c_last):
        hs, h0, c0, w_hh, peep = ctx.saved_tensors
        acts, cs, tcs = ctx.intermediates
        d_hs = d_hs if d_hs is not None else torch.zeros_like(hs)
        d_c_last = d_c_last if d_c_last is not None else torch.zeros_like(c0)
        d_xa, d_h0, d_c0, d_w_hh, d_peep = _backward(ctx.kind, d_hs, d_c_last, acts, cs, tcs, hs, h0, c0, w_hh, peep)
        return None, d_xa, d_h0, d_c0, d_w_hh, d_peep


def recurrence(kind: str, xa: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor,
               peep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable recurrence of one layer: hidden states (T, B, H) and the last cell state (B, H)."""
    if kind not in GATES:
        raise ValueError(f"kind must be one of {', '.join(GATES)}, not {kind!r}")
    return _Recurrence.apply(kind, xa, h0, c0, w_hh, peep)


class ExplicitLSTM(nn.Module):
    """A stack of explicit cells with the interface of `nn.LSTM(batch_first=True)`:
    forward(x (B, T, in), (h0, c0) each (L, B, H) or None) → out (B, T, H), (h_n, c_n).

    Parameters are named as nn.LSTM's (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}),
    plus peephole_l{k} (3, H) for the peephole cell, and initialised as nn.LSTM's: U(−1/√H, 1/√H).
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"kind must be one of {', '.join(GATES)}, not {kind!r}")
        self.kind, self.hidden_size, self.num_layers, self.dropout = kind, hidden_size, num_layers, dropout
        self.spec, self.step_math = CELL_KINDS[kind], CELL_MATH[kind]
        G, H = self.spec.gates, hidden_size
        for k in range(num_layers):
            width = input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(G * H, width)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(G * H, H)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(G * H)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(G * H)))
            if self.spec.peepholes:
                self.register_parameter(f"peephole_l{k}", nn.Parameter(torch.empty(3, H)))
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def peephole(self, layer: int) -> torch.Tensor | None:
        return getattr(self, f"peephole_l{layer}") if self.spec.peepholes else None

    def _input_side(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih + b_hh for every row of x (…, in) → (…, G·H)."""
        return F.linear(x, getattr(self, f"weight_ih_l{layer}"),
                        getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}"))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        B, H = x.shape[0], self.hidden_size
        if state is None:
            zeros = x.new_zeros(self.num_layers, B, H)
            state = (zeros, zeros)
        h0, c0 = state
        x = x.transpose(0, 1)                                          # (T, B, in): time-major
        h_n, c_n = [], []
        for k in range(self.num_layers):
            if k and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            hs, c_last = recurrence(self.kind, self._input_side(k, x), h0[k], c0[k],
                                    getattr(self, f"weight_hh_l{k}"), self.peephole(k))
            h_n.append(hs[-1])
            c_n.append(c_last)
            x = hs
        return x.transpose(0, 1), (torch.stack(h_n), torch.stack(c_n))

    @torch.no_grad()
    def trace_layer(self, layer: int, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every vector of one layer over a time-major chunk x (t, B, in) from state (h0, c0) (B, H):
        input, forget, candidate, output, cell, hidden, each (t, B, H). Coupled cells report the
        input gate they imply, 1 − f; peephole cells also the peephole terms, what the cell state
        adds to each gate's preactivation: peep_input = p_i ⊙ c', peep_forget = p_f ⊙ c',
        peep_output = p_o ⊙ c."""
        peep = self.peephole(layer)
        acts, cs, _, hs = _forward(self.kind, self._input_side(layer, x), h0, c0,
                                   getattr(self, f"weight_hh_l{layer}"), peep)
        c_prev = torch.cat([c0.unsqueeze(0), cs[:-1]]) if peep is not None else None  # c' (t, B, H): peepholes only
        return self.step_math.record(*self.step_math.split(acts), c_prev, cs, hs, peep)
