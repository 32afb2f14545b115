"""What each probe task tells: one measurement per task, returned as a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..data.vocab import Vocab
from ..errors import NeuronError
from ..inspection.analysis import RankedUnit
from ..inspection.saturation import SATURATION_LOW
from ..inspection.tracing import trace_many
from ..model.network import CharModel, Edits
from . import tasks
from .recipes import NEWLINE, complete, is_char, pending_count, prompt_contexts, rank_units, solves


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
    return tasks.generate(task, count, seed, min_n=n, max_n=n)


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
    contexts = prompt_contexts(task, trials, seed)
    lines, keys = [], []
    for n in range(1, max_n + 1):
        lines += _counter_lines(task, n, trials, seed + n)
        keys += [n] * trials
    solved, _ = solves(model, vocab, task, lines, contexts * max_n)
    accuracy = {n: float(np.mean([s for s, k in zip(solved, keys) if k == n])) for n in range(1, max_n + 1)}

    text = "".join(line + NEWLINE for line in tasks.generate(task, 300, seed - 1,
                                                                  min_n=train_range[0], max_n=train_range[1]))
    ranked = rank_units(model, vocab, text, pending_count, vector="cell")
    unit = ranked[0]
    a_phase = [s for s in rank_units(model, vocab, text, "count:a", vector="cell", layers=[unit.layer],
                                     where=is_char("a")) if s.unit == unit.unit][0]
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
    x_below_01: float         # fraction of X's where the unit's input gate is nearly shut (< SATURATION_LOW)


def selective_gate_report(model: CharModel, vocab: Vocab, unit: RankedUnit | None = None, *,
                          seed: int = 2000, lines: int = 300) -> GateReport:
    """Mean input gate of the counting unit on X vs on a, over the prompts of held-out lines."""
    if not model.config.has_cell_state:
        raise NeuronError("input gates exist only in an LSTM (lstm, peephole or coupled cell)")
    text = "".join(line + NEWLINE for line in tasks.generate("selective-counter", lines, seed))
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
                      float((gates[on_x, u] < SATURATION_LOW).mean()))


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
    contexts = prompt_contexts("memorizer", trials, seed)
    lines, keys = [], []
    for gap in range(1, max_gap + 1):
        for letter in "AB":
            lines += [letter + "x" * gap + "Y" + letter.lower()] * trials
            keys += [gap] * trials
    solved, _ = solves(model, vocab, "memorizer", lines, contexts * (2 * max_gap))
    accuracy = {g: float(np.mean([s for s, k in zip(solved, keys) if k == g])) for g in range(1, max_gap + 1)}

    held_out = tasks.generate("memorizer", 400, seed + 1, max_gap=max_gap)
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
    contexts = prompt_contexts("copy", trials, seed)
    lines = [s + "X" + s for s in sequences for _ in range(trials)]
    solved, _ = solves(model, vocab, "copy", lines, contexts * len(sequences))
    per_sequence = {s: float(np.mean(solved[i * trials:(i + 1) * trials])) for i, s in enumerate(sequences)}

    held_out = tasks.generate("copy", 600, seed + 1, length=length, alphabet=alphabet)
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

    contexts = prompt_contexts("copy", trials, seed)
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
    contexts = prompt_contexts("memorizer", trials, seed)
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
    contexts = prompt_contexts(task, trials, seed)
    prompts, targets = [], []
    for n in ns:
        for context, line in zip(contexts, _counter_lines(task, n, trials, seed + n)):
            prompt, answer = tasks.split_prompt(task, line)
            prompts.append(context + prompt)
            targets.append(answer)
    return edit_effect(model, vocab, prompts, {(unit.layer - 1, unit.unit): 0.0}, max_new=max(ns) + 10, target=targets)
