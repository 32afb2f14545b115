"""Evaluation of models trained on the probe tasks of "Exploring LSTMs" (corpora from synthetic.py).

Two questions per task: does the model solve it, and which units do the work? Holds

* `complete`: greedy completion of many prompts as one batch, optionally with neuron edits;
* one measurement per task, returned as a frozen dataclass: counter accuracy per N and how far it
  extrapolates beyond the training range, the counting unit; the selective counter's input gate
  on X vs on a; the memorizer's A and B units and how well they separate; the copy task's
  next-character units; the flip rate of clamping or ablating a unit;
* `rank_units`: every unit of a layer ranked by |Pearson r| with a per-character feature;
* `RECIPES` and `train_probe`: model sizes and training settings that train each probe model in
  seconds on a CPU.

Prints nothing: the example scripts and docs/findings.md render the results.

Shape legend: B batch (prompts), T time (characters), H hidden units.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import synthetic
from .data import Vocab
from .features import compute_feature
from .model import CharModel, Edits, ModelConfig
from .analysis import RankedUnit, correlations, feature_values, find_neurons
from .errors import NeuronError
from .trace import trace_many
from .train import TrainConfig, TrainResult, train

#: Where a line of a probe corpus ends; the model sees it between sequences.
NEWLINE = "\n"


# --------------------------------------------------------------------------------------------
# Recipes: probe models small enough to train in seconds


@dataclass(frozen=True)
class Recipe:
    """How to train one probe model: corpus size and the model and training settings."""

    task: str
    lines: int                      # corpus lines (one sequence each)
    model: ModelConfig
    train: TrainConfig
    corpus_seed: int = 0


def _settings(steps: int, lr: float, batch_size: int = 32, seq_len: int = 64, seed: int = 1) -> TrainConfig:
    # Small batches and a high learning rate: the tasks are easy and the models tiny, so many
    # small steps beat a few large ones. No previews and one evaluation at the end: both cost
    # more than the training steps of a 10-unit model.
    # The schedule (warmup, then cosine from the start, whole windows) and the moving average are pinned, so the
    # documented figures stay reproducible when the defaults change.
    return TrainConfig(batch_size=batch_size, seq_len=seq_len, learning_rate=lr, warmup_steps=20, decay_fraction=1.0,
                       max_steps=steps, time_budget=None, eval_every=steps, eval_seconds=None, preview_chars=0,
                       log_every=50, seed=seed, ema_decay=0.995, short_windows=0.0)


_LSTM10 = ModelConfig(1, hidden_size=10, num_layers=1, embedding_size=8, forget_bias=1.0)
_LSTM20 = ModelConfig(1, hidden_size=20, num_layers=1, embedding_size=8, forget_bias=1.0)

#: The settings docs/findings.md, the tests and examples/ use. vocab_size is filled in by training.
RECIPES: Mapping[str, Recipe] = MappingProxyType({
    "counter": Recipe("counter", 3000, _LSTM10,
                      _settings(800, 3e-2)),
    "selective-counter": Recipe("selective-counter", 3000, _LSTM10,
                                _settings(1200, 3e-2)),
    "memorizer": Recipe("memorizer", 3000, _LSTM10,
                        _settings(1500, 3e-2)),
    "copy": Recipe("copy", 4000, _LSTM20,
                   _settings(1500, 2e-2)),
})


def probe_corpus(recipe: Recipe) -> str:
    """The training text of a recipe: its lines, each ended by a line break."""
    return "".join(line + NEWLINE for line in synthetic.generate(recipe.task, recipe.lines, recipe.corpus_seed))


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with `count` intra-op threads, then restore. A 10-unit model gains nothing from a
    second thread and, on a busy 2-core machine, trains ten times slower with two (measured:
    200 counter steps in 3.6 s on one thread, 35.6 s on two while other jobs ran)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_probe(task: str, out_dir: str | os.PathLike, *, seed: int | None = None, steps: int | None = None,
                on_event: Callable | None = None, device: str | None = None, threads: int | None = 1) -> TrainResult:
    """Train the probe model of `task` by its recipe into out_dir (a new run directory), on
    `threads` CPU threads, pinned for the whole run: the trainer's thread trials would otherwise
    run some steps on two threads, whose sums round differently, so the weights would depend on the
    machine's load (None: the trainer chooses by timing, as `charlstm train --threads auto`)."""
    recipe = RECIPES[task]
    config = recipe.train
    if seed is not None or steps is not None:
        steps = steps or config.max_steps
        config = replace(config, seed=config.seed if seed is None else seed, max_steps=steps, eval_every=steps,
                         eval_seconds=None)
    with torch_threads(threads) if threads else contextlib.nullcontext():
        return train(probe_corpus(recipe), out_dir, recipe.model, config, on_event=on_event, device=device,
                     threads=threads)


