"""`charlstm sample`: stream text from a model."""

from __future__ import annotations

import sys
import time

import click

from ..config import UNKNOWN_POLICIES, SampleConfig
from .common import load_model
from .params import edit_vector, parse_edits, unescape


@click.command("sample")
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
def command(checkpoint, length, temperature, top_k, top_p, prime, prime_file, stop, num_samples, seed, unknown, clamps,
           ablations, device):
    """Stream text from a model (CHECKPOINT: a file or run directory; default: the most recent run)."""
    from ..data import read_text_file
    from ..sample import generate, prepare_prime

    loaded, model, path = load_model(checkpoint, device)
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
    pinned = "".join(f"; L{layer + 1}.{edit_vector(loaded.config)}[{unit}] = {value:g}"
                     for (layer, unit), value in edits.items())
    click.echo(f"[{produced} characters at {rate:,.0f} chars/s from {path}{pinned}]", err=True)
