"""Starting from a model that already reads (`train --init-from`): how the new characters' rows start,
and which recipe fine-tunes best.

    OMP_NUM_THREADS=1 python benchmarks/init_rows.py [--base-steps 450] [--steps 225]
        [--targets fortunes code] [--only rows recipes scratch] [--rows EMBEDDING/OUTPUT ...]
        [--recipes WORD ...] [--scratch-lr LR ...] [--base MODEL]

One process, one thread. A base model (2×128 LSTM, embedding 32, batch 32 × 100 characters) is
trained on corpora/shakespeare.txt for --base-steps steps (about a minute on an idle core); then
each candidate fine-tunes it on each target for --steps steps (about 30 s) and is scored on the
target's held-out tail (its last 5 %, which no run trains on) in bits per character: the
validation figure of the run's last evaluation, the weights or their average, whichever is better,
as `charlstm train` reports it. Budgets are in steps, so the runs are paired: the same base, the same
batches, the same seed, the same number of updates whatever else the machine does; only the
candidate differs, and a rerun prints the same figures to the last digit.

Targets: corpora/fortunes.txt (one-line messages: 34 characters Shakespeare lacks — digits, quotes,
brackets — 1.7 % of the text) and corpora/python-sample.py.txt (Python: 94 new characters, 8 %).

Table 1, the rows of the new characters (under config.FINE_TUNING's recipe), EMBEDDING/OUTPUT: the
embedding row (model/growth.py: spread, mean, zero, fresh) and the output row (frequency, mean,
fresh); "step 0" is the grown model before any update. Table 2, the recipe (with finetune.Base's
default rows): training from scratch's recipe, config.FINE_TUNING, then one change at a time from
it ("average held from the base": an average that starts at the base's weights with its full
decay). Table 3: a fresh model of the same size trained on each target for the same steps, at
each --scratch-lr, for scale. --base starts from a model you have (`english`, a run folder) instead
of the Shakespeare one trained here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

TARGETS = {"fortunes": "fortunes.txt", "code": "python-sample.py.txt"}
MODEL = {"hidden_size": 128, "embedding_size": 32, "num_layers": 2}
SHAPE = {"batch_size": 32, "seq_len": 100, "preview_chars": 0, "eval_seconds": None, "log_every": 50}

ROWS = [("fresh", "fresh"), ("fresh", "frequency"), ("spread", "fresh"), ("spread", "mean"), ("spread", "frequency"),
        ("zero", "mean"), ("mean", "mean"), ("zero", "frequency"), ("mean", "frequency")]


def recipes(steps: int) -> list[tuple[str, dict]]:
    """(label, TrainConfig fields, with "hold" for an average that starts at the base's weights)."""
    from charlstm.config import FINE_TUNING, TrainConfig

    scratch = {name: getattr(TrainConfig, name) for name in FINE_TUNING}
    return [
        ("training from scratch's recipe", scratch),
        ("config.FINE_TUNING", {}),
        ("… lr 2e-2", {"learning_rate": 2e-2}),
        ("… lr 1e-2", {"learning_rate": 1e-2}),
        ("… lr 5e-3", {"learning_rate": 5e-3}),
        ("… lr 2e-3", {"learning_rate": 2e-3}),
        ("… lr 1e-3", {"learning_rate": 1e-3}),
        (f"… warm-up {steps // 10} steps", {"warmup_steps": steps // 10}),
        ("… short windows 1/3", {"short_windows": 1 / 3}),
        ("… short windows 0", {"short_windows": 0.0}),
        ("… decay over the last half", {"decay_fraction": 0.5}),
        ("… decay over all", {"decay_fraction": 1.0}),
        ("… no average", {"ema_decay": 0.0}),
        ("… average held from the base", {"hold": True}),
        ("… dropout 0.1", {"dropout": 0.1}),
    ]


def held_average():
    """Make every new weight average start at the model's weights with its full decay (not warmed
    up), so it holds the base's weights in its memory; returns the undo."""
    from charlstm.model.average import WeightAverage
    from charlstm.training import validation

    original = validation.WeightAverage
    validation.WeightAverage = lambda model, decay: WeightAverage(model, decay, updates=1_000_000)
    return lambda: setattr(validation, "WeightAverage", original)


def step_zero(base, text: str, config) -> float:
    """Validation bits/char of the grown model before any update."""
    import torch

    from charlstm.data.corpus import Corpus
    from charlstm.data.streams import split
    from charlstm.model.network import CharModel
    from charlstm.training.validation import evaluate

    corpus = Corpus.from_text(text, config.min_char_count, base.vocab)
    train_ids, val_ids = split(corpus.ids, config.val_fraction)
    torch.manual_seed(config.seed)
    model = CharModel(base.model_config(len(corpus.vocab)))
    model.load_state_dict(base.weights(model, train_ids))
    return evaluate(model, val_ids, config.seq_len, torch.device("cpu"), config.eval_chars)


def fine_tune(base, text: str, out: Path, config, dropout: float | None = None, hold: bool = False) -> float:
    """The last validation bits/char of `base` fine-tuned on `text` under `config`."""
    from charlstm.training.loop import train

    undo = held_average() if hold else None
    try:
        model = None if dropout is None else replace(base.config, dropout=dropout)
        result = train(text, out, model, config, threads=1, init_from=base)
    finally:
        if undo:
            undo()
    shutil.rmtree(out)
    return result.last_val_bpc


def rows_table(base, texts: dict, fine, pairs: list[str], work: Path) -> None:
    print("\n| embedding row | output row | " + " | ".join(f"{n}: step 0 | {n}: end" for n in texts) + " |")
    print("|---|---|" + "---|---|" * len(texts))
    for embedding, head in (pair.split("/") for pair in pairs):
        variant = replace(base, new_embedding_rows=embedding, new_head_rows=head)
        cells = []
        for text in texts.values():
            cells += [f"{step_zero(variant, text, fine):.4f}", f"{fine_tune(variant, text, work / 'ft', fine):.4f}"]
        print(f"| {embedding} | {head} | " + " | ".join(cells) + " |", flush=True)


def recipes_table(base, texts: dict, fine, steps: int, words: list[str] | None, work: Path) -> None:
    print("\n| recipe | " + " | ".join(texts) + " |")
    print("|---|" + "---|" * len(texts))
    seen = []
    for label, change in recipes(steps):
        hold, dropout = change.pop("hold", False), change.pop("dropout", None)
        config = replace(fine, **change)
        if (config, hold, dropout) in seen:  # the same run as a row above (a change to what is already so)
            continue
        if words and label != "config.FINE_TUNING" and not any(word in label for word in words):
            continue
        seen.append((config, hold, dropout))
        cells = [f"{fine_tune(base, text, work / 'ft', config, dropout, hold):.4f}" for text in texts.values()]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def scratch_table(texts: dict, steps: int, rates: list[float], work: Path, model: dict) -> None:
    """A fresh model of the base's size (`model`: ModelConfig fields) trained on each target for the
    same steps, at each rate."""
    from charlstm.config import ModelConfig, TrainConfig
    from charlstm.training.loop import train

    print("\n| from scratch (no base), its own recipe | " + " | ".join(texts) + " |")
    print("|---|" + "---|" * len(texts))
    for rate in rates:
        config = replace(TrainConfig(), max_steps=steps, time_budget=None, eval_every=steps, learning_rate=rate,
                         **SHAPE)
        cells = []
        for text in texts.values():
            result = train(text, work / "scratch", ModelConfig(**{**model, "vocab_size": 1}), config, threads=1)
            cells.append(f"{result.last_val_bpc:.4f}")
            shutil.rmtree(work / "scratch")
        print(f"| at lr {rate:g} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    from charlstm.config import FINE_TUNING, ModelConfig, TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-steps", type=int, default=450)
    parser.add_argument("--steps", type=int, default=225)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    tables = ["rows", "recipes", "scratch"]
    parser.add_argument("--only", nargs="+", default=tables, choices=tables)
    parser.add_argument("--recipes", nargs="+", default=None, metavar="WORD",
                        help="only the recipe candidates whose label holds one of these words (and the reference)")
    parser.add_argument("--rows", nargs="+", default=[f"{e}/{h}" for e, h in ROWS], metavar="EMBEDDING/OUTPUT",
                        help="the row candidates of table 1, e.g. spread/frequency fresh/fresh")
    parser.add_argument("--scratch-lr", nargs="+", type=float, metavar="LR",
                        default=list(dict.fromkeys([TrainConfig.learning_rate, FINE_TUNING.get("learning_rate",
                                                                                              TrainConfig.learning_rate)])))
    parser.add_argument("--base", default=None, metavar="MODEL",
                        help="start from this model (a run folder, a checkpoint, a shipped model's name) rather than "
                             "training one on Shakespeare")
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        sys.exit("run with OMP_NUM_THREADS=1 (one thread: the figures are then the same on any load)")

    from charlstm.training.finetune import load_base
    from charlstm.training.loop import train

    print(f"# {machine()}")
    work = Path(tempfile.mkdtemp(prefix="init-rows-"))
    started = time.perf_counter()
    texts = {name: (ROOT / "corpora" / TARGETS[name]).read_text(encoding="utf-8") for name in args.targets}
    fine = replace(TrainConfig(), **FINE_TUNING, max_steps=args.steps, time_budget=None, eval_every=args.steps, **SHAPE)
    model = dict(MODEL)
    if args.base:
        base = load_base(args.base)
        model = base.config.to_dict()
        print(f"# base: {args.base} ({base.path}); fine-tunes of {args.steps} steps")
    elif {"rows", "recipes"} & set(args.only):
        shakespeare = (ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")
        base_config = TrainConfig(max_steps=args.base_steps, time_budget=None, eval_every=args.base_steps, **SHAPE)
        base_run = train(shakespeare, work / "base", ModelConfig(vocab_size=1, **MODEL), base_config, threads=1)
        base = load_base(work / "base")
        print(f"# base: 2×128 LSTM, {args.base_steps} steps on shakespeare.txt in {base_run.elapsed_s:.0f} s, "
              f"validation {base_run.best_val_bpc:.3f} bits/char; fine-tunes of {args.steps} steps")
    if {"rows", "recipes"} & set(args.only):
        if "rows" in args.only:
            rows_table(base, texts, fine, args.rows, work)
        if "recipes" in args.only:
            recipes_table(base, texts, fine, args.steps, args.recipes, work)
    if "scratch" in args.only:
        scratch_table(texts, args.steps, args.scratch_lr, work, model)
    shutil.rmtree(work)
    print(f"\n# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