# --------------------------------------------------------------------------------------------
# Greedy completion


@torch.inference_mode()
def complete(model: CharModel, vocab: Vocab, prompts: Sequence[str], max_new: int = 40, *,
             edits: Edits | None = None, stop: str = NEWLINE) -> list[str]:
    """Greedy (argmax) completions of many prompts, one batch: row b reads prompts[b] from a zero
    state, then feeds back its own most likely character until it writes `stop` (not included) or
    `max_new` characters. `edits` pins units as in `Stepper.step` (0-based (layer, unit) → value)
    on every step, the prompt included."""
    if not prompts:
        return []
    unknown = vocab.unknown("".join(prompts))
    if unknown:
        raise NeuronError(f"the prompts have characters this model never saw: {', '.join(map(repr, unknown[:12]))}")
    if any(not p for p in prompts):
        raise ValueError("every prompt needs at least one character")
    device = next(model.parameters()).device
    B, T = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(B, T, dtype=torch.long, device=device)                 # (B, T) prompts, right-padded
    for b, prompt in enumerate(prompts):
        ids[b, : len(prompt)] = torch.as_tensor(vocab.encode(prompt).astype("int64"), device=device)
    lengths = torch.tensor([len(p) for p in prompts], device=device)          # (B,)
    stepper = model.stepper()
    state = stepper.init_state(B)
    out: list[list[str]] = [[] for _ in range(B)]
    done = [False] * B
    fed_back = torch.zeros(B, dtype=torch.long, device=device)
    for t in range(T + max_new - 1):
        # Each row reads its own prompt while it lasts, then its previous prediction.
        inp = torch.where(t < lengths, ids[:, min(t, T - 1)], fed_back)       # (B,)
        logits, state, _ = stepper.step(inp, state, edits=edits)
        fed_back = logits.argmax(dim=-1)                                      # (B,)
        for b, char_id in enumerate(fed_back.tolist()):
            if done[b] or t < len(prompts[b]) - 1:
                continue
            char = vocab.chars[char_id]
            if char == stop:
                done[b] = True
            else:
                out[b].append(char)
                done[b] = len(out[b]) >= max_new
        if all(done):
            break
    return ["".join(chars) for chars in out]


def _contexts(task: str, count: int, seed: int) -> list[str]:
    """What precedes each test prompt: a bare line break (as after a zero state) or one earlier
    line of the task and its line break, as in the training stream."""
    lines = synthetic.generate(task, max(count - 1, 0), seed)
    return [NEWLINE] + [line + NEWLINE for line in lines]


def _solved(model: CharModel, vocab: Vocab, task: str, lines: Sequence[str], contexts: Sequence[str],
            edits: Edits | None = None) -> tuple[list[bool], list[str]]:
    """For each (line, context): whether the model, given context + the line's prompt, writes
    exactly the line's answer and then a line break; and what it wrote."""
    prompts, answers = [], []
    for line, context in zip(lines, contexts):
        prompt, answer = synthetic.split_prompt(task, line)
        prompts.append(context + prompt)
        answers.append(answer)
    longest = max(len(a) for a in answers)
    written = complete(model, vocab, prompts, max_new=longest + 2, edits=edits)
    return [w == a for w, a in zip(written, answers)], written


# --------------------------------------------------------------------------------------------
# Ranking units by correlation with a feature (neurons.find_neurons, the engine of `inspect --find`)


