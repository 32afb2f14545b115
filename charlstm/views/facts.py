"""The report's facts table: each fact of a run as a person would write it.

`fact_rows(runs)` gives (group, fact, one value per run) for the model, the recipe, the corpus, the
clock, the scores beside their yardsticks and the machine, from a report.RunFacts each. A
setting is named and worded here (`short windows: the first third of the budget`); one this table
does not know yet is shown by its field name and value. Builds strings; no HTML.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Sequence

from ..config import format_duration
from .charts import LogFigures

NOT_RECORDED = "not recorded in the run"  # (runs trained before charlstm stored it)
NONE = "—"

#: Fractions said in words; any other share is a percentage.
_FRACTION_WORDS = {Fraction(1, 2): "half", Fraction(1, 3): "third", Fraction(2, 3): "two thirds",
                   Fraction(1, 4): "quarter", Fraction(3, 4): "three quarters", Fraction(1, 5): "fifth",
                   Fraction(1, 10): "tenth"}
_CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "plain RNN (tanh)", "peephole": "LSTM with peepholes",
          "coupled": "LSTM with coupled input and forget gates"}


def share(value: float, phrase: str) -> str:
    """`phrase` ('the first {} of the budget') with the share in words where it has them (1/3:
    'third'), else as a percentage ('5%')."""
    near = Fraction(value).limit_denominator(20)
    word = _FRACTION_WORDS.get(near) if abs(float(near) - value) < 1e-9 else None
    return phrase.format(word or f"{100 * value:.3g}%")


def _steps(n) -> str:
    return f"{n:,} step{'' if n == 1 else 's'}"


#: (label, words) for each ModelConfig field.
MODEL: dict[str, tuple[str, Callable]] = {
    "vocab_size": ("vocabulary", lambda v: f"{v:,} characters"),
    "cell": ("cell", lambda v: _CELLS.get(v, v)),
    "num_layers": ("layers", str),
    "hidden_size": ("units per layer", lambda v: f"{v:,}"),
    "embedding_size": ("character embedding", lambda v: f"{v:,} numbers"),
    "dropout": ("dropout", lambda v: "none" if not v else f"{100 * v:.3g}% between layers"),
    "forget_bias": ("initial forget-gate bias", lambda v: "PyTorch's own initialisation" if not v else f"{v:g}"),
}

#: (label, words) for each TrainConfig field.
TRAINING: dict[str, tuple[str, Callable]] = {
    "batch_size": ("parallel streams (batch)", lambda v: f"{v:,}"),
    "seq_len": ("window", lambda v: f"{v:,} characters between updates"),
    "short_windows": ("short windows", lambda v: "none: whole windows throughout" if not v else
                      "half as long over the whole budget" if v >= 1 else
                      share(v, "half as long over the first {} of the budget")),
    "learning_rate": ("peak learning rate", lambda v: f"{v:g}"),
    "warmup_steps": ("warmup", lambda v: "none" if not v else _steps(v)),
    "decay_fraction": ("learning-rate decay", lambda v: "none: constant after warmup" if not v else
                       "cosine over the whole budget" if v >= 1 else share(v, "cosine over the last {} of the budget")),
    "min_lr_ratio": ("final learning rate", lambda v: f"{v:g} × the peak"),
    "weight_decay": ("weight decay", lambda v: "none" if not v else f"{v:g}"),
    "grad_clip": ("gradient norm clipped at", lambda v: f"{v:g}"),
    "ema_decay": ("weights saved", lambda v: "the weights themselves" if not v else
                  f"their moving average, decay {v:g} a step"),
    "max_steps": ("step budget", lambda v: "none" if v is None else _steps(v)),
    "time_budget": ("time budget", lambda v: "none" if v is None else format_duration(v)),
    "eval_every": ("validation every", _steps),
    "eval_seconds": ("validation also every", lambda v: "(by steps only)" if not v else format_duration(v)),
    "eval_chars": ("validation text scored", lambda v: f"its first {v:,} characters"),
    "val_fraction": ("held out for validation", lambda v: "nothing" if not v else share(v, "the last {} of the corpus")),
    "patience": ("patience", lambda v: "none: the whole budget" if v is None else
                 f"stop after {v:,} evaluations without a better figure"),
    "log_every": ("logged every", _steps),
    "preview_chars": ("previews", lambda v: "none" if not v else f"{v:,} characters"),
    "seed": ("seed", str),
    "min_char_count": ("rare characters", lambda v: "the default rule (see --min-char-count)" if v is None else
                       "every character kept" if v == 1 else f"read as one unknown symbol when seen under {v:,} times"),
}


def _label(table: dict, name: str) -> str:
    return table[name][0] if name in table else name.replace("_", " ")


def _words(table: dict, name: str, value) -> str:
    """A setting's value in words; one the table does not know, or a value its words do not
    expect, as it is."""
    words = table[name][1] if name in table else str
    try:
        return words(value)
    except (TypeError, ValueError):
        return NONE if value is None else str(value)


def _settings(group: str, table: dict, configs: Sequence[dict]) -> list[tuple[str, str, list[str]]]:
    """A row per setting of any run: the table's, in its order, then any other."""
    names = dict.fromkeys([*(n for n in table if any(n in c for c in configs)), *(k for c in configs for k in c)])
    return [(group, _label(table, name), [_words(table, name, c[name]) if name in c else NONE for c in configs])
            for name in names]


