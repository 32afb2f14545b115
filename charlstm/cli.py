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
from .data import Corpus, CorpusError, corpus_files, default_corpus_path, prepare, read_corpus, read_tail, read_text_file
from .features import PARAMETERISED_FEATURES, feature_names
from .model import CELLS, GATE_VECTORS, ModelConfig
from .neurons import NeuronError, check_neuron, trace
from .sample import UNKNOWN_POLICIES, PrimeError, SampleConfig, generate, prepare_prime
from .synthetic import DEFAULT_COUNT, TASKS, task_parameters
from .train import StopRequest, TrainConfig, TrainingError, pick_device, refuse_if_busy, stop_on_signals
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
def train(ctx: click.Context, corpus, glob_pattern, encoding, out, resume, cell, hidden_size, num_layers, embedding_size,
          dropout, forget_bias, batch_size, seq_len, lr, warmup_steps, decay_fraction, weight_decay, grad_clip, max_steps, time_budget, eval_every,
          val_fraction, log_every, preview_chars, seed, device):
    """Train a character model on CORPUS (files, directories, or - for stdin; default: bundled Shakespeare).

    Writes latest.safetensors, best.safetensors, metrics.jsonl and samples.txt to the run directory.
    Ctrl-C saves and stops; --resume continues.
    """
    seconds = parse_duration(time_budget)
    if max_steps is not None and not _explicit(ctx, "time_budget"):
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
                               num_layers=num_layers, dropout=dropout, forget_bias=forget_bias)
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
@click.option("--clamp", "clamps", multiple=True, metavar="LAYER:NEURON=VALUE",
              help="Pin a unit at VALUE on every step, the prime included: the cell state of an LSTM, the hidden "
                   "state of a GRU or RNN. Layers count from 1 (repeatable).")
@click.option("--ablate", "ablations", multiple=True, metavar="LAYER:NEURON",
              help="Pin a unit at 0, as --clamp LAYER:NEURON=0 (repeatable).")
@click.option("--device", default=None)
def sample(checkpoint, length, temperature, top_k, top_p, prime, prime_file, stop, num_samples, seed, unknown, clamps,
           ablations, device):
    """Stream text from a model (CHECKPOINT: a file or run directory; default: the most recent run)."""
    loaded, model, path = _load(checkpoint, device)
    edits = parse_edits(clamps, ablations, loaded.config)
    if prime_file:
        prime = read_text_file(prime_file)
    config = SampleConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples,
                          seed=seed, stop=tuple(unescape(s) for s in stop), unknown=unknown)
    prime = prepare_prime(loaded.vocab, prime, unknown)
    out = sys.stdout
    started, produced = time.perf_counter(), 0
    if num_samples == 1:
        out.write(prime)
        for (piece,) in generate(model, loaded.vocab, prime, config, edits=edits):
            out.write(piece)
            out.flush()
            produced += 1
        out.write("\n")
    else:  # a batch finishes together; print each sample whole, separated by a blank line
        parts = [[prime] for _ in range(num_samples)]
        for pieces in generate(model, loaded.vocab, prime, config, edits=edits):
            produced += num_samples
            for b, piece in enumerate(pieces):
                parts[b].append(piece)
        separator = "\n" if config.stop else "\n\n"
        out.write(separator.join("".join(p).rstrip("\n") for p in parts) + "\n")
    out.flush()
    rate = produced / max(time.perf_counter() - started, 1e-9)
    pinned = "".join(f"; L{layer + 1}.{_edit_vector(loaded.config)}[{unit}] = {value:g}"
                     for (layer, unit), value in edits.items())
    click.echo(f"[{produced} characters at {rate:,.0f} chars/s from {path}{pinned}]", err=True)


def _edit_vector(config: ModelConfig) -> str:
    return "cell" if config.has_cell_state else "hidden"


