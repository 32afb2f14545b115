"""`charlstm export`: a run's model, weights only, as a small folder to share."""

from __future__ import annotations

import click

from .help import Command


@click.command("export", cls=Command)
@click.argument("run", required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="New or empty folder to write (best.safetensors, metrics.jsonl, samples.txt).")
def command(run, out):
    """Export a run's best model, weights only, to share.

    RUN: a run folder or a checkpoint; the most recent run if none. What only resuming needs
    (optimizer moments, RNG and carried state) is left out: about a third of the size. sample,
    inspect, score, write and report work on the folder; train --resume does not.

    \b
      charlstm export checkpoints/austen --out models/austen
    """
    from ..runs.export import export_run

    done = export_run(run, out)
    click.echo(f"wrote {done.path}: {done.bytes_after / 1e6:,.1f} MB (from {done.bytes_before / 1e6:,.1f} MB in "
               f"{done.source})" + (f", with {' and '.join(done.copied)}" if done.copied else ""), err=True)
