"""`charlstm train`: train a model on a corpus into a run directory (or resume one)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import click

from ..config import CELLS, ModelConfig, TrainConfig
from .common import explicit, stderr_console
from .params import parse_duration


def default_out(files: list, root: Path | None = None) -> Path:
    from .. import checkpoint as ckpt
    from ..data import default_corpus_path

    root = ckpt.DEFAULT_ROOT if root is None else root
    first = files[0] if files else default_corpus_path()
    name = "stdin" if first == "-" else Path(first).stem or Path(first).name
    if len(files) > 1 and first != "-" and Path(first).parent != Path("."):
        name = Path(first).parent.name or name
    name = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "run"
    out = root / name
    n = 2
    while (out / ckpt.LATEST).exists():
        out, n = root / f"{name}-{n}", n + 1
    return out


@click.command("train")
@click.argument("corpus", nargs=-1)
@click.option("--glob", "glob_pattern", default=None, help="Files to read from CORPUS directories, e.g. '*.py'.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the corpus (decoding is strict).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. [default: checkpoints/<corpus-name>/]")
@click.option("--resume", is_flag=True, help="Continue the run in --out (default: the most recent run) exactly where it stopped.")
@click.option("--cell", type=click.Choice(CELLS), default=ModelConfig.cell, show_default=True,
              help="lstm, gru, rnn: PyTorch's fused kernels; peephole, coupled: explicit LSTM variants (cells.py)")
@click.option("--hidden-size", type=click.IntRange(1), default=ModelConfig.hidden_size, show_default=True)
@click.option("--num-layers", type=click.IntRange(1), default=ModelConfig.num_layers, show_default=True)
@click.option("--embedding-size", type=click.IntRange(1), default=ModelConfig.embedding_size, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=ModelConfig.dropout, show_default=True)
@click.option("--forget-bias", type=float, default=ModelConfig.forget_bias, show_default=True,
              help="Initial forget-gate bias of LSTM-like cells (char-rnn used 1; 0 keeps PyTorch's initialisation).")
@click.option("--batch-size", type=click.IntRange(1), default=TrainConfig.batch_size, show_default=True)
@click.option("--seq-len", type=click.IntRange(1), default=TrainConfig.seq_len, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=TrainConfig.learning_rate, show_default=True)
@click.option("--warmup-steps", type=click.IntRange(0), default=TrainConfig.warmup_steps, show_default=True)
@click.option("--lr-decay", "decay_fraction", type=click.FloatRange(0, 1), default=TrainConfig.decay_fraction,
              show_default=True, help="Last fraction of the budget over which the learning rate decays (cosine) to a "
                                      "tenth; 1 decays from the start, 0 keeps it constant.")
@click.option("--weight-decay", type=click.FloatRange(0), default=TrainConfig.weight_decay, show_default=True)
@click.option("--grad-clip", type=click.FloatRange(0, min_open=True), default=TrainConfig.grad_clip, show_default=True)
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Stop after this many steps.")
@click.option("--time", "time_budget", default=f"{int(TrainConfig.time_budget)}s", show_default=True,
              help="Wall-clock budget, evaluation included: 90s, 5m, 1h30m. Ignored when only --max-steps is given.")
@click.option("--eval-every", type=click.IntRange(1), default=TrainConfig.eval_every, show_default=True,
              help="Steps between validation, preview and checkpoints.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=TrainConfig.val_fraction, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=TrainConfig.log_every, show_default=True)
@click.option("--preview", "preview_chars", type=click.IntRange(0), default=TrainConfig.preview_chars, show_default=True,
              help="Characters of sample shown at each evaluation.")
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … [default: cuda if present, else cpu]")
@click.pass_context
def command(ctx: click.Context, corpus, glob_pattern, encoding, out, resume, cell, hidden_size, num_layers, embedding_size,
          dropout, forget_bias, batch_size, seq_len, lr, warmup_steps, decay_fraction, weight_decay, grad_clip, max_steps, time_budget, eval_every,
          val_fraction, log_every, preview_chars, seed, device):
    """Train a character model on CORPUS (files, directories, or - for stdin; default: bundled Shakespeare).

    Writes latest.safetensors, best.safetensors, metrics.jsonl and samples.txt to the run directory.
    Ctrl-C saves and stops; --resume continues.
    """
    from .. import checkpoint as ckpt
    from ..data import corpus_files, default_corpus_path
    from ..errors import CheckpointError, CorpusError
    from ..train import refuse_if_busy

    seconds = parse_duration(time_budget)
    if max_steps is not None and not explicit(ctx, "time_budget"):
        seconds = None
    config = TrainConfig(batch_size=batch_size, seq_len=seq_len, learning_rate=lr, warmup_steps=warmup_steps,
                         decay_fraction=decay_fraction, weight_decay=weight_decay, grad_clip=grad_clip, max_steps=max_steps, time_budget=seconds,
                         eval_every=eval_every, val_fraction=val_fraction, log_every=log_every,
                         preview_chars=preview_chars, seed=seed)
    if resume:
        run = Path(out) if out else ckpt.resolve(None).parent
        saved = ckpt.load(run / ckpt.LATEST) if (run / ckpt.LATEST).is_file() else None
        if saved is None and not corpus:
            refuse_if_busy(run)  # started moments ago, its first checkpoint not yet written
            raise CheckpointError(f"{run}: nothing to resume (no {ckpt.LATEST}); give the corpus to start it afresh")
        if saved is not None:  # the run's own recipe, with only what was typed now changed
            stored = TrainConfig.from_dict(saved.train.get("train_config", {}))
            overrides = {f: v for f, v in config.to_dict().items()
                         if explicit(ctx, {"learning_rate": "lr"}.get(f, f))
                         or (f == "time_budget" and (explicit(ctx, "time_budget") or explicit(ctx, "max_steps")))}
            config = TrainConfig.from_dict({**stored.to_dict(), **overrides})
            corpus_spec = saved.train.get("corpus") or {}
            if not corpus:
                corpus = tuple(corpus_spec.get("paths") or ())
                encoding = corpus_spec.get("encoding", encoding)
        out_dir = run
    files = corpus_files(corpus, glob_pattern) if corpus else [default_corpus_path()]
    if not corpus and not Path(files[0]).is_file():
        raise CorpusError(f"{files[0]}: the bundled default corpus is missing; give a corpus file")
    if not resume:
        out_dir = Path(out) if out else default_out(files)
    corpus = prepare_corpus(files, encoding, out_dir)
    spec = {"paths": [str(Path(f).resolve()) if f != "-" else "-" for f in files], "encoding": encoding}
    model_config = ModelConfig(vocab_size=1, cell=cell, embedding_size=embedding_size, hidden_size=hidden_size,
                               num_layers=num_layers, dropout=dropout, forget_bias=forget_bias)
    _run_training(corpus, out_dir, model_config, config, resume, spec, device)


def prepare_corpus(files, encoding: str, cache_dir: Path | None):
    """Encode the corpus (cached in the run directory), with a progress bar when it is big."""
    from tqdm import tqdm

    from ..data import prepare

    sizes = sum(Path(f).stat().st_size for f in files if f != "-")
    with tqdm(total=2 * sizes, unit="B", unit_scale=True, desc="preparing corpus", file=sys.stderr,
              disable=sizes < (32 << 20), mininterval=0.5) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        return prepare(files, encoding=encoding, cache_dir=cache_dir, progress=progress)


def _run_training(corpus, out_dir, model_config, config, resume, spec, device) -> None:
    from tqdm import tqdm

    from .. import checkpoint as ckpt
    from ..train import StopRequest, stop_on_signals
    from ..train import train as run_training

    console = stderr_console()
    quiet = int(os.environ.get("RANK", "0")) != 0  # under torchrun, rank 0 alone reports
    by_time = config.max_steps is None and config.time_budget is not None
    bar = tqdm(total=int(config.time_budget) if by_time else config.max_steps, unit="s" if by_time else "step",
               file=sys.stderr, dynamic_ncols=True, leave=True, mininterval=0.5, disable=quiet,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]" if by_time else None)
    last_val = [None]

    def on_event(event):
        if event.kind == "start":
            bar.write(f"charlstm: training into {out_dir}/ — {event.text}", file=sys.stderr)
            bar.n = int(event.elapsed_s) if by_time else event.step
        elif event.kind == "notice":
            bar.write(f"charlstm: {event.text}", file=sys.stderr)
        elif event.kind in ("step", "eval"):
            if event.val_bpc is not None:
                last_val[0] = event.val_bpc
            target = int(min(event.elapsed_s, config.time_budget)) if by_time else event.step
            if target > bar.n:
                bar.update(target - bar.n)
            postfix = f"step {event.step}"
            if event.train_loss is not None:
                postfix += f", loss {event.train_loss:.3f}"
            if last_val[0] is not None:
                postfix += f", val {last_val[0]:.3f} bpc"
            if event.chars_per_s:
                postfix += f", {event.chars_per_s / 1000:.1f}k chars/s"
            bar.set_postfix_str(postfix, refresh=False)
            if event.kind == "eval":
                bar.write(f"── step {event.step}: validation {event.val_bpc:.3f} bits/char ──", file=sys.stderr)
                if event.text:
                    bar.write(event.text.rstrip("\n"), file=sys.stderr)

    stop = StopRequest()
    try:
        with stop_on_signals(stop):
            result = run_training(corpus, out_dir, model_config, config, resume=resume, source=spec,
                                  on_event=on_event, stop=stop, device=device)
    finally:
        bar.close()
    if result.interrupted:
        if quiet:
            sys.exit(128 + (stop.signum or signal.SIGINT))
        console.print(f"Stopped at step {result.step}; saved {out_dir / ckpt.LATEST}.\n"
                      f"Resume with: charlstm train --resume --out {out_dir}", markup=False)
        sys.exit(128 + (stop.signum or signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM
    if quiet:
        return
    best = f"{result.best_val_bpc:.3f}" if result.best_val_bpc is not None else "n/a"
    console.print(f"Done: {result.step} steps in {result.elapsed_s:.0f}s, {result.chars_per_s:,.0f} chars/s, "
                  f"best validation {best} bits/char. Model: {out_dir / ckpt.BEST}\n"
                  f"Sample it with: charlstm sample {out_dir}", markup=False)
