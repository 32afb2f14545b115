"""What each unit does to the model's predictions: the bits per character lost when it is held at its
mean (`ablation_bpc`), and the characters it pushes the prediction towards and away from.

* Ablation: every unit of the atlas is held at its mean over the analysed text in a row of its own, the
  rows of one layer stepped side by side (one batched pass per stretch of text and layer,
  `network.Stepper`'s layers and cell math, a unit pinned per row, the layers below stepped once),
  against an unpinned row on the same characters. A unit of `cell` (an
  LSTM's cell state) or of a GRU's or RNN's `hidden` is pinned where `--ablate` pins it (the cell
  math's edit); an LSTM's `hidden` unit is pinned after the step, so the next layer and the next step
  read the mean. Gates and candidates are not pinned (their effect is None).
* The cost is bounded by config.ATLAS_ABLATION_STEPS, unit-characters in all: a few units are ablated
  over the whole text, many over evenly spaced stretches of it (each read from a warm state: the
  WARMUP characters before it, unpinned); the units a reader sees first (`leading`) again over
  LEADING_CHARS characters, within LEADING_STEPS more. `Effects.per_unit` says over how many.
* promotes / suppresses: for a hidden unit of the last layer, the characters whose logits its weight
  in the output layer raises and lowers most; for any other unit, the characters whose probability its
  ablation lowers and raises most (on average over the measured characters).

Takes a model, its vocabulary, the text and the units with their means; renders nothing.

Shape legend: B rows (one per unit, and the unpinned one), H hidden, V vocab, N units, W window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .. import memory
from ..config import ATLAS_ABLATION_STEPS

#: Characters read unpinned before each measured stretch, so that it starts from a warm state.
WARMUP = 64
#: The fewest characters each unit is ablated over (fewer when the text is shorter).
MIN_ABLATION_CHARS = 96
#: The units a reader sees first are ablated over this many characters at least ...
LEADING_CHARS = 2048
#: ... within this many unit-characters more.
LEADING_STEPS = 32_768
#: Characters in one measured stretch at most (a long stretch is cut in several, spread over the text).
STRETCH = 128
#: Characters listed as promoted and as suppressed per unit (at most half the vocabulary each).
EFFECT_CHARS = 3
#: The least average change of a character's probability that names it as promoted or suppressed.
MIN_SHIFT = 1e-4
#: Rows stepped side by side at most.
ROWS = 512
#: The vectors a unit can be pinned in.
PINNED = ("hidden", "cell")


@dataclass
class Effects:
    """Per unit (in the order asked): bits per character lost when held at its mean (NaN where it
    cannot be pinned), and the characters it promotes and suppresses."""

    ablation_bpc: np.ndarray            # (N,)
    promotes: list[str]
    suppresses: list[str]
    characters: int                     # characters each unit was ablated over (the leading ones: `per_unit`)
    stretches: int
    per_unit: np.ndarray | None = None  # (N,) characters each unit was ablated over


def ablation_need(config, units: int) -> memory.Need:
    """What measuring `units` units holds beside the model: the text's ids (as the vocabulary encodes
    them, and as int64), the per-unit change of every character's probability (float64, twice while
    the leading units are measured again) and one batch of rows' states, logits and working vectors."""
    V, H, L = config.vocab_size, config.hidden_size, config.num_layers
    rows = min(units + 1, ROWS)
    return memory.Need(fixed=2 * units * V * 8 + rows * (2 * L * H + 8 * H + 4 * V) * memory.FLOAT,
                       per_char=memory.INDEX + memory.ID)


