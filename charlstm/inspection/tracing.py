"""Exact traces: every gate and state of every layer while the model reads a text.

`trace` / `trace_many` return a `Trace`: for each layer, every vector of the cell (LSTM: input,
forget, candidate, output gates, cell and hidden state; GRU: reset, update, candidate, hidden) as a
(T, H) tensor, with the characters they belong to and the logits. Computes values; never ranks,
summarises or draws them (analysis.py, atlas.py, views/).

Shape legend: B batch, T time, V vocab, E embedding, H hidden, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import memory
from ..config import GATE_VECTORS
from ..data.vocab import Vocab, id_dtype
from ..errors import NeuronError, TraceTooLongError
from ..model.cells import CELL_MATH
from ..model.network import CharModel, fold_first_layer, split_biases
from . import selection

#: Characters per call of the fused recurrent kernel. The state is carried from call to call, so
#: the values do not depend on it; it bounds the temporary tensors of a chunk and keeps the CPU
#: kernel on its fast path (one call over 100k characters is many times slower).
TRACE_CHUNK = 2048

# ------------------------------------------------------------------------------------------ traces


@dataclass
class Trace:
    """Per-character activations of one text.

    layers[l][name] is a (T, H) tensor: row t is the value after the model has read text[t]
    (layer l + 1 on the command line). Layers left out with `trace(..., layers=...)` are empty dicts.
    logits[t] (V,) is the model's prediction of text[t + 1] (None when traced with logits=False).
    """

    text: str
    cell: str
    layers: list[dict[str, torch.Tensor]]
    logits: torch.Tensor | None
    hidden_size: int = 0

    def __post_init__(self) -> None:
        if not self.hidden_size:
            self.hidden_size = next((v.shape[1] for layer in self.layers for v in layer.values()), 0)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def vectors(self) -> tuple[str, ...]:
        """The vectors recorded (the same for every traced layer)."""
        return next((tuple(layer) for layer in self.layers if layer), ())

    @property
    def traced_layers(self) -> list[int]:
        """1-based numbers of the layers that hold values."""
        return [n for n, layer in enumerate(self.layers, 1) if layer]

    def values(self, layer: int, vector: str, neuron: int) -> torch.Tensor:
        """(T,) trace of one unit; layer is 1-based as on the command line."""
        selection.check_layer(layer, self.num_layers)
        selection.check_vector(vector, self.vectors, "in this trace")
        selection.check_unit(neuron, layer, self.hidden_size)
        if not self.layers[layer - 1]:
            raise NeuronError(f"layer {layer} was not traced (traced: {', '.join(map(str, self.traced_layers))})")
        return self.layers[layer - 1][vector][:, neuron]

    def units(self, vector: str, layers: Sequence[int] | None = None) -> torch.Tensor:
        """(T, len(layers)·H): every unit of `vector` in the given layers (default: all traced), side by side."""
        layers = [selection.check_layer(n, self.num_layers) for n in layers] if layers else self.traced_layers
        selection.check_vector(vector, self.vectors, "in this trace")
        return torch.cat([self.layers[layer - 1][vector] for layer in layers], dim=1)


def _single_layers(model: CharModel) -> list[nn.Module]:
    """One fused one-layer module per layer, sharing the model's weights (nothing is copied), so
    each layer's whole output sequence comes out of the fast kernel. Built on the meta device first
    so that no random initialisation touches the global RNG."""
    c, rnn = model.config, model.rnn
    if c.explicit:  # the explicit cells record their own gates: see _trace_chunk
        return [rnn] * c.num_layers
    modules = []
    for layer in range(c.num_layers):
        kwargs = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        single = type(rnn)(c.embedding_size if layer == 0 else c.hidden_size, c.hidden_size, 1, device="meta", **kwargs)
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(layer)
        single.load_state_dict({"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh},
                               assign=True)
        modules.append(single.eval())
    return modules


def linear_scan(f: torch.Tensor, u: torch.Tensor, c0: torch.Tensor, block: int = 64) -> torch.Tensor:
    """c_t = f_t · c_{t−1} + u_t along dim 0, from c_{−1} = c0. f, u (T, ...); c0 (...) → c (T, ...).

    The LSTM cell state given its gates. A loop over T would be T small steps; this takes
    block + T/block:

        1. cut the text into blocks of `block` characters and, in every block at once, loop over
           the block's positions from a zero start (the block's own contribution);
        2. loop over the blocks, carrying the true state from one block's end to the next;
        3. c = own contribution + (product of the forget gates since the block began) × state carried in.

    The same result as the plain loop, up to float rounding (pinned by a test).
    """
    T, rest = f.shape[0], f.shape[1:]
    if T == 0:
        return f.new_zeros(f.shape)
    K = min(block, T)
    N = -(-T // K)
    pad = N * K - T
    if pad:  # f = 1, u = 0 leaves the state as it is
        f = torch.cat([f, f.new_ones(pad, *rest)])
        u = torch.cat([u, u.new_zeros(pad, *rest)])
    f, u = f.reshape(N, K, *rest), u.reshape(N, K, *rest)
    own = torch.empty_like(u)                                    # (N, K, ...)
    acc = u.new_zeros(N, *rest)
    for k in range(K):
        acc = torch.addcmul(u[:, k], f[:, k], acc)
        own[:, k] = acc
    decay = torch.cumprod(f, dim=1)                              # (N, K, ...): Π f since the block began
    carried = torch.empty(N, *rest, dtype=u.dtype, device=u.device)
    state = c0
    for n in range(N):
        carried[n] = state
        state = torch.addcmul(own[n, -1], decay[n, -1], state)
    c = torch.addcmul(own, decay, carried.unsqueeze(1))          # (N, K, ...)
    return c.reshape(N * K, *rest)[:T]


def _check_vectors(model: CharModel, vectors: Sequence[str] | None) -> tuple[str, ...]:
    """The vectors to record (default: every one of the cell), checked by `selection`."""
    config = model.config
    return selection.pick_vectors(vectors, config.vectors, selection.cell_owner(config.cell)) if vectors else config.vectors


def _check_layers(model: CharModel, layers: Sequence[int] | None) -> list[int]:
    """The 1-based layers to record, sorted (default: all), checked by `selection`."""
    L = model.config.num_layers
    return list(selection.pick_layers(sorted(set(layers)), L)) if layers else list(range(1, L + 1))


def encode_texts(vocab: Vocab, texts: Sequence[str]) -> np.ndarray:
    """Texts as one (B, T) array of ids in the vocabulary's compact type (`data.vocab.id_dtype`),
    right-padded with id 0; the vocabulary refuses unseen characters (UnknownCharactersError).
    Chunks become int64 tensors one at a time (`ids_chunk`)."""
    B, T = len(texts), max((len(t) for t in texts), default=0)
    ids = np.zeros((B, T), dtype=id_dtype(len(vocab)))
    for b, text in enumerate(texts):
        if text:
            ids[b, : len(text)] = vocab.encode(text)
    return ids


def ids_chunk(ids: np.ndarray, start: int, end: int, device: torch.device | str = "cpu",
              time_major: bool = False) -> torch.Tensor:
    """ids[:, start:end] of an (B, T) id array as an int64 tensor on `device`: (B, t), or (t, B)."""
    part = ids[:, start:end]
    return torch.from_numpy(np.ascontiguousarray(part.T if time_major else part).astype(np.int64)).to(device)


class _GateWeights:
    """One layer's weights arranged so that a gate over every time step of a chunk is two matrix
    products, x (t·B, in) @ W_x (in, H) + h_{t−1} (t·B, H) @ W_h (H, H) + b, per gate (one per block
    of CellKind.blocks, biases grouped by `model.split_biases`). For the first layer x @ W_x + b is
    a row of the folded (V, G·H) table of `model.fold_first_layer`, as in `Stepper`."""

    def __init__(self, model: CharModel, layer: int):
        H, kind = model.config.hidden_size, model.config.kind
        self.step_math = CELL_MATH[kind.name]
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(layer)
        b_x, b_h = split_biases(kind, b_ih, b_hh)

        def block(k: int) -> slice:
            return slice(k * H, (k + 1) * H)

        self.w_x = {name: w_ih[block(k)].t().contiguous() for k, name in enumerate(kind.blocks)}   # (in, H)
        self.w_h = {name: w_hh[block(k)].t().contiguous() for k, name in enumerate(kind.blocks)}   # (H, H)
        self.b_x = {name: b_x[block(k)] for k, name in enumerate(kind.blocks)}
        # the block whose hidden bias stays inside the recurrent term (GRU's candidate) keeps it apart
        self.b_h = {name: (b_h[block(k)] if k == kind.hidden_bias_block else None) for k, name in enumerate(kind.blocks)}
        self.table = None
        if layer == 0:  # the embedding is a lookup, so x @ W_x + b is one too
            table = fold_first_layer(model)                                            # (V, G·H)
            self.table = {name: table[:, block(k)].contiguous() for k, name in enumerate(kind.blocks)}  # (V, H)

    def input_part(self, name: str, x: torch.Tensor, ids: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        """x_t @ W_x + b for every row; x (t·B, in), ids (t·B,) → (t·B, H), into `out` if given."""
        if self.table is not None:
            return torch.index_select(self.table[name], 0, ids, out=out) if out is not None else self.table[name][ids]
        return torch.addmm(self.b_x[name], x, self.w_x[name], out=out) if out is not None else \
            torch.addmm(self.b_x[name], x, self.w_x[name])

    def hidden_part_(self, name: str, acc: torch.Tensor, h0: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """acc (t·B, H) += h_{t−1} @ W_h, where h_{t−1} is h0 (B, H) for the first row block and
        h (t·B, H) shifted down by one time step for the rest — no concatenated copy of h."""
        B, w = h0.shape[0], self.w_h[name]
        acc[:B].addmm_(h0, w)
        acc[B:].addmm_(h[: len(h) - B], w)
        return acc


@torch.no_grad()
def trace_many(model: CharModel, vocab: Vocab, texts: Sequence[str], vectors: Sequence[str] | None = None,
               layers: Sequence[int] | None = None, chunk: int = TRACE_CHUNK, logits: bool = True) -> list[Trace]:
    """Trace several texts as one batch (shorter ones are padded at the end; padding never reaches them).

    How, exactly and fast: the hidden states of every layer come from the fused recurrent kernel,
    run one layer at a time over chunks of at most `chunk` characters with the state carried across
    chunks. Given every h_{t−1} and input x_t, each gate of all time steps is one matrix product
    (PyTorch's equations and gate order i, f, g, o), and the LSTM cell state is the linear
    recurrence c_t = f_t c_{t−1} + i_t g_t, solved by `linear_scan` and restarted at every chunk
    from the kernel's own final c. Tests pin the result to the step-by-step `Stepper` and to the
    fused forward.

    `vectors` and `layers` (1-based) limit what is kept and computed, which matters for long texts:
    an LSTM records six vectors × layers × H floats per character; hidden states alone need no
    gate products at all. `logits=False` keeps no logits (Trace.logits is None): with a large
    vocabulary they are most of a trace. What is kept must fit the memory budget (`check_trace`):
    a longer text is refused with one TraceTooLongError (a MemoryBudgetError and a NeuronError)
    naming the longest that fits, before any work. Values are float32 on the CPU, computed without autograd (under no_grad rather than
    inference_mode, so they are ordinary tensors that can be fed back to the model).

    Speed on a CPU is bounded by the recurrence, one matrix-vector product per character and layer;
    it uses torch's threads as set (torch.set_num_threads, OMP_NUM_THREADS): more threads help on
    idle cores, one thread on cores busy with other work.
    """
    config = model.config
    keep_vectors, keep_layers = _check_vectors(model, vectors), _check_layers(model, layers)
    B, T = len(texts), max((len(t) for t in texts), default=0)
    # several texts are each copied out of the batch's buffers at the end: twice the values, then
    step = check_trace(config, T, len(keep_vectors), len(keep_layers), logits=logits, streams=B if B == 1 else 2 * B,
                       chunk=chunk)
    ids = encode_texts(vocab, texts)
    device = next(model.parameters()).device
    H, V, L = config.hidden_size, config.vocab_size, config.num_layers
    # Time-major buffers, so that a chunk of time steps is one contiguous block to write into.
    recorded = [{name: torch.empty(T, B, H, device=device) for name in keep_vectors} if layer + 1 in keep_layers else {}
                for layer in range(L)]                                                # (T, B, H) each
    logits_all = torch.empty(T, B, V, device=device) if logits else None              # (T, B, V)

    def views(start: int, end: int):
        return ([{name: buffer[start:end] for name, buffer in layer.items()} for layer in recorded],
                None if logits_all is None else logits_all[start:end])

    for _ in _passes(model, ids, keep_vectors, keep_layers, step, views, depth=L if logits else max(keep_layers)):
        pass
    traces = []
    for b, text in enumerate(texts):
        n = len(text)
        layer_dicts = [{name: v[:n, b] if B == 1 else v[:n, b].contiguous() for name, v in layer.items()}
                       for layer in recorded]
        kept = None if logits_all is None else logits_all[:n, b] if B == 1 else logits_all[:n, b].contiguous()
        traces.append(Trace(text, config.cell, [{k: v.cpu() for k, v in d.items()} for d in layer_dicts],
                            None if kept is None else kept.cpu(), hidden_size=H))
    return traces


@dataclass(frozen=True)
class TraceChunk:
    """The values of characters [start, end) of a text traced a chunk at a time (`trace_chunks`)."""

    start: int
    end: int
    layers: list[dict[str, torch.Tensor]]   # layers[l][name] (end − start, H); empty for layers left out


@torch.no_grad()
def trace_chunks(model: CharModel, vocab: Vocab, text: str, vectors: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None, kept: memory.Need = memory.Need(), what: str = "trace",
                 chunk: int = TRACE_CHUNK) -> Iterator[TraceChunk]:
    """Trace one text a chunk at a time, keeping nothing: the values of `trace` for `vectors` and
    `layers`, chunk after chunk. A chunk's tensors are overwritten by the next one: copy what you
    keep. `kept` is what the caller keeps per character (memory.Need), counted in the budget with
    the chunks' own working memory (`check_trace`; `what` names the pass in a refusal)."""
    config = model.config
    keep_vectors, keep_layers = _check_vectors(model, vectors), _check_layers(model, layers)
    step = check_trace(config, len(text), len(keep_vectors), len(keep_layers), logits=False, streamed=True,
                       kept=kept, what=what, chunk=chunk)
    ids = encode_texts(vocab, [text])
    device = next(model.parameters()).device
    scratch = [{name: torch.empty(step, 1, config.hidden_size, device=device) for name in keep_vectors}
               if layer + 1 in keep_layers else {} for layer in range(config.num_layers)]

    def views(start: int, end: int):
        return [{name: buffer[: end - start] for name, buffer in layer.items()} for layer in scratch], None

    for start, end in _passes(model, ids, keep_vectors, keep_layers, step, views, depth=max(keep_layers)):
        yield TraceChunk(start, end, [{name: b[: end - start, 0].cpu() for name, b in layer.items()} for layer in scratch])


def trace_columns(model: CharModel, vocab: Vocab, text: str, columns: Sequence[tuple[int, str, int]],
                  extra: int = 0, what: str = "trace") -> np.ndarray:
    """(len(columns), T) float32: the values of each (layer, vector, unit) of `columns` (layers from
    1) at every character of `text`, traced a chunk at a time (`trace_chunks`) and only these kept.
    `extra` bytes per character that the caller keeps beside them count in the budget."""
    config = model.config
    for layer, vector, unit in columns:
        selection.check_neuron(config, layer, vector, unit)
    layers = sorted({layer for layer, _, _ in columns})
    vectors = list(dict.fromkeys(vector for _, vector, _ in columns))
    out = np.empty((len(columns), len(text)), dtype=np.float32)
    kept = memory.Need(per_char=memory.FLOAT * len(columns) + extra)
    for piece in trace_chunks(model, vocab, text, vectors, layers, kept=kept, what=what):
        for k, (layer, vector, unit) in enumerate(columns):
            out[k, piece.start : piece.end] = piece.layers[layer - 1][vector][:, unit].numpy()
    return out


def check_trace(config, chars: int, vectors: int, layers: int, *, logits: bool = False, streams: int = 1,
                streamed: bool = False, kept: memory.Need = memory.Need(), what: str = "trace",
                chunk: int = TRACE_CHUNK) -> int:
    """Characters per chunk of a trace of `chars` characters keeping `vectors` × `layers` vectors
    (and the logits) of a model of `config` (a ModelConfig), with `kept` bytes per character more
    kept by the caller; streamed, the vectors are kept a chunk at a time only. A TraceTooLongError
    naming the most characters that fit when even one character at a time does not."""
    need = memory.trace(config, vectors, layers, logits, streams, streamed, id_dtype(config.vocab_size).itemsize) + kept

    def refusal(need: memory.Need) -> str:
        values = f" and the logits of {config.vocab_size:,} characters" if logits else ""
        return (f"{chars:,} characters is too long to {what}: {layers} layer(s) × {vectors} vector(s) × "
                f"{config.hidden_size} units{values} hold at most {need.most_chars():,} characters in the memory "
                f"budget of {memory.megabytes(memory.budget())}; give a shorter text or --length, or pick fewer "
                f"layers and vectors")

    return memory.plan(need, chars, max(1, chunk), refusal, TraceTooLongError)


def _passes(model: CharModel, ids: np.ndarray, keep_vectors: Sequence[str], keep_layers: Sequence[int], chunk: int,
            into, depth: int) -> Iterator[tuple[int, int]]:
    """Run the first `depth` layers over ids (B, T) `chunk` characters at a time, the state carried
    (all of them when the logits are wanted); for each chunk [start, end), `into(start, end)` gives
    (per layer, name → (t, B, H) tensors to write the kept vectors into; a (t, B, V) tensor for the
    logits, or None for none), and (start, end) is yielded once they are written."""
    config = model.config
    device = next(model.parameters()).device
    B, T = ids.shape
    H, L = config.hidden_size, config.num_layers
    cells = _single_layers(model)[:depth]
    gates = set(keep_vectors) - {"hidden"}
    weights = [_GateWeights(model, layer) if layer + 1 in keep_layers and gates and not config.explicit else None
               for layer in range(L)]
    zeros = torch.zeros(B, H, device=device)
    states: list[tuple[torch.Tensor, ...]] = [(zeros, zeros) if config.has_cell_state else (zeros,) for _ in range(L)]
    for start in range(0, T, chunk):
        end = min(T, start + chunk)
        keep, logits = into(start, end)
        _trace_chunk(model, cells, weights, ids_chunk(ids, start, end, device, time_major=True), states, keep, logits)
        yield start, end


def _trace_chunk(model: CharModel, cells: list[nn.Module], weights: list, ids: torch.Tensor,
                 states: list[tuple[torch.Tensor, ...]], keep: list[dict[str, torch.Tensor]],
                 logits: torch.Tensor | None) -> None:
    """Advance every layer over one chunk of ids (t, B), writing the kept vectors into `keep`
    (per layer, views (t, B, H) of the trace buffers) and the logits into `logits` (t, B, V; None:
    not computed); `states` (per layer, each (B, H)) are carried over to the next chunk."""
    x = model.embed(ids)                                                              # (t, B, E)
    for layer, cell in enumerate(cells):
        state = states[layer]
        if model.config.explicit:  # one pass of the explicit cell gives every vector
            values = cell.trace_layer(layer, x, state[0], state[1])
            for name, buffer in keep[layer].items():
                buffer.copy_(values[name])
            states[layer] = (values["hidden"][-1], values["cell"][-1])
            x = values["hidden"]
            continue
        if model.config.has_cell_state:
            h, (h_n, c_n) = cell(x, (state[0][None], state[1][None]))                 # h (t, B, H)
            states[layer] = (h_n[0], c_n[0])
        else:
            h, h_n = cell(x, state[0][None])
            states[layer] = (h_n[0],)
        if "hidden" in keep[layer]:
            keep[layer]["hidden"].copy_(h)
        if set(keep[layer]) - {"hidden"}:
            _gates_into(weights[layer], ids, x, h, state, keep[layer])
        x = h
    if logits is not None:  # every layer was run
        V, H = logits.shape[-1], x.shape[-1]
        torch.addmm(model.head.bias, x.reshape(-1, H), model.head.weight.t(), out=logits.view(-1, V))  # (t·B, V)


def _gates_into(weights: _GateWeights, ids: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                state: tuple[torch.Tensor, ...], keep: dict[str, torch.Tensor]) -> None:
    """Compute one layer's gates (and LSTM cell) over a chunk straight into the `keep` views (t, B, H),
    from the chunk's ids (t, B), the layer's inputs x (t, B, in) and outputs h (t, B, H); `state` is
    the layer's state before the chunk. The gate math is the kind's own (`cells.CELL_MATH`)."""
    t, B, H = h.shape
    ids, x, h = ids.reshape(t * B), x.reshape(t * B, -1), h.reshape(t * B, H)

    def pre(name: str) -> torch.Tensor:                   # x_t W_x + h_{t−1} W_h + b (t·B, H)
        out = keep[name].view(t * B, H) if name in keep else None
        return weights.hidden_part_(name, weights.input_part(name, x, ids, out), state[0], h)

    if weights.step_math.kind.cell_state:
        _lstm_gates(weights, pre, state[1], keep, (t, B, H))
    else:
        _gru_gates(weights, pre, ids, x, h, state[0], keep)


def _lstm_gates(weights: _GateWeights, pre, c0: torch.Tensor, keep: dict[str, torch.Tensor], shape) -> None:
    """The fused LSTM's gates σ/tanh of their preactivations, and c = f ⊙ c' + drive by `linear_scan`."""
    need = set(keep) | ({"input", "forget", "candidate"} if "cell" in keep else set())
    values = {name: (pre(name).sigmoid_() if name in GATE_VECTORS else pre(name).tanh_()).view(shape)
              for name in weights.w_x if name in need}
    if "cell" in keep:
        i, f, g = values.get("input"), values["forget"], values["candidate"]
        keep["cell"].copy_(linear_scan(f, weights.step_math.drive(i, f, g), c0))


def _gru_gates(weights: _GateWeights, pre, ids, x, h, h0, keep: dict[str, torch.Tensor]) -> None:
    """The GRU's r, z = σ(preactivations) and candidate n = tanh(x_n + r ⊙ (W_hn h' + b_hn))."""
    r = pre("reset").sigmoid_()
    if "update" in keep:
        pre("update").sigmoid_()
    if "candidate" in keep:
        n_hidden = weights.b_h["candidate"].repeat(len(h), 1)
        weights.hidden_part_("candidate", n_hidden, h0, h)                               # W_hn h_{t−1} + b_hn
        out = keep["candidate"].view(len(h), -1)
        weights.step_math.candidate(weights.input_part("candidate", x, ids, None), n_hidden, r, out=out)


def trace(model: CharModel, vocab: Vocab, text: str, vectors: Sequence[str] | None = None,
          layers: Sequence[int] | None = None, logits: bool = True) -> Trace:
    """Trace one text through every layer; see `trace_many`."""
    return trace_many(model, vocab, [text], vectors, layers, logits=logits)[0]
