"""The `charlstm` command: parse, call one library function, render, map errors to exit codes.

Results (samples, traces) go to stdout; progress and diagnostics go to stderr, so
`charlstm sample > poem.txt` stays clean.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import click
from click.core import ParameterSource

from . import checkpoint as ckpt
from .checkpoint import CheckpointError
from .data import Corpus, CorpusError, corpus_files, default_corpus_path, prepare, read_corpus
from .model import GATE_VECTORS, ModelConfig
from .neurons import NeuronError, check_neuron, trace
from .sample import UNKNOWN_POLICIES, PrimeError, SampleConfig, generate, prepare_prime
from .train import StopRequest, TrainConfig, TrainingError, pick_device, stop_on_signals
from .train import train as run_training

DOMAIN_ERRORS = (CorpusError, CheckpointError, PrimeError, TrainingError, NeuronError)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def parse_duration(value: str | None) -> float | None:
    """'90' or '90s' → 90; '5m' → 300; '1h30m' → 5400."""
    if value is None:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", text).strip():
        raise click.BadParameter(f"{value!r} is not a duration like 90s, 5m or 1h30m", param_hint="--time")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)


def unescape(text: str) -> str:
    """Let `--stop '\\n'` mean a line break, as users type it in a shell."""
    return re.sub(r"\\([nrt\\])", lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m.group(1)], text)


def _load(target: str | None, device: str | None = None):
    path = ckpt.resolve(target)
    loaded = ckpt.load(path)
    return loaded, loaded.model(pick_device(device)), path


def _explicit(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


class _Group(click.Group):
    """Domain errors become `Error: <one line>` on stderr and exit 1 — never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DOMAIN_ERRORS as error:
            raise click.ClickException(str(error)) from None
        except BrokenPipeError:  # `charlstm sample | head`: the reader left; that is not an error
            sys.stdout = open(os.devnull, "w")
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)
        except OSError as error:
            raise click.ClickException(f"{error.filename or ''}{': ' if error.filename else ''}{error.strerror or error}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="charlstm")
def main() -> None:
    """Train a character-level LSTM on your own text, sample from it, and look inside its neurons.

    \b
      charlstm train corpus.txt          # writes checkpoints/corpus/
      charlstm sample --temperature 0.8  # streams text from the latest run
      charlstm inspect --neuron 42       # one neuron's activity, character by character
    """


# ---------------------------------------------------------------------------------------------- train


def _default_out(files: list, root: Path = ckpt.DEFAULT_ROOT) -> Path:
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


@main.command()
@click.argument("corpus", nargs=-1)
@click.option("--glob", "glob_pattern", default=None, help="Files to read from CORPUS directories, e.g. '*.py'.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the corpus (decoding is strict).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. [default: checkpoints/<corpus-name>/]")
@click.option("--resume", is_flag=True, help="Continue the run in --out (default: the most recent run) exactly where it stopped.")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default=ModelConfig.cell, show_default=True)
@click.option("--hidden-size", type=click.IntRange(1), default=ModelConfig.hidden_size, show_default=True)
@click.option("--num-layers", type=click.IntRange(1), default=ModelConfig.num_layers, show_default=True)
@click.option("--embedding-size", type=click.IntRange(1), default=ModelConfig.embedding_size, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=ModelConfig.dropout, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=TrainConfig.batch_size, show_default=True)
@click.option("--seq-len", type=click.IntRange(1), default=TrainConfig.seq_len, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=TrainConfig.learning_rate, show_default=True)
@click.option("--warmup-steps", type=click.IntRange(0), default=TrainConfig.warmup_steps, show_default=True)
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
def train(ctx: click.Context, corpus, glob_pattern, encoding, out, resume, cell, hidden_size, num_layers, embedding_size,
          dropout, batch_size, seq_len, lr, warmup_steps, weight_decay, grad_clip, max_steps, time_budget, eval_every,
          val_fraction, log_every, preview_chars, seed, device):
    """Train a character model on CORPUS (files, directories, or - for stdin; default: bundled Shakespeare).

    Writes latest.safetensors, best.safetensors, metrics.jsonl and samples.txt to the run directory.
    Ctrl-C saves and stops; --resume continues.
    """
    seconds = parse_duration(time_budget)
    if max_steps is not None and not _explicit(ctx, "time_budget"):
        seconds = None
    config = TrainConfig(batch_size=batch_size, seq_len=seq_len, learning_rate=lr, warmup_steps=warmup_steps,
                         weight_decay=weight_decay, grad_clip=grad_clip, max_steps=max_steps, time_budget=seconds,
                         eval_every=eval_every, val_fraction=val_fraction, log_every=log_every,
                         preview_chars=preview_chars, seed=seed)
    if resume:
        run = Path(out) if out else ckpt.resolve(None).parent
        saved = ckpt.load(run / ckpt.LATEST) if (run / ckpt.LATEST).is_file() else None
        if saved is None and not corpus:
            raise CheckpointError(f"{run}: nothing to resume (no {ckpt.LATEST}); give the corpus to start it afresh")
        if saved is not None:  # the run's own recipe, with only what was typed now changed
            stored = TrainConfig.from_dict(saved.train.get("train_config", {}))
            overrides = {f: v for f, v in config.to_dict().items()
                         if _explicit(ctx, {"learning_rate": "lr"}.get(f, f))
                         or (f == "time_budget" and (_explicit(ctx, "time_budget") or _explicit(ctx, "max_steps")))}
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
        out_dir = Path(out) if out else _default_out(files)
    corpus = _prepare(files, encoding, out_dir)
    spec = {"paths": [str(Path(f).resolve()) if f != "-" else "-" for f in files], "encoding": encoding}
    model_config = ModelConfig(vocab_size=1, cell=cell, embedding_size=embedding_size, hidden_size=hidden_size,
                               num_layers=num_layers, dropout=dropout)
    _run_training(corpus, out_dir, model_config, config, resume, spec, device)