def unit_effects(model, vocab, text: str, keys: Sequence[tuple[int, str, int]], means: Sequence[float],
                 steps: int = ATLAS_ABLATION_STEPS, leading: Sequence[int] = ()) -> Effects:
    """The effects of every unit of `keys` ((layer, vector, unit), layers from 1), each held at its mean;
    the units `leading` names (indices into keys: those a reader sees first) over LEADING_CHARS
    characters at least, within LEADING_STEPS unit-characters more."""
    ids = torch.as_tensor(np.asarray(vocab.encode(text), dtype=np.int64))
    pinnable = [k for k, (_, vector, _) in enumerate(keys) if _can_pin(model.config, vector)]
    lost, shift = np.zeros(len(keys)), np.zeros((len(keys), model.config.vocab_size))
    stretches = _stretches(len(text), len(keys), steps)
    counted = _measure(model, ids, keys, means, pinnable, stretches, lost, shift)
    lost /= max(counted, 1)
    characters = np.full(len(keys), counted)
    first = [k for k in leading if k in set(pinnable)][: max(1, LEADING_STEPS // LEADING_CHARS - 1)]
    wider = _stretches(len(text), len(first), LEADING_STEPS)
    if first and sum(end - start for start, end in wider) > counted:
        more, more_shift = np.zeros(len(keys)), np.zeros_like(shift)
        wide = _measure(model, ids, keys, means, first, wider, more, more_shift)
        lost[first], shift[first], characters[first] = more[first] / wide, more_shift[first], wide
    lost = np.where(np.isin(np.arange(len(keys)), pinnable), lost, np.nan)
    promotes, suppresses = _characters(model, vocab, keys, -shift / np.maximum(characters, 1)[:, None])
    return Effects(lost, promotes, suppresses, counted, len(stretches), characters)


def _measure(model, ids, keys, means, units: list[int], stretches, lost: np.ndarray, shift: np.ndarray) -> int:
    """Add to lost (N,) and shift (N, V), for each of `units` (indices into keys), the bits lost and the
    probabilities raised summed over `stretches`; the characters measured."""
    stepper = model.stepper()
    # Rows of one layer at a time: the layers below it are the same in every row, so they are stepped once.
    chunks = [[k for k in units if keys[k][0] == layer][first : first + ROWS - 1]
              for layer in sorted({keys[k][0] for k in units})
              for first in range(0, sum(keys[k][0] == layer for k in units), ROWS - 1)]
    for start, end in stretches:
        for chunk in chunks:
            bits, raised = _run(stepper, ids, start, end, [keys[k] for k in chunk], [means[k] for k in chunk])
            lost[chunk] += bits
            shift[chunk] += raised
    return sum(end - start for start, end in stretches)


def _can_pin(config, vector: str) -> bool:
    return vector == "hidden" or (vector == "cell" and config.has_cell_state)


def _stretches(T: int, units: int, steps: int) -> list[tuple[int, int]]:
    """[start, end) of the measured stretches: the whole text when every unit fits the budget over
    it, else evenly spaced stretches of at most STRETCH characters, MIN_ABLATION_CHARS at least."""
    each = min(T - 1, max(MIN_ABLATION_CHARS, steps // max(units + 1, 1)))
    if each <= 0:
        return []
    if each >= T - 1:
        return [(0, T - 1)]
    count = math.ceil(each / STRETCH)
    size = each // count
    gap = (T - 1 - size) / max(count - 1, 1)
    return [(int(round(k * gap)), int(round(k * gap)) + size) for k in range(count)]


@torch.inference_mode()
def _run(stepper, ids: torch.Tensor, start: int, end: int, keys, means) -> tuple[np.ndarray, np.ndarray]:
    """Summed over text[start + 1 : end + 1], per pinned row (the unit keys[b] held at means[b], all of
    one layer, after WARMUP unpinned characters): the bits (b,) it loses against the unpinned row, and
    how much (b, V) it raises each character's probability. The layers below the pinned one are
    stepped for one row."""
    B, below = len(keys) + 1, keys[0][0] - 1
    state = stepper.init_state(1)
    hs, cs = list(state[0].unbind(0)), list(state[1].unbind(0)) if len(state) > 1 else None
    for t in range(max(0, start - WARMUP), start):
        stepper.advance(ids[t : t + 1], hs, cs)
    widen = lambda states: [v if k < below else v.expand(B, -1).clone() for k, v in enumerate(states)]  # noqa: E731
    hs, cs = widen(hs), widen(cs) if cs is not None else None
    pins = _Pins(keys, means, stepper.config.has_cell_state)
    bits = torch.zeros(B - 1, dtype=torch.float64)
    shift = torch.zeros(B - 1, stepper.head_b.shape[0], dtype=torch.float64)
    for t in range(start, end):
        logp = torch.log_softmax(_advance(stepper, ids[t : t + 1], hs, cs, pins, below, B), dim=-1).to(torch.float64)
        bits += logp[0, ids[t + 1]] - logp[1:, ids[t + 1]]
        p = logp.exp()
        shift += p[1:] - p[0]
    return (bits / math.log(2)).numpy(), shift.numpy()


class _Pins:
    """Which row holds which unit of which layer at which value."""

    def __init__(self, keys, means, has_cell: bool):
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.hidden: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        groups: dict[tuple[str, int], list] = {}
        for row, ((layer, vector, unit), mean) in enumerate(zip(keys, means), 1):
            where = "hidden" if vector == "hidden" and has_cell else "state"
            groups.setdefault((where, layer - 1), []).append((row, unit, mean))
        for (where, layer), items in groups.items():
            rows, units, values = zip(*items)
            (self.hidden if where == "hidden" else self.state)[layer] = (
                torch.tensor(rows), torch.tensor(units), torch.tensor(values, dtype=torch.float32))

    def edit(self, layer: int):
        pin = self.state.get(layer)
        return None if pin is None else (lambda v: _pin(v, pin))

    def after(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        pin = self.hidden.get(layer)
        return h if pin is None else _pin(h, pin)


def _pin(values: torch.Tensor, pin) -> torch.Tensor:
    rows, units, means = pin
    values = values.clone()
    values[rows, units] = means
    return values


def _advance(stepper, ids: torch.Tensor, hs: list, cs: list | None, pins: _Pins, below: int, B: int) -> torch.Tensor:
    """One step, as network.Stepper.advance: the layers under `below` for one row, the rest for B rows
    with the rows' units pinned."""
    x = ids
    for layer, layer_input in enumerate(stepper.inputs):
        if layer == below:
            x = x.expand(B, *x.shape[1:])
        h, c, _ = stepper.step_math.layer_step(layer_input(x, hs[layer]), hs[layer],
                                               cs[layer] if cs is not None else None, stepper.peepholes[layer],
                                               pins.edit(layer), False)
        hs[layer] = x = pins.after(layer, h)
        if cs is not None:
            cs[layer] = c
    return torch.addmm(stepper.head_b, x, stepper.head_w)


def _characters(model, vocab, keys, drop: np.ndarray) -> tuple[list[str], list[str]]:
    """Per unit, the EFFECT_CHARS characters it promotes and suppresses most, as one string each:
    from the output layer's weights for a last-layer hidden unit, else from `drop` (N, V), how much
    ablating it lowers each character's probability on average (none listed where no character's moves
    by MIN_SHIFT)."""
    head = model.head.weight.detach().to(torch.float64).numpy()                       # (V, H)
    last = model.config.num_layers
    promotes, suppresses = [], []
    for k, (layer, vector, unit) in enumerate(keys):
        from_head = layer == last and vector == "hidden"
        score = head[:, unit] if from_head else drop[k]
        if not np.any(score) or (not from_head and np.abs(score).max() < MIN_SHIFT):
            promotes.append("")
            suppresses.append("")
            continue
        order = np.argsort(-score, kind="stable")
        k = min(EFFECT_CHARS, len(order) // 2)                   # never one character on both lists
        promotes.append("".join(vocab.chars[i] for i in order[:k]))
        suppresses.append("".join(vocab.chars[i] for i in order[::-1][:k]))
    return promotes, suppresses
