"""`charlstm sample`: stream text from a model.

Options are named like the `SampleConfig` fields they set, and the config is built from them.
"""

from __future__ import annotations

import sys
import time

import click

from ..config import MIN_TEMPERATURE, SampleConfig, config_from
from .common import Notices
from .help import Command
from .params import DEVICE_HELP, device_option, edit_vector, field_option, parse_edits, threads_option, unescape_all

#: Option names by section of `charlstm sample --help`.
SECTIONS = {
    "Sampling": ("length", "temperature", "top_k", "top_p", "num_samples", "seed", "stop"),
    "Prime": ("prime", "prime_file", "unknown"),
    "Units pinned": ("clamps", "ablations"),
    "Output": ("novelty", "fmt"),
}


@click.command("sample", cls=Command, sections=SECTIONS)
@click.argument("checkpoint", required=False)
@field_option(SampleConfig, "length", help="Characters to generate per sample.")
@field_option(SampleConfig, "temperature", help=f"0 picks the most likely character every time; else at least "
                                                f"{MIN_TEMPERATURE:g}.")
@field_option(SampleConfig, "top_k", show_default=False, help="Sample only from the k most likely characters.")
@field_option(SampleConfig, "top_p", show_default=False,
              help="Sample only from the fewest most likely characters whose probability reaches p.")
@field_option(SampleConfig, "num_samples", help="Samples to generate, side by side in batches.")
@field_option(SampleConfig, "seed", help="Same seed, same text.")
@click.option("--stop", multiple=True, callback=unescape_all,
              help="End a sample when this text appears (repeatable; '\\n' = line break).")
@click.option("--prime", default="", help="Text the sample starts from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File whose text the sample starts from.")
@field_option(SampleConfig, "unknown", help="What to do with prime characters the model never saw.")
@click.option("--clamp", "clamps", multiple=True, metavar="LAYER:NEURON=VALUE",
              help="Pin a unit at VALUE at every step, the prime's too: an LSTM's cell state, a GRU's or RNN's "
                   "hidden state (repeatable; layers from 1).")
@click.option("--ablate", "ablations", multiple=True, metavar="LAYER:NEURON",
              help="Pin a unit at 0, as --clamp LAYER:NEURON=0 (repeatable).")
@click.option("--novelty", is_flag=True,
              help="Check each sample against the training corpus for copied text (on stderr).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON record on stdout with the samples (and their --novelty figures).")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
@threads_option
def command(checkpoint, prime, prime_file, clamps, ablations, device, threads, novelty, fmt, **params):
    """Stream text from a model.

    CHECKPOINT: a checkpoint file, a run directory or a shipped model's name (english); the
    most recent run if none. The samples go to
    stdout, what was made and how fast to stderr.
    """
    from ..data.reading import read_text_file
    from ..runtime import load_model

    loaded, model, path = load_model(checkpoint, device, threads)
    edits = parse_edits(clamps, ablations, loaded.config)
    if prime_file:
        prime = read_text_file(prime_file)
    config = config_from(SampleConfig, params)
    prime = loaded.vocab.admit(prime, config.unknown, "prime")       # once: the samples start from it as shown
    corpus = None
    if novelty:                      # before sampling: a missing corpus is an error, not a wasted sample
        from ..scoring.novelty import run_corpus

        corpus = run_corpus(loaded, path, Notices())
    kept: list[str] | None = [] if (novelty or fmt == "json") else None
    started = time.perf_counter()
    produced = _write_samples(model, loaded.vocab, prime, config, edits,
                              _Discard() if fmt == "json" else sys.stdout, keep=kept)
    rate = produced / max(time.perf_counter() - started, 1e-9)
    pinned = "".join(f"; L{layer + 1}.{edit_vector(loaded.config)}[{unit}] = {value:g}"
                     for (layer, unit), value in edits.items())
    click.echo(f"[{produced:,} character{'' if produced == 1 else 's'} at {rate:,.0f} chars/s from {path}{pinned}]",
               err=True)
    if kept is not None:
        _report_samples(kept, prime, corpus, fmt, str(path))