def parse_edits(clamps: tuple[str, ...], ablations: tuple[str, ...], config: ModelConfig) -> dict[tuple[int, int], float]:
    """`--clamp 1:42=0.9` and `--ablate 2:7` as Stepper edits: 0-based (layer, unit) → value."""
    edits: dict[tuple[int, int], float] = {}
    for option, specs in (("--clamp", clamps), ("--ablate", ablations)):
        for spec in specs:
            pattern = r"\s*(\d+)\s*:\s*(\d+)\s*=\s*(\S+)\s*" if option == "--clamp" else r"\s*(\d+)\s*:\s*(\d+)\s*"
            match = re.fullmatch(pattern, spec)
            usage = "LAYER:NEURON=VALUE, e.g. 1:42=0.9" if option == "--clamp" else "LAYER:NEURON, e.g. 2:7"
            if not match:
                raise click.BadParameter(f"{spec!r}: give {usage}", param_hint=option)
            layer, unit = int(match.group(1)), int(match.group(2))
            try:
                value = float(match.group(3)) if option == "--clamp" else 0.0
            except ValueError:
                raise click.BadParameter(f"{spec!r}: {match.group(3)!r} is not a number", param_hint=option) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise click.BadParameter(f"{spec!r}: the value must be a finite number", param_hint=option)
            check_neuron(config.num_layers, config.hidden_size, config.vectors, layer, _edit_vector(config), unit)
            if (layer - 1, unit) in edits:
                raise click.BadParameter(f"unit {layer}:{unit} is pinned twice; give it once", param_hint=option)
            edits[(layer - 1, unit)] = value
    return edits


# -------------------------------------------------------------------------------------------- inspect

#: Characters read by --find, --top and --stats when no text is given.
ANALYSIS_LENGTH = 20_000
#: Characters of a fresh sample shown when no text is given.
VIEW_LENGTH = 400


def _parse_numbers(spec: str, every: range, option: str, what: str) -> list[int]:
    """'42', '3,42,100', '0-15', 'all' (= every) → numbers. Range checks are the caller's, with
    check_neuron, whose errors name the valid range."""
    if spec.strip().lower() == "all":
        return list(every)
    numbers: list[int] = []
    try:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            low, dash, high = part.partition("-")
            numbers += list(range(int(low), int(high) + 1)) if dash and low else [int(part)]
    except ValueError:
        raise click.BadParameter(f"{spec!r}: give {what} like 42, 3,42,100, 0-15 or all", param_hint=option) from None
    if not numbers:
        raise click.BadParameter(f"{spec!r}: no {what} given", param_hint=option)
    return list(dict.fromkeys(numbers))


def _parse_vectors(spec: str | None, config: ModelConfig, default: tuple[str, ...]) -> list[str]:
    if spec is None:
        return list(default)
    names = list(config.vectors) if spec.strip().lower() == "all" else [v.strip() for v in spec.split(",") if v.strip()]
    for name in names:
        if name not in config.vectors:
            raise NeuronError(f"vector {name!r} not recorded for a {config.cell} cell; choose from {', '.join(config.vectors)}")
    if not names:
        raise click.BadParameter(f"{spec!r}: no vector given", param_hint="--vector")
    return list(dict.fromkeys(names))


def _corpus_tail(loaded, length: int) -> tuple[str, str] | None:
    """The last `length` characters of the corpus the model was trained on, if its files are still
    there, and a note saying how much of that the model held out (never trained on)."""
    source = loaded.train.get("corpus") or {}
    paths = [Path(p) for p in source.get("paths") or []]
    if not paths or any(str(p) == "-" or not p.is_file() for p in paths):
        return None
    encoding = source.get("encoding", "utf-8")
    parts: list[str] = []
    try:
        for path in reversed(paths):
            parts.insert(0, read_tail(path, length, encoding))
            if sum(map(len, parts)) >= length:
                break
    except (CorpusError, OSError, UnicodeDecodeError, LookupError):
        return None
    text = "".join(parts)
    tail = text[-length:]
    line_start = tail.find("\n", 0, 200)
    if 0 <= line_start < len(tail) - 1 and len(text) > length:
        tail = tail[line_start + 1 :]  # start at a line, not mid-word
    total = int(loaded.train.get("corpus_chars") or len(text))
    val_fraction = float((loaded.train.get("train_config") or {}).get("val_fraction", 0.0))
    held_out = int(round(total * val_fraction))
    name = paths[-1].name if len(paths) == 1 else f"{len(paths)} files"
    unseen = ("all held out from training" if held_out >= len(tail) else
              f"the last {held_out:,} held out from training, the rest trained on" if held_out else "all trained on")
    return tail, f"the last {len(tail):,} characters of the training corpus {name} ({unseen})"


