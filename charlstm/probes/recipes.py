"""How the probe models of "Exploring LSTMs" are made and asked (their corpora: tasks.py; what each
task tells: reports.py). Holds

* `RECIPES` and `train_probe`: model sizes and training settings that train each probe model in
  seconds on a CPU;
* `complete`: greedy completion of many prompts as one batch, optionally with neuron edits, and
  `solves`, whether completions answer the task;
* `rank_units`: every unit of a layer ranked by |Pearson r| with a per-character feature;
* what reports.py shares with it: `prompt_contexts` (lines a prompt follows), `pending_count`, `is_char`.

Prints nothing: the example scripts and docs/findings.md render the results.

Shape legend: B batch (prompts), T time (characters), H hidden units.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from ..data.vocab import Vocab
from ..inspection.analysis import RankedUnit, feature_values, find_neurons, ranked_units
from ..inspection.correlation import correlations
from ..inspection.features import compute_feature
from ..inspection.tracing import trace_many
from ..model.network import CharModel, Edits
from ..training.events import TrainResult
from ..training.loop import train
from . import tasks

#: Where a line of a probe corpus ends; the model sees it between sequences.
NEWLINE = "\n"


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
    return "".join(line + NEWLINE for line in tasks.generate(recipe.task, recipe.lines, recipe.corpus_seed))


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with `count` intra-op threads, then restore. A 10-unit model gains nothing from a
    second thread, and on a busy machine two spinning threads make it several times slower
    (benchmarks/README.md, "Probe models on one thread")."""
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


@torch.inference_mode()
def complete(model: CharModel, vocab: Vocab, prompts: Sequence[str], max_new: int = 40, *,
             edits: Edits | None = None, stop: str = NEWLINE) -> list[str]:
    """Greedy (argmax) completions of many prompts, one batch: row b reads prompts[b] from a zero
    state, then feeds back its own most likely character until it writes `stop` (not included) or
    `max_new` characters. `edits` pins units as in `Stepper.step` (0-based (layer, unit) → value)
    on every step, the prompt included."""
    if not prompts:
        return []
    vocab.check("".join(prompts), "prompt text")
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


def prompt_contexts(task: str, count: int, seed: int) -> list[str]:
    """What precedes each test prompt: a bare line break (as after a zero state) or one earlier
    line of the task and its line break, as in the training stream."""
    lines = tasks.generate(task, max(count - 1, 0), seed)
    return [NEWLINE] + [line + NEWLINE for line in lines]


def solves(model: CharModel, vocab: Vocab, task: str, lines: Sequence[str], contexts: Sequence[str],
            edits: Edits | None = None) -> tuple[list[bool], list[str]]:
    """For each (line, context): whether the model, given context + the line's prompt, writes
    exactly the line's answer and then a line break; and what it wrote."""
    prompts, answers = [], []
    for line, context in zip(lines, contexts):
        prompt, answer = tasks.split_prompt(task, line)
        prompts.append(context + prompt)
        answers.append(answer)
    longest = max(len(a) for a in answers)
    written = complete(model, vocab, prompts, max_new=longest + 2, edits=edits)
    return [w == a for w, a in zip(written, answers)], written


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
    return ranked_units(r, layers, model.config.hidden_size)


def pending_count(text: str, up: str = "a", down: str = "b") -> np.ndarray:
    """Per character: `up`s read minus `down`s written so far in the line — how many b's a counter
    still owes. "aaXbb" → 1 2 2 1 0 (each line starts again from 0)."""
    return compute_feature(f"balance:{up}{down}", text)


def is_char(chars: str) -> Callable[[str], np.ndarray]:
    return lambda text: np.fromiter((c in chars for c in text), dtype=bool, count=len(text))
