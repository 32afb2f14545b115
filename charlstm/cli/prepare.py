"""`charlstm prepare`: check and encode a corpus ahead of training."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .train import default_out, prepare_corpus


@click.command("prepare")
@click.argument("corpus", nargs=-1, required=True)
@click.option("--glob", "glob_pattern", default=None, help="Files to read from CORPUS directories, e.g. '*.c'.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to prepare for. [default: checkpoints/<corpus-name>/]")
def command(corpus, glob_pattern, encoding, out):
    """Check and encode CORPUS ahead of training (in bounded memory; `train` reuses the result)."""
    from ..data import corpus_files

    files = corpus_files(corpus, glob_pattern)
    out_dir = Path(out) if out else default_out(files)
    started = time.perf_counter()
    prepared = prepare_corpus(files, encoding, out_dir)
    seconds = time.perf_counter() - started
    size = sum(Path(f).stat().st_size for f in files if f != "-")
    click.echo(f"{len(prepared):,} characters, {len(prepared.vocab):,} distinct, ids as {prepared.ids.dtype} in "
               f"{out_dir}/ ({size / 1e6:,.1f} MB in {seconds:.1f}s, {size / 1e6 / max(seconds, 1e-9):,.0f} MB/s)", err=True)