def _inspect_text(loaded, model, text, text_file, length, seed, unknown, analysis: bool) -> str:
    """The text to inspect: --text, --text-file, else (for --find/--top/--stats) the tail of the
    training corpus, else a fresh sample. Says on stderr where a text it chose came from."""
    if text_file:
        text = read_corpus([text_file])
    if text is None:
        length = length or (ANALYSIS_LENGTH if analysis else VIEW_LENGTH)
        tail = _corpus_tail(loaded, length) if analysis else None
        if tail is not None:
            text, note = tail
        else:
            from .sample import sample_text

            text = sample_text(model, loaded.vocab, "", SampleConfig(length=length, seed=seed))[0]
            note = f"a fresh {len(text):,}-character sample (seed {seed})" + (
                "; the training corpus is not at hand, give --text-file for real text" if analysis else "")
        click.echo(f"charlstm: reading {note}", err=True)
    text = prepare_prime(loaded.vocab, text, unknown, what="text")
    if not text:
        raise NeuronError("the text to inspect is empty")
    return text


@main.command()
@click.argument("checkpoint", required=False)
@click.option("--neuron", "neurons", default=None,
              help="Unit index from 0; several: 3,42,100 or 0-15 or all. [default: 0]")
@click.option("--layer", "layers", default=None,
              help="Layer from 1; several: 1,2 or all. [default: the last; every layer for --find, --stats, --html]")
@click.option("--vector", "vectors", default=None,
              help="hidden | cell | input | forget | output | candidate (LSTM); reset | update | candidate | hidden (GRU); "
                   "several: cell,hidden. [default: hidden; every vector for --html]")
@click.option("--all-vectors", is_flag=True, help="Every vector of the neuron, stacked line by line (the seeds' six strips).")
@click.option("--text", default=None, help="Text to run through the model.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to run through the model ('-' for stdin).")
@click.option("--length", type=click.IntRange(1), default=None,
              help=f"Without --text: characters to read. [default: a fresh {VIEW_LENGTH}-character sample; for --find, "
                   f"--top and --stats the last {ANALYSIS_LENGTH:,} characters of the model's training corpus]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of a fresh sample.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text draws in the terminal; tsv and json print the numbers.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write one self-contained HTML page: the text coloured by any neuron of any layer and vector, "
                   "chosen in the page, values on hover.")
@click.option("--find", "find_feature", metavar="FEATURE", default=None,
              help="Rank every unit by correlation with a feature of the text: "
                   f"{', '.join([*feature_names(), *PARAMETERISED_FEATURES])}.")
@click.option("--find-regex", metavar="PATTERN", default=None, help="As --find, the feature being 'inside a match of PATTERN'.")
@click.option("--top", type=click.IntRange(1), default=None,
              help="With --find: how many units to list [default: 10]. Otherwise: the N windows of text where --neuron "
                   "is most positive, and the N where it is most negative.")
@click.option("--window", type=click.IntRange(8), default=60, show_default=True,
              help="Characters per window shown by --find and --top.")
@click.option("--stats", is_flag=True,
              help="How often each gate of each layer is left-saturated (< 0.1) or right-saturated (> 0.9).")