def _prepare(files, encoding: str, cache_dir: Path | None) -> Corpus:
    """Encode the corpus (cached in the run directory), with a progress bar when it is big."""
    from tqdm import tqdm

    sizes = sum(Path(f).stat().st_size for f in files if f != "-")
    with tqdm(total=2 * sizes, unit="B", unit_scale=True, desc="preparing corpus", file=sys.stderr,
              disable=sizes < (32 << 20), mininterval=0.5) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        return prepare(files, encoding=encoding, cache_dir=cache_dir, progress=progress)


def _run_training(corpus, out_dir, model_config, config, resume, spec, device) -> None:
    from tqdm import tqdm

    console = _stderr_console()
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


@main.command("prepare")
@click.argument("corpus", nargs=-1, required=True)
@click.option("--glob", "glob_pattern", default=None, help="Files to read from CORPUS directories, e.g. '*.c'.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to prepare for. [default: checkpoints/<corpus-name>/]")
def prepare_command(corpus, glob_pattern, encoding, out):
    """Check and encode CORPUS ahead of training (in bounded memory; `train` reuses the result)."""
    files = corpus_files(corpus, glob_pattern)
    out_dir = Path(out) if out else _default_out(files)
    started = time.perf_counter()
    prepared = _prepare(files, encoding, out_dir)
    seconds = time.perf_counter() - started
    size = sum(Path(f).stat().st_size for f in files if f != "-")
    click.echo(f"{len(prepared):,} characters, {len(prepared.vocab):,} distinct, ids as {prepared.ids.dtype} in "
               f"{out_dir}/ ({size / 1e6:,.1f} MB in {seconds:.1f}s, {size / 1e6 / max(seconds, 1e-9):,.0f} MB/s)", err=True)


# --------------------------------------------------------------------------------------------- sample


@main.command()
@click.argument("checkpoint", required=False)
@click.option("--length", type=click.IntRange(0), default=SampleConfig.length, show_default=True,
              help="Characters to generate per sample.")
@click.option("--temperature", type=click.FloatRange(0), default=SampleConfig.temperature, show_default=True,
              help="0 picks the most likely character every time.")
