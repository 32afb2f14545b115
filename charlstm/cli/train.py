"""`charlstm train`: train a model on a corpus into a run directory (or resume one)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import click

from ..config import CELL_KINDS, ModelConfig, TrainConfig, config_from, format_duration
from ..training.fit import DROPOUT_EPOCHS, FITTED_DROPOUT, LEARNING_RATE_WIDTH, MAX_EMBEDDING, MIN_TWO_LAYER_WIDTH
from ..views.progress import PlainProgress
from .common import explicit, invocation, notice_skipped, prepare_corpus, stderr_console
from .help import Command
from .params import DEVICE_HELP, Duration, Encoding, Threads, device_option, field_option

_FUSED = ", ".join(name for name, kind in CELL_KINDS.items() if kind.fused)
_EXPLICIT = ", ".join(name for name, kind in CELL_KINDS.items() if not kind.fused)

#: Option names by section of `charlstm train --help`.
SECTIONS = {
    "Corpus": ("glob", "encoding", "val_fraction", "min_char_count"),
    "Model (fitted to the corpus and the budget, unless given)": (
        "init_from", "cell", "hidden_size", "num_layers", "embedding_size", "dropout", "forget_bias"),
    "Budget and schedule": (
        "time_budget", "max_steps", "patience", "batch_size", "seq_len", "short_windows", "learning_rate",
        "warmup_steps", "decay_fraction", "weight_decay", "grad_clip", "ema_decay", "seed"),
    "Run directory": ("out", "resume", "eval_every", "eval_seconds", "log_every", "preview_chars"),
}


@click.command("train", cls=Command, sections=SECTIONS)
@click.argument("corpus", nargs=-1)
@click.option("--glob", default=None, help="Files to read from CORPUS directories, e.g. '*.py'.")
@click.option("--encoding", type=Encoding(), default="utf-8", show_default=True,
              help="The corpus's text encoding, decoded strictly.")
@field_option(TrainConfig, "val_fraction", help="Share held out for validation.")
@field_option(TrainConfig, "min_char_count", default=None,
              help="Characters seen fewer times read as one unknown symbol. [default: 1; more in a corpus of "
                   "very many distinct characters]")
@click.option("--init-from", metavar="MODEL", default=None,
              help="Start from the weights of a run, a checkpoint or a shipped model.")
@field_option(ModelConfig, "cell", metavar="CELL",
              help=f"{_FUSED}: PyTorch's fused kernels; {_EXPLICIT}: explicit LSTM variants.")
@field_option(ModelConfig, "hidden_size", default=None, help="Units per layer. [default: fitted]")
@field_option(ModelConfig, "num_layers", default=None,
              help=f"Layers of cells. [default: {ModelConfig.num_layers}; 1 below a width of {MIN_TWO_LAYER_WIDTH}]")
@field_option(ModelConfig, "embedding_size", default=None,
              help=f"Embedding width. [default: hidden size, at most {MAX_EMBEDDING}]")
@field_option(ModelConfig, "dropout", show_default=False,
              help=f"Dropout between layers and before the head. [default: fitted: {ModelConfig.dropout:g}, or "
                   f"{FITTED_DROPOUT:g} for {DROPOUT_EPOCHS:g}+ planned passes]")
@field_option(ModelConfig, "forget_bias", help="Initial forget-gate bias of LSTM-like cells (char-rnn's: 1).")
@click.option("--time-budget", "--time", "time_budget", type=Duration(TrainConfig, "time_budget"),
              default=f"{TrainConfig.time_budget:g}s", show_default=True, help="Wall-clock budget, evaluation included: 90s, 5m, 1h30m.")
@field_option(TrainConfig, "max_steps", help="Stop at this step, counted from the run's start.")
@field_option(TrainConfig, "patience", help="Stop after N evaluations without a better validation figure.")
@field_option(TrainConfig, "batch_size", help="Streams of text read side by side.")
@field_option(TrainConfig, "seq_len", help="Characters per window: one update each.")
@field_option(TrainConfig, "short_windows", show_default="1/3",
              help="First share of the budget read in half windows: more updates early.")
@field_option(TrainConfig, "learning_rate", "--lr", help=f"Peak learning rate; more below {LEARNING_RATE_WIDTH} units.")
@field_option(TrainConfig, "warmup_steps", help="Steps of linear warmup to the peak.")
@field_option(TrainConfig, "decay_fraction", "--lr-decay",
              help=f"Last share: cosine decay to {TrainConfig.min_lr_ratio:g} × peak.")
@field_option(TrainConfig, "weight_decay", help="AdamW weight decay of the weight matrices.")
@field_option(TrainConfig, "grad_clip", help="Largest global gradient norm.")
@field_option(TrainConfig, "ema_decay", help="Evaluate and save a moving average of the weights; 0: none.")
@field_option(TrainConfig, "seed", help="Seed of the weights and batches.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. [default: checkpoints/<corpus-name>/]")
@click.option("--resume", is_flag=True, help="Continue the run in --out (default: the latest) where it stopped; "
                                             "budget and recipe options given now apply from here on.")
@field_option(TrainConfig, "eval_every", help="Steps between evaluations and checkpoints.")
@field_option(TrainConfig, "eval_seconds", help="Seconds between evaluations too; 0: steps only.")
@field_option(TrainConfig, "log_every", help="Steps between lines of metrics.jsonl.")
@field_option(TrainConfig, "preview_chars", "--preview", help="Characters of sample shown at each evaluation.")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
@click.option("--threads", type=Threads(), default="auto", show_default=True,
              help="CPU threads: auto times every core against one as it trains; N pins it.")
@click.pass_context
def command(ctx: click.Context, corpus, glob, encoding, out, resume, device, threads, init_from, **params):
    """Train a character model on CORPUS.

    CORPUS: files, directories, or - for standard input; the bundled Shakespeare if none. Writes
    checkpoints, metrics.jsonl and samples.txt to the run directory. Ctrl-C saves and stops.
    """
    from ..training.distributed import launched_as_main
    from ..training.resume import plan_run

    typed = {name for name in params if explicit(ctx, name)}
    if params["max_steps"] is not None and "time_budget" not in typed:  # --max-steps alone: no clock
        params["time_budget"] = None
        typed.add("time_budget")
    config = config_from(TrainConfig, params)
    given = {name: value for name, value in params.items() if value is not None}
    model_config = config_from(ModelConfig, {**given, "vocab_size": 1})  # the corpus sets the vocabulary
    base = None
    if init_from is not None:  # the base is read and the options checked against it before anything is written
        from ..training.finetune import fine_tuning, load_base, refuse_changes

        base = load_base(init_from)
        refuse_changes(base, model_config, typed)
        config = fine_tuning(config, typed, base)
    chosen = plan_run(corpus, glob, encoding, out, resume, config, typed, model=model_config)
    if chosen.complete:  # --resume of a finished run: say so and touch nothing (exit 0, like make)
        stderr_console().print(f"charlstm: {chosen.complete}", markup=False, highlight=False)
        return
    grows, base = _start(chosen, base)
    notice_skipped(corpus, glob)
    # The run is refused, created and locked before anything is prepared or written into it; under
    # torchrun rank 0 alone owns it (the other ranks read the prepared corpus, never write it).
    main = launched_as_main()
    with chosen.run.claim(resume=chosen.resume) if main else contextlib.nullcontext():
        prepared = prepare_corpus(chosen.files, chosen.encoding, chosen.run, store=main,
                                  min_char_count=chosen.config.min_char_count, base=grows,
                                  surveyed=lambda vocab, chars: _fits(vocab, chars, chosen, model_config, typed, device,
                                                                      base))
        model_config, fitted = _fitted(prepared, chosen, model_config, typed, device, base)
        chosen, fitted = _rate(chosen, model_config, typed, base, fitted)
        if main and base is None and not chosen.resume:
            _tip(prepared, corpus)
        _run_training(prepared, chosen, model_config, device, threads, fitted, base)


def _start(chosen, base):
    """(the vocabulary the corpus's grows, or None; the base a fresh run starts from, or None): a
    resumed run keeps the model it has, so a base given with it must be the one it started from
    (finetune.start_vocabulary refuses another), and is not used again."""
    from ..training.finetune import start_vocabulary

    grows = start_vocabulary(chosen.run, chosen.resume, base)
    return grows, None if chosen.resume and chosen.run.has_checkpoint() else base


def _fitted(corpus, chosen, model_config, typed, device, base=None):
    """(the model config with the options not given fitted to the corpus and the budget (fit.py),
    the line that says so, or ""); a resumed run keeps its own model (the Trainer loads it), a run
    started from a base model takes the base's (with the dropout typed now, if one was)."""
    from dataclasses import replace

    from ..runtime import pick_device
    from ..training.loop import fitted_model

    if base is not None:
        dropout = model_config.dropout if "dropout" in typed else base.config.dropout
        return replace(base.config, dropout=dropout), base.describe(corpus.vocab)
    if chosen.resume and chosen.run.has_checkpoint():
        return model_config, ""
    config = chosen.config
    model, fitted = fitted_model(corpus, config, pick_device(device).type, base=model_config, keep=typed)
    if fitted is None:
        return model, ""
    budget = " and ".join(part for part in (
        f"{format_duration(config.time_budget)}" if config.time_budget is not None else "",
        f"{config.max_steps:,} steps" if config.max_steps is not None else "") if part)
    return model, fitted.describe(budget)


def _rate(chosen, model_config, typed, base, fitted: str):
    """(the plan with the learning rate of a fresh run from scratch fitted to its model's width when
    none was typed (fit.fitted_rate), the start line with the rate said when it is not the default)."""
    from dataclasses import replace

    from ..training.fit import fitted_rate

    if base is not None or "learning_rate" in typed or (chosen.resume and chosen.run.has_checkpoint()):
        return chosen, fitted
    rate = fitted_rate(model_config.hidden_size)
    if rate == chosen.config.learning_rate:
        return chosen, fitted
    said = f"learning rate {rate:.2g} for a model {model_config.hidden_size} units wide (--lr chooses it)"
    return replace(chosen, config=replace(chosen.config, learning_rate=rate)), f"{fitted}; {said}" if fitted else said


def _fits(vocab, chars: int, chosen, model_config, typed, device, base=None) -> None:
    """Refuse, once the corpus's characters are known and before anything is stored in the run, a
    fresh run whose model (as given, fitted as `_fitted` fits it, or the base it starts from, grown
    to the corpus's characters) cannot train within the memory budget (a MemoryBudgetError naming
    what to make smaller)."""
    from dataclasses import replace

    from ..runtime import pick_device
    from ..training.loop import fitted_for, memory_chunks

    if chosen.resume and chosen.run.has_checkpoint():  # the run's own model: the trainer checks it
        return
    model = base.config if base is not None else fitted_for(len(vocab), chars, chosen.config, pick_device(device).type,
                                                             base=model_config, keep=typed)[0]
    memory_chunks(replace(model, vocab_size=len(vocab)), chosen.config)


def _tip(prepared, corpus) -> None:
    """The tip for a small text the shipped English model already reads: what it reads it at, and
    the command that starts from it."""
    import shlex

    from ..training.finetune import BASE_TIP, base_reads

    bits = base_reads(prepared.vocab, prepared.ids)
    if bits is not None:
        named = shlex.join(corpus) if corpus else "CORPUS"
        console = stderr_console()
        console.print(f"tip: the shipped {BASE_TIP.model} model already reads this small text at {bits:.2f} "
                      f"bits/char.", markup=False, highlight=False)
        console.print(f"Start from it with: {invocation()} train {named} --init-from {BASE_TIP.model}", markup=False,
                      highlight=False, soft_wrap=True)  # a command to paste: one line, for the terminal to fold


def _run_training(corpus, chosen, model_config, device, threads, fitted: str = "", base=None) -> None:
    """Train with a progress bar on stderr; Ctrl-C / SIGTERM save and exit 130 / 143."""
    from ..training.distributed import launched_as_main
    from ..training.loop import train as run_training
    from ..training.stopping import StopRequest, stop_on_signals

    quiet = not launched_as_main()  # under torchrun, rank 0 alone reports
    out_dir, stop = chosen.run.path, StopRequest()
    yardsticks = None if quiet else _yardsticks(corpus, chosen.config)
    with _view(out_dir, chosen.config, quiet, fitted, yardsticks) as progress, stop_on_signals(stop):
        result = run_training(corpus, out_dir, model_config, chosen.config, resume=chosen.resume,
                              source=chosen.source, on_event=progress, stop=stop, device=device,
                              threads=threads, init_from=base)
    console = stderr_console()
    if result.interrupted:
        if not quiet:
            console.print(f"Stopped at step {result.step}; saved {chosen.run.latest}.", markup=False)
            console.print(f"Resume with: {invocation()} train --resume --out {out_dir}", markup=False, soft_wrap=True)
        sys.exit(128 + (stop.signum or signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM
    if quiet:
        return
    if result.stopped:
        console.print(f"Stopped early at step {result.step}: {result.stopped}.", markup=False)
    console.print(_done(result, chosen.run.best, yardsticks), markup=False)
    console.print(f"Sample it with: {invocation()} sample {out_dir}", markup=False, soft_wrap=True)


def _done(result, model, yardsticks) -> str:
    """The closing lines: steps, time and speed; the best validation figure beside its yardsticks;
    the model."""
    threads = f" on {result.threads.partition(' (')[0]}" if result.threads else ""  # the count; the trials were shown
    best = f"{result.best_val_bpc:.3f} bits/char" if result.best_val_bpc is not None else "n/a (no validation text)"
    if result.best_val_bpc is not None and yardsticks is not None:
        best += f"; for scale, {yardsticks.describe(3)}"
    return (f"Done: {result.step:,} steps in {format_duration(result.elapsed_s)} "
            f"({result.chars_per_s:,.0f} chars/s{threads}), best validation {best}.\nModel: {model}")


def _yardsticks(corpus, config):
    """What a blind guess and the training text's character frequencies score (scoring.yardsticks),
    for the live view and the closing line; None for a corpus too small to split (training says so)."""
    from ..errors import CorpusError
    from ..scoring.yardsticks import of_corpus

    try:
        return of_corpus(corpus.ids, len(corpus.vocab), config.val_fraction)
    except CorpusError:
        return None


def _view(out_dir, config, quiet: bool, fitted: str = "", yardsticks=None):
    """The live view (views/live.py) on a terminal, plain lines and a bar anywhere else; `fitted`
    (how the model was sized) is said when training starts, the yardsticks beside the figures."""
    console = stderr_console()
    if not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from ..views.live import LiveView

        return LiveView(out_dir, config, console=console, fitted=fitted, yardsticks=yardsticks)
    return PlainProgress(out_dir, config, quiet, fitted, yardsticks=yardsticks, console=console)