@click.option("--device", default=None)
def inspect(checkpoint, neurons, layers, vectors, all_vectors, text, text_file, length, seed, unknown, fmt, html_path,
            find_feature, find_regex, top, window, stats, device):
    """Look inside a model's neurons as it reads a text (red negative, blue positive; gates white→green).

    \b
      charlstm inspect --neuron 42 --all-vectors --text-file poem.txt
      charlstm inspect --neuron 3,42 --layer all --format tsv
      charlstm inspect --html page.html --text-file poem.txt
      charlstm inspect --find double-quote          # which units track quotes?
      charlstm inspect --top 5 --neuron 42          # where does unit 42 fire?
      charlstm inspect --stats --format json
    """
    finding = find_feature is not None or find_regex is not None
    modes = [name for name, on in (("--find", finding), ("--top", top is not None and not finding), ("--stats", stats),
                                   ("--html", html_path is not None)) if on]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} cannot be combined; choose one")
    if find_feature is not None and find_regex is not None:
        raise click.UsageError("give --find FEATURE or --find-regex PATTERN, not both")
    if html_path is not None and fmt != "text":
        raise click.UsageError("--html writes a page; --format does not apply to it")
    if top is not None and not finding and neurons is None:
        raise click.UsageError("--top lists the windows of one neuron: give --neuron K (or rank neurons with --find)")

    from .neurons import feature_values

    if finding:  # an unknown feature or a bad regex fails before any text is read or traced
        feature_values(find_feature, "", regex=find_regex)
    loaded, model, path = _load(checkpoint, device)
    config = loaded.config
    every_layer = range(1, config.num_layers + 1)
    layer_list = (_parse_numbers(layers, every_layer, "--layer", "layers") if layers is not None
                  else list(every_layer) if (finding or stats or html_path) else [config.num_layers])
    vector_list = _parse_vectors("all" if all_vectors else vectors, config,
                                 config.vectors if html_path else ("hidden",))
    units = _parse_numbers(neurons, range(config.hidden_size), "--neuron", "neurons") if neurons is not None else [0]
    for layer in layer_list:
        for vector in vector_list:
            for unit in units:
                check_neuron(config.num_layers, config.hidden_size, config.vectors, layer, vector, unit)
    if (finding or top is not None) and len(vector_list) > 1:
        raise click.UsageError("--find and --top look at one vector: give --vector NAME")
    if top is not None and not finding and (len(layer_list) > 1 or len(units) > 1):
        raise click.UsageError("--top lists the windows of one neuron: give one --neuron and one --layer")
    text = _inspect_text(loaded, model, text, text_file, length, seed, unknown, analysis=bool(finding or top or stats))
    if finding:
        _find(model, loaded.vocab, path, text, find_feature, find_regex, vector_list[0], layer_list, top or 10, window, fmt)
    elif top is not None:
        _top(model, loaded.vocab, path, text, layer_list[0], vector_list[0], units[0], top, window, fmt)
    elif stats:
        _stats(model, loaded.vocab, path, text, layer_list, fmt)
    elif html_path is not None:
        _html(model, loaded.vocab, path, text, layer_list, vector_list, layers, vectors, units[0], html_path)
    else:
        _view(model, loaded.vocab, path, text, layer_list, vector_list, units, fmt)


def _console():
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _view(model, vocab, path, text, layers, vectors, units, fmt) -> None:
    from .render import is_gate, json_dump, neuron_view, stacked_view, tsv_lines, vector_scale

    result = trace(model, vocab, text, vectors=vectors, layers=layers)
    columns = {f"L{layer}.{vector}[{unit}]": result.values(layer, vector, unit).tolist()
               for layer in layers for unit in units for vector in vectors}
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in tsv_lines(text, columns))
        return
    if fmt == "json":
        sys.stdout.write(json_dump(text, columns, {"checkpoint": str(path), "cell": model.config.cell, "layers": layers,
                                                   "vectors": vectors, "neurons": units}) + "\n")
        return
    console = _console()
    for layer in layers:
        for unit in units:
            if len(vectors) == 1:
                vector = vectors[0]
                values = columns[f"L{layer}.{vector}[{unit}]"]
                console.print(neuron_view(f"layer {layer} · {vector} · neuron {unit}   {path}", text, values,
                                          is_gate(vector), vector_scale(vector, values)))
            else:
                rows = {}
                for vector in vectors:
                    values = columns[f"L{layer}.{vector}[{unit}]"]
                    rows[vector] = (values, is_gate(vector), vector_scale(vector, values))
                console.print(stacked_view(f"layer {layer} · neuron {unit}   {path}", text, rows, console.width))
            console.print()


def _find(model, vocab, path, text, feature_name, regex, vector, layers, top, window, fmt) -> None:
    import json

    from .neurons import feature_values, feature_window, find_neurons
    from .render import find_view, is_gate, records_tsv, vector_scale

    feature = feature_values(feature_name, text, regex=regex)
    name = feature_name if feature_name is not None else f"regex:{regex}"
    result = trace(model, vocab, text, vectors=[vector], layers=layers)
    search = find_neurons(result, feature, vector, layers, top=top)
    records = [{"rank": k, "layer": u.layer, "unit": u.unit, "r": round(u.r, 6)} for k, u in enumerate(search.ranked, 1)]
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in records_tsv(records, ["rank", "layer", "unit", "r"]))
    elif fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "feature": name, "vector": vector, "layers": layers,
                                     "characters": len(text), "units_searched": search.num_units,
                                     "chance": round(search.chance, 6), "units": records}, ensure_ascii=False) + "\n")
    else:
        start, end = feature_window(feature, window)
        rows = []
        for u in search.ranked:
            values = result.values(u.layer, vector, u.unit).tolist()
            rows.append((u.layer, u.unit, u.r, values, is_gate(vector), vector_scale(vector, values)))
        title = (f"{vector} units most correlated with {name} over {len(text):,} characters "
                 f"({search.num_units} units searched)   {path}")
        caption = (f"r: Pearson correlation with the feature. Chance: |r| up to {search.chance:.3f} with the feature "
                   f"shifted along the text; units well above it track the feature.")
        _console().print(find_view(title, text, (start, end), feature, rows, caption))


