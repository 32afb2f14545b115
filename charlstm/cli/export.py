"""`charlstm export`: a run's model, weights only, as a small folder to share, or as one HTML page
that runs it in a browser."""

from __future__ import annotations

import os

import click

from .help import Command


@click.command("export", cls=Command)
@click.argument("run", required=False)
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="New or empty folder to write (best.safetensors, metrics.jsonl, samples.txt).")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="One self-contained HTML page that runs the model in a browser (an existing file is "
                   "replaced only if charlstm wrote it).")
@click.option("--atlas", "with_atlas", is_flag=True,
              help="With --html: index the units `inspect --atlas` labels, on the end of the training corpus.")
@click.option("--text-file", type=click.Path(dir_okay=False), default=None,
              help="With --atlas: the text the atlas reads, instead of the end of the training corpus (characters "
                   "the model never saw read as with inspect --unknown replace).")
def command(run, out, html_path, with_atlas, text_file):
    """Export a run's best model, weights only, to share.

    RUN: a run folder, a checkpoint or a shipped model's name (english); the most recent run if none. What only resuming needs
    (optimizer moments, RNG and carried state) is left out: about a third of the size. sample,
    inspect, score, write and report work on the folder; train --resume does not. --html writes a
    page that generates, guesses the next character as you type and shows any unit, with no
    network and nothing to install. Give --out, --html or both.

    \b
      charlstm export checkpoints/austen --out models/austen
      charlstm export checkpoints/austen --html austen.html
    """
    if out is None and html_path is None:
        raise click.UsageError("give --out FOLDER, --html FILE or both")
    if with_atlas and html_path is None:
        raise click.UsageError("--atlas labels the units of the --html page: give --html FILE")
    if text_file is not None and not with_atlas:
        raise click.UsageError("--text-file is the text --atlas reads: give --atlas")
    if html_path is not None:
        from ..files import check_output, is_charlstm_page

        check_output(html_path, "an HTML page charlstm wrote", is_charlstm_page)    # before any work: refuse first
    if run is not None and not os.path.lexists(run):                                 # a shipped model's name
        from ..runtime import find_model

        run = str(find_model(run).parent)
    page = None
    if html_path is not None:  # made first: a model whose page cannot be drawn is refused before the folder is written
        from ..views.web import export_page

        page, source = export_page(run, with_atlas, text_file,
                                   notice=lambda said: click.echo(f"charlstm: {said}", err=True))
    if out is not None:
        from ..runs.export import export_run

        done = export_run(run, out)
        click.echo(f"wrote {done.path}: {done.bytes_after / 1e6:,.1f} MB (from {done.bytes_before / 1e6:,.1f} MB in "
                   f"{done.source})" + (f", with {' and '.join(done.copied)}" if done.copied else ""), err=True)
    if page is not None:
        _write_page(html_path, page)
        click.echo(f"wrote {html_path}: {len(page) / 1e6:,.1f} MB, the model of {source} in one page", err=True)


def _write_page(html_path: str, page: bytes) -> None:
    from ..files import check_output, is_charlstm_page, write_file

    write_file(check_output(html_path, "an HTML page charlstm wrote", is_charlstm_page), page)
