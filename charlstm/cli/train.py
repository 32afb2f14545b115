"""`charlstm train`: train a model on a corpus into a run directory (or resume one)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import click

from ..config import CELLS, MAX_FORGET_BIAS, MAX_NUM_LAYERS, MAX_WIDTH, ModelConfig, TrainConfig, config_from
from ..views.progress import _Progress
from .common import explicit, invocation, stderr_console
from .params import Encoding, Number, Seed, Threads, bounded, device_option, parse_duration


@click.command("train")
@click.argument("corpus", nargs=-1)
@click.option("--glob", default=None, help="Files to read from CORPUS directories, e.g. '*.py'.")
@click.option("--encoding", type=Encoding(), default="utf-8", show_default=True, help="Text encoding of the corpus (decoding is strict).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. [default: checkpoints/<corpus-name>/]")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out (default: the most recent run) exactly where it stopped, with its own "
                   "model, corpus and recipe; options given now change the budget, the cadence and the recipe from "
                   "here on (--lr, --weight-decay …); model options and --batch-size, --seq-len, --val-fraction "
                   "that differ from the run's are refused. With no --time or --max-steps it finishes the "
                   "run's own budget (a finished run: one line, nothing trained, exit 0); a budget that is not "
                   "beyond the run is an error.")
@click.option("--cell", type=click.Choice(CELLS), default=ModelConfig.cell, show_default=True,
              help="lstm, gru, rnn: PyTorch's fused kernels; peephole, coupled: explicit LSTM variants (cells.py)")
@click.option("--hidden-size", type=click.IntRange(1, MAX_WIDTH), default=None,
              help="Units per layer. [default: fitted to the corpus and the budget (fit.py), e.g. 256 for 1 MB and 3m]")
@click.option("--num-layers", type=click.IntRange(1, MAX_NUM_LAYERS), default=None,
              help="[default: 2, or 1 for a fitted width below 64]")
@click.option("--embedding-size", type=click.IntRange(1, MAX_WIDTH), default=None,
              help="[default: 64, or the hidden size if smaller]")
@click.option("--dropout", type=Number(0, 1, max_open=True), default=ModelConfig.dropout, show_default=True)
@click.option("--forget-bias", type=Number(-MAX_FORGET_BIAS, MAX_FORGET_BIAS), default=ModelConfig.forget_bias, show_default=True,
              help="Initial forget-gate bias of LSTM-like cells (char-rnn used 1; 0 keeps PyTorch's initialisation).")
@click.option("--batch-size", type=bounded(TrainConfig, "batch_size"), default=TrainConfig.batch_size, show_default=True)
@click.option("--seq-len", type=bounded(TrainConfig, "seq_len"), default=TrainConfig.seq_len, show_default=True,
              help="Characters per window: the model is updated after each and its state carried into the next.")
@click.option("--short-windows", type=bounded(TrainConfig, "short_windows"), default=TrainConfig.short_windows,
              show_default="1/3", help="Over this first fraction of the budget, windows of half --seq-len: twice the "
                                      "updates per character while the model learns fastest; 0 keeps them whole.")
@click.option("--learning-rate", "--lr", type=bounded(TrainConfig, "learning_rate"), default=TrainConfig.learning_rate,
              show_default=True, help="Peak learning rate (after warmup, until the decay).")
@click.option("--warmup-steps", type=bounded(TrainConfig, "warmup_steps"), default=TrainConfig.warmup_steps, show_default=True)
@click.option("--decay-fraction", "--lr-decay", type=bounded(TrainConfig, "decay_fraction"), default=TrainConfig.decay_fraction,
              show_default=True, help="Last fraction of the budget over which the learning rate decays (cosine) to a "
                                      "tenth; 1 decays from the start, 0 keeps it constant.")
@click.option("--weight-decay", type=bounded(TrainConfig, "weight_decay"), default=TrainConfig.weight_decay, show_default=True)
@click.option("--grad-clip", type=bounded(TrainConfig, "grad_clip"), default=TrainConfig.grad_clip, show_default=True)
@click.option("--ema-decay", type=bounded(TrainConfig, "ema_decay"), default=TrainConfig.ema_decay, show_default=True,
              help="Evaluate, preview and save the exponential moving average of the weights, with this decay per "
                   "step (less in the first steps); 0 saves the training weights themselves.")
@click.option("--max-steps", type=bounded(TrainConfig, "max_steps"), default=None,
              help="Stop at this step, counted from the run's start (also with --resume: --max-steps 500 after 300 "
                   "steps trains 200 more).")
@click.option("--time-budget", "--time", default=f"{int(TrainConfig.time_budget)}s", show_default=True,
              help="Wall-clock budget of this command, evaluation included: 90s, 5m, 1h30m. With --resume it is "
                   "time on top of what the run has trained (--time 2m: 2 more minutes). Ignored when only "
                   "--max-steps is given; with --resume, either one alone replaces the run's whole budget.")
@click.option("--eval-every", type=bounded(TrainConfig, "eval_every"), default=TrainConfig.eval_every, show_default=True,
              help="Steps between validation, preview and checkpoints.")
@click.option("--eval-seconds", type=bounded(TrainConfig, "eval_seconds"), default=TrainConfig.eval_seconds, show_default=True,
              help="Seconds between them as well, whatever the steps: the first comes after half of it (sooner "
                   "in a short --time), the last at the end; 0: by steps only.")
@click.option("--patience", type=bounded(TrainConfig, "patience"), default=None,
              help="Stop after this many evaluations in a row without a better validation figure (best.safetensors "
                   "keeps the best); the reason is shown and logged. [default: train the whole budget]")
@click.option("--val-fraction", type=bounded(TrainConfig, "val_fraction"), default=TrainConfig.val_fraction, show_default=True)
@click.option("--log-every", type=bounded(TrainConfig, "log_every"), default=TrainConfig.log_every, show_default=True)
@click.option("--preview-chars", "--preview", type=bounded(TrainConfig, "preview_chars"), default=TrainConfig.preview_chars, show_default=True,
              help="Characters of sample shown at each evaluation.")
@click.option("--seed", type=Seed(), default=TrainConfig.seed, show_default=True, help="0 to 2**63 - 1.")
@click.option("--min-char-count", type=bounded(TrainConfig, "min_char_count"), default=None,
              help="Read characters seen fewer times in the corpus as one unknown symbol (shown as \ufffd); 1 keeps "
                   "every character. [default: 1; in a corpus of more than 256 distinct characters, the count below which the "
                   "rarest make up at most 0.2% of the text]")
@click.option("--device", default=None, callback=device_option, help="cpu, cuda, cuda:1, mps [default: cuda if present, else cpu]")
@click.option("--threads", type=Threads(), default="auto", show_default=True,
              help="CPU threads: auto times every core against one on the first steps, keeps the faster and "
                   "re-checks each minute (a busy machine slows torch's default several times); N pins it, as "
                   "OMP_NUM_THREADS=N does.")
@click.pass_context
def command(ctx: click.Context, corpus, glob, encoding, out, resume, device, threads, **params):
    """Train a character model on CORPUS (files, directories, or - for stdin; default: bundled Shakespeare).

    Writes latest.safetensors, best.safetensors, metrics.jsonl and samples.txt to the run directory.
    Ctrl-C saves and stops; --resume continues.
    """
    from ..training.distributed import launched_as_main
    from ..training.resume import plan_run

    typed = {name for name in params if explicit(ctx, name)}
    params["time_budget"] = parse_duration(params["time_budget"])
    if params["max_steps"] is not None and "time_budget" not in typed:  # --max-steps alone: no clock
        params["time_budget"] = None
        typed.add("time_budget")
    config = config_from(TrainConfig, params)
    given = {name: value for name, value in params.items() if value is not None}
    model_config = config_from(ModelConfig, {**given, "vocab_size": 1})  # the corpus sets the vocabulary
    chosen = plan_run(corpus, glob, encoding, out, resume, config, typed, model=model_config)
    if chosen.complete:  # --resume of a finished run: say so and touch nothing (exit 0, like make)
        stderr_console().print(f"charlstm: {chosen.complete}", markup=False, highlight=False)
        return
    notice_skipped(corpus, glob)
    # The run is refused, created and locked before anything is prepared or written into it; under
    # torchrun rank 0 alone owns it (the other ranks read the prepared corpus, never write it).
    main = launched_as_main()
    with chosen.run.claim(resume=chosen.resume) if main else contextlib.nullcontext():
        prepared = prepare_corpus(chosen.files, chosen.encoding, chosen.run, store=main,
                                  min_char_count=chosen.config.min_char_count)
        model_config, fitted = _fitted(prepared, chosen, model_config, typed, device)
        _run_training(prepared, chosen, model_config, device, threads, fitted)


def notice_skipped(corpus, glob) -> None:
    """One line on stderr when reading directory corpora left charlstm's own output out."""
    from ..data.reading import corpus_files, skipped_summary

    if not any(str(c) != "-" and Path(c).is_dir() for c in corpus):
        return
    skipped: list = []
    corpus_files(corpus, glob, skipped=skipped)
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:2]) + (" …" if len(skipped) > 2 else "")
        stderr_console().print(f"charlstm: reading the corpus, left out charlstm's own output: "
                               f"{skipped_summary(skipped)} ({shown})", markup=False, highlight=False)