def _top(model, vocab, path, text, layer, vector, unit, n, window, fmt) -> None:
    import json

    from .neurons import top_windows
    from .render import is_gate, records_tsv, vector_scale, windows_rows, windows_view

    values = trace(model, vocab, text, vectors=[vector], layers=[layer]).values(layer, vector, unit)
    positive, negative = top_windows(values, n, window)
    if fmt == "text":
        vals = values.tolist()
        title = f"layer {layer} · {vector} · neuron {unit} over {len(text):,} characters   {path}"
        _console().print(windows_view(title, text, vals, is_gate(vector), vector_scale(vector, vals), positive, negative))
        return
    records = windows_rows(positive, negative, text)
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in
                              records_tsv(records, ["kind", "rank", "value", "peak", "start", "end", "text"]))
    else:
        sys.stdout.write(json.dumps({"checkpoint": str(path), "layer": layer, "vector": vector, "neuron": unit,
                                     "characters": len(text), "windows": records}, ensure_ascii=False) + "\n")


def _stats(model, vocab, path, text, layers, fmt) -> None:
    import json

    from .neurons import SATURATION_HIGH, SATURATION_LOW, saturation
    from .render import records_tsv, stats_records, stats_table

    gates = [v for v in model.config.vectors if v in GATE_VECTORS]
    if not gates:
        raise NeuronError(f"a {model.config.cell} cell has no gates to measure; --stats needs an LSTM or a GRU")
    result = saturation(trace(model, vocab, text, vectors=gates, layers=layers))
    if fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "characters": len(text), "low": SATURATION_LOW,
                                     "high": SATURATION_HIGH, "gates": stats_records(result)}) + "\n")
    elif fmt == "tsv":
        rows = [{"layer": s.layer, "gate": s.gate, "unit": unit, "left": float(s.left[unit]), "right": float(s.right[unit])}
                for s in result for unit in range(len(s.left))]
        sys.stdout.writelines(line + "\n" for line in records_tsv(rows, ["layer", "gate", "unit", "left", "right"]))
    else:
        _console().print(stats_table(f"gate saturation over {len(text):,} characters   {path}", result,
                                     SATURATION_LOW, SATURATION_HIGH))


def _html(model, vocab, path, text, layers, vectors, layer_spec, vector_spec, unit, html_path) -> None:
    from .page import build_page, page_chars

    config = model.config
    shown = page_chars(len(text), len(layers), len(vectors), config.hidden_size)
    notice = ""
    if shown < len(text):
        notice = (f"This page shows the first {shown:,} of {len(text):,} characters: it holds every unit of "
                  f"{len(layers)} layer(s) × {len(vectors)} vector(s). For more characters, pick fewer with "
                  f"--layer and --vector (e.g. --vector hidden,cell).")
        click.echo(f"charlstm: {notice}", err=True)
    text = text[:shown]
    result = trace(model, vocab, text, vectors=vectors, layers=layers)
    first_layer = layers[-1] if layer_spec is None else layers[0]
    first_vector = "hidden" if vector_spec is None and "hidden" in vectors else vectors[0]
    page = build_page(result, str(path), first_layer, first_vector, unit, notice)
    Path(html_path).write_text(page, encoding="utf-8")
    click.echo(f"charlstm: wrote {html_path} ({len(page.encode('utf-8')) / 1e6:.1f} MB: {shown:,} characters, "
               f"{len(layers)} layer(s) × {len(vectors)} vector(s) × {config.hidden_size} units)", err=True)


# ---------------------------------------------------------------------------------------------- score