def rank_units(model: CharModel, vocab: Vocab, text: str, feature: str | Callable[[str], np.ndarray],
               vector: str = "cell", layers: Sequence[int] | None = None,
               where: Callable[[str], np.ndarray] | None = None) -> list[RankedUnit]:
    """Every unit of `layers` (1-based; default: all) ranked by |Pearson r| between its `vector`
    value and a per-character feature over `text`, as `charlstm inspect --find` ranks them; with
    `where` (text → boolean mask) only over the characters where the mask holds.

    `feature` is a features.py name ("indent", "count:a", "regex:...") or a function text → (T,).
    """
    values = feature_values(feature, text) if isinstance(feature, str) else np.asarray(feature(text), dtype=np.float64)
    tr = trace_many(model, vocab, [text], vectors=[vector], layers=layers)[0]
    if where is None:
        return find_neurons(tr, values, vector, layers, top=model.config.num_layers * model.config.hidden_size,
                            shifts=0).ranked
    keep = np.asarray(where(text), dtype=bool)
    layers = list(layers) if layers else tr.traced_layers
    r = correlations(tr.units(vector, layers).numpy()[keep], values[keep])          # (L·H,)
    H = model.config.hidden_size
    return [RankedUnit(layers[k // H], int(k % H), float(r[k])) for k in np.argsort(-np.abs(r), kind="stable")]


def pending_count(text: str, up: str = "a", down: str = "b") -> np.ndarray:
    """Per character: `up`s read minus `down`s written so far in the line — how many b's a counter
    still owes. "aaXbb" → 1 2 2 1 0 (each line starts again from 0)."""
    return compute_feature(f"balance:{up}{down}", text)


def _is_char(chars: str) -> Callable[[str], np.ndarray]:
    return lambda text: np.fromiter((c in chars for c in text), dtype=bool, count=len(text))


# --------------------------------------------------------------------------------------------
# Counter and selective counter


@dataclass(frozen=True)
class CounterReport:
    """How a counter model does on a^N X b^N (or the selective counter's a/X…Y b^N)."""

    task: str
    train_range: tuple[int, int]
    accuracy: dict[int, float]      # N → fraction of prompts completed with exactly N b's then a line break
    trials: int                     # prompts per N (different preceding lines)
    unit: RankedUnit                # the unit whose cell best tracks the b's still owed
    runner_up: RankedUnit
    r_count: float                  # that unit's cell vs the number of a's read, over the a's of each line
    text_chars: int                 # characters of held-out text the correlations were measured on

    @property
    def in_range(self) -> float:
        """Mean accuracy over the training range."""
        low, high = self.train_range
        return float(np.mean([self.accuracy[n] for n in range(low, high + 1)]))

    @property
    def extrapolates_to(self) -> int:
        """The largest N such that every N' from the bottom of the range to N is always completed
        right (0 if even the smallest fails)."""
        best = 0
        for n in sorted(self.accuracy):
            if self.accuracy[n] < 1.0:
                break
            best = n
        return best

    @property
    def correct_beyond(self) -> list[int]:
        """Every N above the training range that is always completed right (may have gaps)."""
        return [n for n, a in sorted(self.accuracy.items()) if n > self.train_range[1] and a == 1.0]


def _counter_lines(task: str, n: int, count: int, seed: int) -> list[str]:
    return synthetic.generate(task, count, seed, min_n=n, max_n=n)


def counter_report(model: CharModel, vocab: Vocab, task: str = "counter", *, max_n: int = 30,
                   train_range: tuple[int, int] = (1, 10), trials: int = 20, seed: int = 1000) -> CounterReport:
    """Accuracy per N from 1 to max_n, and the counting unit.

    Each N is tried with `trials` prompts (selective counter: different X placements), each
    preceded by a different held-out line (the first by a bare line break), since the model
    reads one long stream. The counting unit is the cell that best correlates with the b's still
    owed (a's read minus b's written) over held-out lines; its correlation with the number of a's
    read is then measured over the a's alone (during the b's the a-count stays flat while a
    counter counts down, so the whole line would understate it).
    """
    if task not in ("counter", "selective-counter"):
        raise ValueError(f"counter_report measures counter or selective-counter models, not {task!r}")
    contexts = _contexts(task, trials, seed)
    lines, keys = [], []
    for n in range(1, max_n + 1):
        lines += _counter_lines(task, n, trials, seed + n)
        keys += [n] * trials
    solved, _ = _solved(model, vocab, task, lines, contexts * max_n)
    accuracy = {n: float(np.mean([s for s, k in zip(solved, keys) if k == n])) for n in range(1, max_n + 1)}

    text = "".join(line + NEWLINE for line in synthetic.generate(task, 300, seed - 1,
                                                                  min_n=train_range[0], max_n=train_range[1]))
    ranked = rank_units(model, vocab, text, pending_count, vector="cell")
    unit = ranked[0]
    a_phase = [s for s in rank_units(model, vocab, text, "count:a", vector="cell", layers=[unit.layer],
                                     where=_is_char("a")) if s.unit == unit.unit][0]
    return CounterReport(task, train_range, accuracy, trials, unit, ranked[1], a_phase.r, len(text))


@dataclass(frozen=True)
class GateReport:
    """The selective counter's counting unit and its input gate on the noise X vs on a."""

    unit: RankedUnit
    input_on_a: float         # mean input gate of the unit while reading an a (prompt part)
    input_on_x: float         # … while reading an X
    input_on_x_all: float     # mean input gate of all units on X, for comparison
    input_on_a_all: float
    write_on_a: float         # mean |i·g| (what the gate lets into the cell) on a
    write_on_x: float         # … on X
    x_below_01: float         # fraction of X's where the unit's input gate is < 0.1


def selective_gate_report(model: CharModel, vocab: Vocab, unit: RankedUnit | None = None, *,
                          seed: int = 2000, lines: int = 300) -> GateReport:
    """Mean input gate of the counting unit on X vs on a, over the prompts of held-out lines."""
    if not model.config.has_cell_state:
        raise NeuronError("input gates exist only in an LSTM (lstm, peephole or coupled cell)")
    text = "".join(line + NEWLINE for line in synthetic.generate("selective-counter", lines, seed))
    if unit is None:
        unit = rank_units(model, vocab, text, pending_count, vector="cell")[0]
    tr = trace_many(model, vocab, [text], vectors=["input", "candidate"])[0]
    gates = tr.layers[unit.layer - 1]["input"].numpy()                     # (T, H)
    write = np.abs(gates * tr.layers[unit.layer - 1]["candidate"].numpy())  # (T, H)
    chars = np.array(list(text))
    on_a, on_x = chars == "a", chars == "X"
    u = unit.unit
    return GateReport(unit, float(gates[on_a, u].mean()), float(gates[on_x, u].mean()),
                      float(gates[on_x].mean()), float(gates[on_a].mean()),
                      float(write[on_a, u].mean()), float(write[on_x, u].mean()),
                      float((gates[on_x, u] < 0.1).mean()))


# --------------------------------------------------------------------------------------------
# Memorizer


@dataclass(frozen=True)
class MemoryUnit:
    unit: int
    mean_a: float             # mean cell from A to Y inclusive, over lines that start with A
    mean_b: float             # … over lines that start with B
    at_y_a: float             # mean cell right after reading Y, on A lines (what a clamp copies)
    at_y_b: float
    d_prime: float            # |mean_a − mean_b| / pooled standard deviation, signed + when the unit is
                              # higher on its own letter's lines
    held: float               # fraction of lines on which the unit stays on its letter's side of the
                              # midpoint at every character from the letter to Y


@dataclass(frozen=True)
class MemorizerReport:
    accuracy: dict[int, float]        # gap K → fraction answered right (both letters)
    trials: int
    a_unit: MemoryUnit                # the largest d′ for "higher on A lines than on B lines"
    b_unit: MemoryUnit                # the largest d′ for "higher on B lines than on A lines"
    layer: int = 1

    @property
    def overall(self) -> float:
        return float(np.mean(list(self.accuracy.values())))


def _memory_unit(values: np.ndarray, spans: list[tuple[int, int]], letters: list[str], unit: int,
                 high_on: str) -> MemoryUnit:
    a_vals = np.concatenate([values[s:e, unit] for (s, e), l in zip(spans, letters) if l == "A"])
    b_vals = np.concatenate([values[s:e, unit] for (s, e), l in zip(spans, letters) if l == "B"])
    at_y = {k: float(np.mean([values[e - 1, unit] for (s, e), l in zip(spans, letters) if l == k])) for k in "AB"}
    pooled = np.sqrt((a_vals.var() + b_vals.var()) / 2) or 1e-12
    mid = (a_vals.mean() + b_vals.mean()) / 2
    sign = 1.0 if high_on == "A" else -1.0
    held = []
    for (s, e), letter in zip(spans, letters):
        span = values[s:e, unit]
        above = (span > mid) if a_vals.mean() >= b_vals.mean() else (span < mid)
        held.append(bool(above.all()) if letter == "A" else bool((~above).all()))
    return MemoryUnit(unit, float(a_vals.mean()), float(b_vals.mean()), at_y["A"], at_y["B"],
                      float(sign * (a_vals.mean() - b_vals.mean()) / pooled), float(np.mean(held)))


def memorizer_report(model: CharModel, vocab: Vocab, *, max_gap: int = 10, trials: int = 20,
                     seed: int = 3000, layer: int = 1) -> MemorizerReport:
    """Accuracy per gap length, and the units that remember A and B from the letter to Y."""
    contexts = _contexts("memorizer", trials, seed)
    lines, keys = [], []
    for gap in range(1, max_gap + 1):
        for letter in "AB":
            lines += [letter + "x" * gap + "Y" + letter.lower()] * trials
            keys += [gap] * trials
    solved, _ = _solved(model, vocab, "memorizer", lines, contexts * (2 * max_gap))
    accuracy = {g: float(np.mean([s for s, k in zip(solved, keys) if k == g])) for g in range(1, max_gap + 1)}

    held_out = synthetic.generate("memorizer", 400, seed + 1, max_gap=max_gap)
    text = "".join(line + NEWLINE for line in held_out)
    values = trace_many(model, vocab, [text], vectors=["cell" if model.config.has_cell_state else "hidden"])[0]
    values = next(iter(values.layers[layer - 1].values())).numpy()          # (T, H)
    spans, letters, start = [], [], 0
    for line in held_out:
        spans.append((start, start + line.index("Y") + 1))                  # the letter … Y
        letters.append(line[0])
        start += len(line) + 1
    a_mask = np.concatenate([np.full(e - s, l == "A") for (s, e), l in zip(spans, letters)])
    in_span = np.concatenate([values[s:e] for s, e in spans])                # (S, H)
    on_a, on_b = in_span[a_mask], in_span[~a_mask]
    # Standardised, not raw, differences: some cells drift to ±30 and a difference of 1 there
    # means nothing, while a unit moving between −2.6 and +0.9 may carry the whole memory.
    pooled = np.sqrt((on_a.var(axis=0) + on_b.var(axis=0)) / 2) + 1e-12     # (H,)
    d_prime = (on_a.mean(axis=0) - on_b.mean(axis=0)) / pooled              # (H,)
    a_unit = _memory_unit(values, spans, letters, int(d_prime.argmax()), "A")
    b_unit = _memory_unit(values, spans, letters, int(d_prime.argmin()), "B")
    return MemorizerReport(accuracy, trials, a_unit, b_unit, layer)


# --------------------------------------------------------------------------------------------
# Copy


@dataclass(frozen=True)
class CopyUnit:
    unit: int
    eta_next: float           # share of the unit's variance explained by the next character
    eta_slot: float           # the most explained by any one stored slot s[0], s[1] or s[2]
    slot: int                 # which slot that is
    prefers: str              # the next character for which the unit's mean value is most extreme


@dataclass(frozen=True)
class CopyReport:
    accuracy: float           # all 27 sequences (× contexts) copied exactly
    per_sequence: dict[str, float]
    units: list[CopyUnit]     # every unit, most next-character-like first
    vector: str
    positions: int            # copy-phase characters measured
    trials: int               # preceding lines each sequence was tried after

    @property
    def next_char_units(self) -> list[CopyUnit]:
        """Units explained better by the next character than by any stored slot."""
        return [u for u in self.units if u.eta_next > u.eta_slot]


def _eta_squared(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Correlation ratio η² of every column of values (P, H) with a categorical groups (P,): the
    share of variance explained by the group means (1 = the group fixes the value)."""
    total = ((values - values.mean(axis=0)) ** 2).sum(axis=0)                # (H,)
    between = np.zeros(values.shape[1])
    for g in np.unique(groups):
        rows = values[groups == g]
        between += len(rows) * (rows.mean(axis=0) - values.mean(axis=0)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(between / total)


def copy_report(model: CharModel, vocab: Vocab, *, alphabet: str = "abc", length: int = 3, trials: int = 10,
                seed: int = 4000, vector: str = "hidden", layer: int = 1) -> CopyReport:
    """Accuracy on every sequence, and for each unit whether, during the copy, its value is
    better explained by the character it is about to write or by a fixed stored slot.

    A unit that stores position j keeps encoding s[j] while the copy goes on; a unit that predicts
    the next character switches from s[0] to s[1] to s[2] as the copy moves along. Measured over
    the copy phase: the states after reading X, s[0], …, s[length−2] (the next character is then
    s[0], s[1], …, s[length−1]).
    """
    import itertools

    sequences = ["".join(p) for p in itertools.product(alphabet, repeat=length)]
    contexts = _contexts("copy", trials, seed)
    lines = [s + "X" + s for s in sequences for _ in range(trials)]
    solved, _ = _solved(model, vocab, "copy", lines, contexts * len(sequences))
    per_sequence = {s: float(np.mean(solved[i * trials:(i + 1) * trials])) for i, s in enumerate(sequences)}

    held_out = synthetic.generate("copy", 600, seed + 1, length=length, alphabet=alphabet)
    text = "".join(line + NEWLINE for line in held_out)
    values = trace_many(model, vocab, [text], vectors=[vector])[0].layers[layer - 1][vector].numpy()  # (T, H)
    rows, next_chars, slots = [], [], []
    start = 0
    for line in held_out:
        x = start + length                                                   # index of X
        for k in range(length):                                              # after X, s[0], …
            rows.append(x + k)
            next_chars.append(line[k])
            slots.append(list(line[:length]))
        start += len(line) + 1
    picked = values[rows]                                                    # (P, H)
    next_chars = np.array(next_chars)
    slots = np.array(slots)                                                  # (P, length)
    eta_next = _eta_squared(picked, next_chars)
    eta_slots = np.stack([_eta_squared(picked, slots[:, j]) for j in range(length)])  # (length, H)
    units = []
    for u in range(picked.shape[1]):
        means = {c: picked[next_chars == c, u].mean() for c in alphabet}
        overall = picked[:, u].mean()
        prefers = max(means, key=lambda c: abs(means[c] - overall))
        units.append(CopyUnit(u, float(eta_next[u]), float(eta_slots[:, u].max()), int(eta_slots[:, u].argmax()), prefers))
    units.sort(key=lambda cu: -(cu.eta_next - cu.eta_slot))
    return CopyReport(float(np.mean(solved)), per_sequence, units, vector, len(rows), trials)


@dataclass(frozen=True)
class CopyAblation:
    unit: int
    prefers: str
    error_on_preferred: float   # next-character error rate, unit ablated, where the next character is `prefers`
    error_elsewhere: float      # … where it is another character
    baseline_error: float       # error rate with no edit (all positions)


def copy_ablation(model: CharModel, vocab: Vocab, units: Sequence[CopyUnit], *, alphabet: str = "abc",
                  length: int = 3, trials: int = 5, seed: int = 4500, layer: int = 1) -> list[CopyAblation]:
    """Ablate each unit (cell 0 for an LSTM, hidden 0 otherwise) and measure, teacher-forced, how
    often the model then mispredicts the next copied character: where that character is the one
    the unit prefers vs elsewhere. A next-character unit hurts its own character most."""
    import itertools

    contexts = _contexts("copy", trials, seed)
    prompts, truth = [], []
    for s in ("".join(p) for p in itertools.product(alphabet, repeat=length)):
        for context in contexts:
            for k in range(length):                        # the copy so far is given (teacher forcing)
                prompts.append(context + s + "X" + s[:k])
                truth.append(s[k])
    truth_arr = np.array(truth)

    def errors(edits):
        out = complete(model, vocab, prompts, max_new=1, edits=edits)
        return np.array([o != t for o, t in zip(out, truth)])

    baseline = float(errors(None).mean())
    results = []
    for cu in units:
        wrong = errors({(layer - 1, cu.unit): 0.0})
        on = truth_arr == cu.prefers
        results.append(CopyAblation(cu.unit, cu.prefers, float(wrong[on].mean()), float(wrong[~on].mean()), baseline))
    return results


# --------------------------------------------------------------------------------------------
# Editing units: clamp and ablate


@dataclass(frozen=True)
class EditEffect:
    edits: dict[tuple[int, int], float]    # 0-based (layer, unit) → value, as Stepper takes them
    prompts: int
    changed: float            # fraction of completions that differ from the unedited model's
    target: float             # fraction that became the target answer (when one is given)
    before: list[str] = field(repr=False, default_factory=list)
    after: list[str] = field(repr=False, default_factory=list)


def edit_effect(model: CharModel, vocab: Vocab, prompts: Sequence[str], edits: Edits, *, max_new: int = 40,
                target: str | Sequence[str] | None = None) -> EditEffect:
    """Greedy completions of `prompts` with and without `edits`: how often the output changes,
    and how often it becomes `target` (one answer for all prompts, or one per prompt)."""
    before = complete(model, vocab, prompts, max_new)
    after = complete(model, vocab, prompts, max_new, edits=edits)
    changed = float(np.mean([a != b for a, b in zip(after, before)]))
    hit = float("nan")
    if target is not None:
        targets = [target] * len(prompts) if isinstance(target, str) else list(target)
        hit = float(np.mean([a == t for a, t in zip(after, targets)]))
    return EditEffect(dict(edits), len(prompts), changed, hit, before, after)


def memorizer_prompts(letter: str, max_gap: int = 10, trials: int = 5, seed: int = 5000) -> list[str]:
    """Prompts "…\\n" + letter + x^K + "Y" for every gap K, each after several preceding lines."""
    contexts = _contexts("memorizer", trials, seed)
    return [c + letter + "x" * gap + "Y" for gap in range(1, max_gap + 1) for c in contexts]


@dataclass(frozen=True)
class MemoryEdit:
    unit: int
    role: str                 # "A-unit" or "B-unit"
    value: float              # what the unit is pinned at (0 for an ablation)
    reading: str              # the letter of the lines the model reads: "A" or "B"
    effect: EditEffect        # target: the other letter's answer (clamps) or None (ablations)


def memorizer_edits(model: CharModel, vocab: Vocab, report: MemorizerReport, *, max_gap: int = 10,
                    trials: int = 5) -> list[MemoryEdit]:
    """The edits of docs/findings.md. Each memory unit is pinned, on every step of a prompt, at
    its mean value at Y on lines of one letter while the model reads lines of the other: if the
    unit holds the memory, the answer flips to the pinned letter. Then each unit is ablated (0)."""
    layer = report.layer - 1
    prompts = {letter: memorizer_prompts(letter, max_gap, trials) for letter in "AB"}
    out = []
    for role, mu in (("A-unit", report.a_unit), ("B-unit", report.b_unit)):
        for pinned_as, reading in (("A", "B"), ("B", "A")):
            value = mu.at_y_a if pinned_as == "A" else mu.at_y_b
            effect = edit_effect(model, vocab, prompts[reading], {(layer, mu.unit): value}, target=pinned_as.lower())
            out.append(MemoryEdit(mu.unit, role, value, reading, effect))
        for reading in "AB":
            out.append(MemoryEdit(mu.unit, role, 0.0, reading,
                                  edit_effect(model, vocab, prompts[reading], {(layer, mu.unit): 0.0})))
    return out


def counter_ablation(model: CharModel, vocab: Vocab, unit: RankedUnit, task: str = "counter", *,
                     ns: Sequence[int] = range(1, 11), trials: int = 5, seed: int = 6000) -> EditEffect:
    """Ablate the counting unit (cell = 0) and see how many prompts still get exactly N b's."""
    contexts = _contexts(task, trials, seed)
    prompts, targets = [], []
    for n in ns:
        for context, line in zip(contexts, _counter_lines(task, n, trials, seed + n)):
            prompt, answer = synthetic.split_prompt(task, line)
            prompts.append(context + prompt)
            targets.append(answer)
    return edit_effect(model, vocab, prompts, {(unit.layer - 1, unit.unit): 0.0}, max_new=max(ns) + 10, target=targets)