@click.option("--top-k", type=click.IntRange(1), default=None, help="Sample only from the k most likely characters.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None, help="Nucleus sampling threshold.")
@click.option("--prime", default="", help="Text the sample starts from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--stop", multiple=True, help="End a sample when this text appears (repeatable; '\\n' = line break).")
@click.option("--num-samples", type=click.IntRange(1), default=SampleConfig.num_samples, show_default=True)
@click.option("--seed", type=int, default=None, help="Same seed, same text.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default=SampleConfig.unknown, show_default=True,
              help="What to do with prime characters the model never saw.")
@click.option("--device", default=None)
def sample(checkpoint, length, temperature, top_k, top_p, prime, prime_file, stop, num_samples, seed, unknown, device):
    """Stream text from a model (CHECKPOINT: a file or run directory; default: the most recent run)."""
    loaded, model, path = _load(checkpoint, device)
    if prime_file:
        prime = read_corpus([prime_file]) if Path(prime_file).stat().st_size > 1 else Path(prime_file).read_text("utf-8")
    config = SampleConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples,
                          seed=seed, stop=tuple(unescape(s) for s in stop), unknown=unknown)
    prime = prepare_prime(loaded.vocab, prime, unknown)
    out = sys.stdout
    started, produced = time.perf_counter(), 0
    if num_samples == 1:
        out.write(prime)
        for (piece,) in generate(model, loaded.vocab, prime, config):
            out.write(piece)
            out.flush()
            produced += 1
        out.write("\n")
    else:  # a batch finishes together; print each sample whole, separated by a blank line
        parts = [[prime] for _ in range(num_samples)]
        for pieces in generate(model, loaded.vocab, prime, config):
            produced += num_samples
            for b, piece in enumerate(pieces):
                parts[b].append(piece)
        separator = "\n" if config.stop else "\n\n"
        out.write(separator.join("".join(p).rstrip("\n") for p in parts) + "\n")
    out.flush()
    rate = produced / max(time.perf_counter() - started, 1e-9)
    click.echo(f"[{produced} characters at {rate:,.0f} chars/s from {path}]", err=True)


# -------------------------------------------------------------------------------------------- inspect


@main.command()
@click.argument("checkpoint", required=False)
@click.option("--neuron", "neurons", default="0", show_default=True, help="Unit index, or several: 3,42,100.")
@click.option("--layer", type=int, default=None, help="Layer, counted from 1. [default: the last]")
@click.option("--vector", default="hidden", show_default=True,
              help="hidden | cell | input | forget | output | candidate (LSTM); reset | update | candidate | hidden (GRU).")
@click.option("--text", default=None, help="Text to run through the model.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--length", type=click.IntRange(1), default=400, show_default=True,
              help="Without --text: length of a fresh sample to inspect.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of that sample.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True)
@click.option("--device", default=None)
def inspect(checkpoint, neurons, layer, vector, text, text_file, length, seed, unknown, fmt, device):
    """Show one neuron's activity over a text, character by character (red negative, blue positive)."""
    from rich.console import Console

    from .render import json_dump, neuron_view, tsv_lines

    loaded, model, path = _load(checkpoint, device)
    config = loaded.config
    layer = config.num_layers if layer is None else layer
    try:
        units = [int(n) for n in neurons.split(",") if n.strip()]
    except ValueError:
        raise click.BadParameter(f"{neurons!r}: give unit numbers like 42 or 3,42,100", param_hint="--neuron") from None
    for unit in units:
        check_neuron(config.num_layers, config.hidden_size, config.vectors, layer, vector, unit)
    if text_file:
        text = read_corpus([text_file])
    if text is None:
        from .sample import sample_text

        text = sample_text(model, loaded.vocab, "", SampleConfig(length=length, seed=seed))[0]
    text = prepare_prime(loaded.vocab, text, unknown, what="text")
    if not text:
        raise NeuronError("the text to inspect is empty")
    result = trace(model, loaded.vocab, text, vectors=[vector])
    columns = {f"L{layer}.{vector}[{u}]": result.values(layer, vector, u).tolist() for u in units}
    out = sys.stdout
    if fmt == "tsv":
        for line in tsv_lines(text, columns):
            out.write(line + "\n")
    elif fmt == "json":
        out.write(json_dump(text, columns, {"checkpoint": str(path), "layer": layer, "vector": vector,
                                            "neurons": units}) + "\n")
    else:
        console = Console(file=out, highlight=False, soft_wrap=False)
        for unit, values in zip(units, columns.values()):
            console.print(neuron_view(f"layer {layer} · {vector} · neuron {unit}  ({path})", text, values,
                                      vector in GATE_VECTORS))