def _started_from(info: dict) -> str:
    """The model a run started from (runinfo.StartedFrom, as a dict), in words."""
    if not info:
        return NONE
    base = info.get("init_from")
    if not base:
        return "nothing: trained from scratch"
    return f"{base['source']} (fingerprint {base['fingerprint'][:16]}…; its {base['chars']:,} characters kept their ids)"


def _bpc(value) -> str:
    return NONE if value is None or not math.isfinite(value) else f"{value:.3f} bits/char"


def _yardstick_rows(runs) -> list[tuple[str, str, list[str]]]:
    sticks = [r.yardsticks for r in runs]
    return [
        ("scores", "a blind guess", [NONE if y is None else f"{_bpc(y.blind_bpc)} (among {y.vocab_size:,} characters)"
                                     for y in sticks]),
        ("scores", "the character frequencies alone (a unigram model)",
         [NONE if y is None else y.note if y.unigram_bpc is None else f"{_bpc(y.unigram_bpc)} ({y.note})"
          for y in sticks]),
    ]


def fact_rows(runs) -> list[tuple[str, str, list[str]]]:
    """(group, fact, one value per run) for report.RunFacts `runs`."""
    def last_rate(run) -> str:
        figure = LogFigures()
        rates = [rate for rate in (figure(r, "chars_per_s") for r in run.metrics) if rate is not None]
        return f"{rates[-1]:,.0f} characters/s" if rates else NONE

    def info(run, key: str, words: Callable = str, missing: str = NONE) -> str:
        value = run.info.get(key)
        return missing if value is None or value == "" else words(value)

    rows = [("run", "checkpoint", [r.checkpoint for r in runs]),
            ("run", "started from", [_started_from(r.info) for r in runs])]
    rows += _settings("model", MODEL, [r.model for r in runs])
    rows += _settings("training", TRAINING, [r.train for r in runs])
    rows += [
        ("corpus", "files", [", ".join(r.info.get("corpus_paths") or []) or NONE for r in runs]),
        ("corpus", "characters", [info(r, "corpus_chars", lambda v: f"{v:,}") for r in runs]),
        ("corpus", "encoding", [info(r, "corpus_encoding") for r in runs]),
        ("corpus", "fingerprint of the text", [info(r, "corpus_fingerprint") for r in runs]),
        ("timing", "steps", [info(r, "step", lambda v: f"{v:,}") for r in runs]),
        ("timing", "wall-clock time", [info(r, "elapsed_s", format_duration) for r in runs]),
        ("timing", "last logged speed", [last_rate(r) for r in runs]),
        ("timing", "budget spent", [("yes" if r.info.get("finished") else "no") if r.info else NONE for r in runs]),
        ("timing", "stopped early", [r.info.get("stopped") or "no" if r.info else NONE for r in runs]),
        ("scores", "best validation", [_bpc(r.info.get("best_val_bpc")) for r in runs]),
        ("scores", "last validation", [_bpc(r.info.get("last_val_bpc")) for r in runs]),
        *_yardstick_rows(runs),
        ("machine", "torch", [info(r, "torch") for r in runs]),
        ("machine", "device", [info(r, "device", missing=NOT_RECORDED) for r in runs]),
        ("machine", "CPU threads", [info(r, "threads", missing=NOT_RECORDED) for r in runs]),
    ]
    return rows
