"""`charlstm prepare`: check and encode a corpus ahead of training."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import notice_skipped, prepare_corpus
from .help import Command
from .params import Encoding


@click.command("prepare", cls=Command)
@click.argument("corpus", nargs=-1, required=True)
@click.option("--glob", default=None, help="Files to read from CORPUS directories, e.g. '*.c'.")
@click.option("--encoding", type=Encoding(), default="utf-8", show_default=True,
              help="The corpus's text encoding, decoded strictly.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to prepare for. [default: checkpoints/<corpus-name>/]")
def command(corpus, glob, encoding, out):
    """Check and encode a corpus ahead of training.

    CORPUS: files, directories, or - for standard input. Read in bounded memory into the run
    directory, where `train` reuses the result.
    """
    from ..data.reading import corpus_files
    from ..runs.folder import Run, default_out

    files = corpus_files(corpus, glob)
    notice_skipped(corpus, glob)
    run = Run(out) if out else default_out(files)
    started = time.perf_counter()
    # The same ownership rule and lock as a fresh `train`: a folder holding a run or the user's
    # files is refused before anything is read or written.
    with run.claim(resume=False):
        prepared = prepare_corpus(files, encoding, run)
    seconds = time.perf_counter() - started
    size = sum(Path(f).stat().st_size for f in files if f != "-")
    click.echo(f"{len(prepared):,} characters, {len(prepared.vocab):,} distinct, ids as {prepared.ids.dtype} in "
               f"{run.path}/ ({size / 1e6:,.1f} MB in {seconds:.1f}s, {size / 1e6 / max(seconds, 1e-9):,.0f} MB/s)", err=True)