@main.command()
@click.argument("checkpoint", required=False)
@click.option("--text", default=None, help="Text to score.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to score ('-' for stdin).")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text: bits per character, a surprisal strip and the biggest surprises; tsv / json: every character.")
@click.option("--device", default=None)
def score(checkpoint, text, text_file, unknown, fmt, device):
    """Bits per character of a text under a model, and how surprised it is by each character.

    The first character is context only: it is never predicted, so a text of T characters has
    T − 1 scores. Lower is better; a blind guess among the V characters of the vocabulary costs log2 V bits.
    """
    import json
    import math

    from .neurons import score_text
    from .render import records_tsv, score_view

    if (text is None) == (text_file is None):
        raise click.UsageError("give the text to score with --text or --text-file (not both)")
    loaded, model, path = _load(checkpoint, device)
    if text_file:
        text = read_corpus([text_file])
    text = prepare_prime(loaded.vocab, text, unknown, what="text")
    result = score_text(model, loaded.vocab, text)
    expected = [loaded.vocab.chars[int(i)] for i in result.predicted]
    bits = [float(b) for b in result.bits]
    if fmt == "tsv":
        records = [{"position": t + 1, "char": text[t + 1], "bits": b, "expected": expected[t]} for t, b in enumerate(bits)]
        sys.stdout.writelines(line + "\n" for line in records_tsv(records, ["position", "char", "bits", "expected"]))
    elif fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "bits_per_char": round(result.bits_per_char, 6),
                                     "characters": len(text), "predicted_characters": len(bits), "text": text,
                                     "surprisal_bits": [round(b, 6) for b in bits], "expected": expected},
                                    ensure_ascii=False) + "\n")
    else:
        title = f"{result.bits_per_char:.3f} bits per character   {path}"
        _console().print(score_view(title, text, bits, expected, math.log2(max(len(loaded.vocab), 2)),
                                    show_strip=len(text) <= 20_000))


# --------------------------------------------------------------------------------------------- corpus


def _corpus_default(task: str, name: str) -> str:
    return f"[default: {task_parameters(task)[name]}]"


@main.command()
@click.argument("task", type=click.Choice(list(TASKS)))
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write, one sequence per line ('-' for stdout).")
@click.option("--count", type=click.IntRange(0), default=DEFAULT_COUNT, show_default=True, help="Sequences (lines) to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same corpus.")
@click.option("--min-n", type=click.IntRange(1), default=None,
              help=f"counter, selective-counter: fewest a's. {_corpus_default('counter', 'min_n')}")
@click.option("--max-n", type=click.IntRange(1), default=None,
              help=f"counter, selective-counter: most a's. {_corpus_default('counter', 'max_n')}")
@click.option("--min-noise", type=click.IntRange(0), default=None,
              help=f"selective-counter: fewest X's. {_corpus_default('selective-counter', 'min_noise')}")
@click.option("--max-noise", type=click.IntRange(0), default=None,
              help=f"selective-counter: most X's. {_corpus_default('selective-counter', 'max_noise')}")
@click.option("--min-gap", type=click.IntRange(1), default=None,
              help=f"memorizer: fewest x's between the letter and Y. {_corpus_default('memorizer', 'min_gap')}")
@click.option("--max-gap", type=click.IntRange(1), default=None,
              help=f"memorizer: most x's. {_corpus_default('memorizer', 'max_gap')}")
@click.option("--length", type=click.IntRange(1), default=None,
              help=f"copy: characters to copy. {_corpus_default('copy', 'length')}")
@click.option("--alphabet", default=None, help=f"copy: characters to draw from. {_corpus_default('copy', 'alphabet')}")
def corpus(task, out, count, seed, **options):
    """Write the corpus of a probe task from "Exploring LSTMs", one sequence per line.

    \b
      counter            a^N X b^N                       aaaXbbb
      selective-counter  a's with noise X's, Y, b^N      aXaaXXaYbbb
      memorizer          A|B, x's, Y, the letter again   AxxxYa  BxxYb
      copy               s X s                           abcXabc
    """
    from .synthetic import generate as generate_lines

    takes = task_parameters(task)
    params = {name: value for name, value in options.items() if value is not None}
    for name in params:
        if name not in takes:
            valid = ", ".join("--" + n.replace("_", "-") for n in takes)
            raise click.UsageError(f"--{name.replace('_', '-')} does not apply to {task}; it takes {valid}")
    try:
        lines = generate_lines(task, count, seed, **params)
    except ValueError as error:  # an empty or inverted range: name the options as typed
        raise click.UsageError(re.sub(r"\b(min|max)_(\w+)", lambda m: f"--{m[1]}-{m[2]}", str(error))) from None
    text = "".join(line + "\n" for line in lines)
    if out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(out).write_text(text, encoding="utf-8", newline="\n")
    shown = {**takes, **params}
    settings = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in shown.items())
    click.echo(f"[{len(lines):,} {task} lines, {len(text):,} characters ({settings} --seed {seed}) → "
               f"{'stdout' if out == '-' else out}]", err=True)