class _Discard:
    """A sink for the streamed text when the samples go out as one JSON record instead."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _report_samples(samples: list[str], prime: str, corpus, fmt: str, source: str) -> None:
    """--format json: the record on stdout. --novelty as text: each sample's figures and highlighted
    copies on stderr, after the samples, so `sample --novelty > poem.txt` keeps a clean poem."""
    import json

    checks = [corpus.index.check(text, corpus.chars) for text in samples] if corpus is not None else None
    if fmt == "json":
        record = {"checkpoint": source, "prime": prime,
                  "samples": [{"text": text, **({"novelty": checks[i].to_dict()} if checks else {})}
                              for i, text in enumerate(samples)]}
        if corpus is not None:
            record["corpus"] = {"source": corpus.source, "index": corpus.cached}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    from ..views.novelty import novelty_view
    from .common import stderr_console

    console = stderr_console()
    for i, check in enumerate(checks or []):
        title = "memorisation check" + (f", sample {i + 1}" if len(checks) > 1 else "")
        console.print(novelty_view(check, title, f"{corpus.source}; index {corpus.cached}"))


def _write_samples(model, vocab, prime: str, config: SampleConfig, edits, out, keep: list | None = None) -> int:
    """Write the samples to `out`, each starting with the prime; return the characters generated.
    One sample streams as it is made. Many are made in bounded batches (`sampling.batches`); the
    samples of a batch finish together, so each is printed whole when its batch ends, separated by
    a blank line (by a line break when --stop ends them), and a batch of one streams. Memory stays
    within a batch (`sampling.BATCH_CHARS`) whatever --num-samples and --length are. With `keep`, each
    sample's generated text (the prime not included) is appended to it as well (--novelty, json)."""
    from ..generation.sampling import batches_from

    produced = 0
    stream = batches_from(model, vocab, prime, config, edits=edits)
    if config.num_samples == 1:
        out.write(prime)
        pieces = []
        _, steps = next(stream)                                      # one batch of one sample
        for (piece,) in steps:
            out.write(piece)
            out.flush()
            produced += 1
            if keep is not None:
                pieces.append(piece)
        if keep is not None:
            keep.append("".join(pieces))
        out.write("\n")
        out.flush()
        return produced
    separator = "\n" if config.stop else "\n\n"
    first = True
    for size, steps in stream:
        if size == 1:                      # a long sample: stream it, holding back only its final line breaks
            if not first:
                out.write(separator)
            line_breaks = _write_stripped(out, prime, 0)
            pieces = []
            for (piece,) in steps:
                line_breaks = _write_stripped(out, piece, line_breaks)
                out.flush()
                produced += 1
                if keep is not None:
                    pieces.append(piece)
            if keep is not None:
                keep.append("".join(pieces))
        else:
            parts = [[prime] for _ in range(size)]
            for pieces in steps:
                produced += size
                for sample, piece in zip(parts, pieces):
                    sample.append(piece)
            for sample in parts:
                if keep is not None:
                    keep.append("".join(sample[1:]))
                if not first:
                    out.write(separator)
                out.write("".join(sample).rstrip("\n"))
                first = False
        first = False
        out.flush()
    out.write("\n")
    out.flush()
    return produced


def _write_stripped(out, text: str, line_breaks: int) -> int:
    """Write `text` after the `line_breaks` held back before it, holding back the line breaks it
    ends with (so a streamed sample ends as `str.rstrip("\\n")` would end it); return those."""
    kept = text.rstrip("\n")
    if kept:
        while line_breaks:
            n = min(line_breaks, 1 << 16)
            out.write("\n" * n)
            line_breaks -= n
        out.write(kept)
    return line_breaks + len(text) - len(kept)