def prepare_corpus(files, encoding: str, run, store: bool = True, min_char_count: int | None = None):
    """Encode the corpus (cached in the run directory, whose lock the caller holds; store=False only
    reads the cache), with a progress bar when it is big. SIGTERM stops it like Ctrl-C, leaving no
    temp file: exit 143."""
    from tqdm import tqdm

    from ..data.corpus import prepare
    from ..files import Terminated, terminate_as_interrupt
    from ..runs.caches import CorpusCache

    sizes = sum(Path(f).stat().st_size for f in files if f != "-")
    try:
        with terminate_as_interrupt(), tqdm(total=2 * sizes, unit="B", unit_scale=True, desc="preparing corpus",
                                            file=sys.stderr, disable=sizes < (32 << 20), mininterval=0.5) as bar:
            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            return prepare(files, encoding=encoding, cache=CorpusCache(run, store=store), progress=progress,
                           min_char_count=min_char_count)
    except Terminated:
        click.echo("\ncharlstm: terminated while preparing the corpus; nothing half-written was left", err=True)
        sys.exit(128 + signal.SIGTERM)


def _fitted(corpus, chosen, model_config, typed, device):
    """(the model config with the options not given fitted to the corpus and the budget (fit.py),
    the line that says so, or ""); a resumed run keeps its own model (the Trainer loads it)."""
    from ..runtime import pick_device
    from ..training.loop import fitted_model
    from ..training.resume import format_duration

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


