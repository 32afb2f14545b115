"""Starting from a model that already reads (`train --init-from`): how the new characters' rows start,
and which recipe fine-tunes best.

    OMP_NUM_THREADS=1 python benchmarks/init_rows.py [--base-steps 450] [--steps 225]
                                                      [--targets fortunes code] [--only rows recipes]

One process, one thread. A base model (2×128 LSTM, embedding 32, batch 32 × 100 characters) is
trained on corpora/shakespeare.txt for --base-steps steps (about a minute on an idle core); then
each candidate fine-tunes a copy of it on each target for --steps steps (about 30 s) and is scored
on the target's held-out tail (its last 5 %, which no run trains on) in bits per character: the
validation figure of the run's last evaluation, the weights or their average, whichever is better,
as `charlstm train` reports it. Budgets are in steps, so the runs are paired: the same base, the same
batches, the same seed, the same number of updates whatever else the machine does; only the
candidate differs, and a rerun prints the same figures.

Targets: corpora/fortunes.txt (one-line messages: 34 characters Shakespeare lacks, digits, quotes,
brackets, 2 % of the text) and corpora/python-sample.py.txt (Python: 32 new characters, 9 %).

Table 1, the rows of the new characters (under config.FINE_TUNING's recipe): the embedding row
(fresh random / zeros / the mean of the base's rows) × the output row (fresh random / zero weights
and the base's mean bias / zero weights and the log frequency of the character in the target,
shifted to the base's biases); "step 0" is the grown model before any update.
Table 2, the recipe (with growth.py's default rows): training from scratch's recipe, then one change
at a time from config.FINE_TUNING; "from scratch" trains a fresh model of the same size on the
target for the same steps, for scale.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-steps", type=int, default=450)
    parser.add_argument("--steps", type=int, default=225)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--only", nargs="+", default=["rows", "recipes"], choices=["rows", "recipes"])
    parser.add_argument("--recipes", nargs="+", default=None, metavar="WORD",
                        help="only the recipe candidates whose label holds one of these words (and the reference)")
    parser.add_argument("--rows", nargs="+", default=[f"{e}/{h}" for e, h in ROWS], metavar="EMBEDDING/OUTPUT",
                        help="the row candidates of table 1, e.g. spread/frequency fresh/fresh")
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        sys.exit("run with OMP_NUM_THREADS=1 (one thread: the figures are then the same on any load)")

    from charlstm.config import FINE_TUNING, ModelConfig, TrainConfig
    from charlstm.training.finetune import load_base
    from charlstm.training.loop import train

    print(f"# {machine()}")
    work = Path(tempfile.mkdtemp(prefix="init-rows-"))
    started = time.perf_counter()
    shakespeare = (ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")
    base_config = TrainConfig(max_steps=args.base_steps, time_budget=None, eval_every=args.base_steps, **SHAPE)
    base_run = train(shakespeare, work / "base", ModelConfig(vocab_size=1, **MODEL), base_config, threads=1)
    base = load_base(work / "base")
    print(f"# base: 2×128 LSTM, {args.base_steps} steps on shakespeare.txt in {base_run.elapsed_s:.0f} s, "
          f"validation {base_run.best_val_bpc:.3f} bits/char; fine-tunes of {args.steps} steps")
    texts = {name: (ROOT / "corpora" / TARGETS[name]).read_text(encoding="utf-8") for name in args.targets}
    tuned = replace(TrainConfig(), **FINE_TUNING)
    fine = replace(tuned, max_steps=args.steps, time_budget=None, eval_every=args.steps, **SHAPE)

    if "rows" in args.only:
        print("\n| embedding row | output row | " + " | ".join(f"{n}: step 0 | {n}: end" for n in texts) + " |")
        print("|---|---|" + "---|---|" * len(texts))
        for embedding, head in (pair.split("/") for pair in args.rows):
            variant = replace(base, new_embedding_rows=embedding, new_head_rows=head)
            cells = []
            for text in texts.values():
                cells += [f"{step_zero(variant, text, fine):.4f}", f"{fine_tune(variant, text, work / 'ft', fine):.4f}"]
            print(f"| {embedding} | {head} | " + " | ".join(cells) + " |", flush=True)

    if "recipes" in args.only:
        print("\n| recipe | " + " | ".join(texts) + " |")
        print("|---|" + "---|" * len(texts))
        seen = []
        for label, change in recipes(args.steps):
            hold, dropout = change.pop("hold", False), change.pop("dropout", None)
            config = replace(fine, **change)
            if (config, hold, dropout) in seen:  # the same run as a row above (a change to what is already so)
                continue
            if args.recipes and label != "config.FINE_TUNING" and not any(word in label for word in args.recipes):
                continue
            seen.append((config, hold, dropout))
            cells = [f"{fine_tune(base, text, work / 'ft', config, dropout, hold):.4f}" for text in texts.values()]
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
        for rate in dict.fromkeys([TrainConfig.learning_rate, fine.learning_rate]):
            cells = []
            for text in texts.values():
                scratch = replace(TrainConfig(), max_steps=args.steps, time_budget=None, eval_every=args.steps,
                                  learning_rate=rate, **SHAPE)
                model = ModelConfig(vocab_size=1, **MODEL)
                cells.append(f"{train(text, work / 'scratch', model, scratch, threads=1).last_val_bpc:.4f}")
                shutil.rmtree(work / "scratch")
            print(f"| from scratch (no base), its own recipe at lr {rate:g} | " + " | ".join(cells) + " |", flush=True)
    shutil.rmtree(work)
    print(f"\n# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