def _run_training(corpus, chosen, model_config, device, threads, fitted: str = "") -> None:
    """Train with a progress bar on stderr; Ctrl-C / SIGTERM save and exit 130 / 143."""
    from ..training.distributed import launched_as_main
    from ..training.loop import train as run_training
    from ..training.stopping import StopRequest, stop_on_signals

    quiet = not launched_as_main()  # under torchrun, rank 0 alone reports
    out_dir, stop = chosen.run.path, StopRequest()
    with _view(out_dir, chosen.config, quiet, fitted) as progress, stop_on_signals(stop):
        result = run_training(corpus, out_dir, model_config, chosen.config, resume=chosen.resume,
                              source=chosen.source, on_event=progress, stop=stop, device=device,
                              threads=threads)
    console = stderr_console()
    if result.interrupted:
        if not quiet:
            console.print(f"Stopped at step {result.step}; saved {chosen.run.latest}.\n"
                          f"Resume with: {invocation()} train --resume --out {out_dir}", markup=False)
        sys.exit(128 + (stop.signum or signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM
    if quiet:
        return
    if result.stopped:
        console.print(f"Stopped early at step {result.step}: {result.stopped}.", markup=False)
    best = f"{result.best_val_bpc:.3f} bits/char" if result.best_val_bpc is not None else "n/a (no validation text)"
    threads = f" on {result.threads}" if result.threads else ""
    console.print(f"Done: {result.step} steps in {result.elapsed_s:.0f}s, {result.chars_per_s:,.0f} chars/s{threads}, "
                  f"best validation {best}. Model: {chosen.run.best}\n"
                  f"Sample it with: {invocation()} sample {out_dir}", markup=False)


def _view(out_dir, config, quiet: bool, fitted: str = ""):
    """The live view (cli/live.py) on a terminal, plain lines and a bar anywhere else; `fitted`
    (how the model was sized) is said when training starts."""
    if not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from ..views.live import LiveView

        return LiveView(out_dir, config, fitted=fitted)
    return _Progress(out_dir, config, quiet, fitted)
