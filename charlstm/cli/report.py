"""`charlstm report`: one self-contained HTML page for one or more runs."""

from __future__ import annotations

import click

from ..config import ReportConfig
from ..views.report import build_report, gather
from .common import Notices
from .help import Command
from .params import DEVICE_HELP, device_option, field_option


@click.command("report", cls=Command)
@click.argument("runs", nargs=-1)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The page to write (an existing file is replaced only if charlstm wrote it).")
@field_option(ReportConfig, "novelty_length",
              help="Characters of the sample checked against each run's training corpus (0: no check).")
@field_option(ReportConfig, "seed", help="Seed of that sample.")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
def command(runs, out, novelty_length, seed, device):
    """Write one HTML page that reports on one or more runs.

    RUNS: run folders or checkpoints; the most recent run if none. The page holds the loss and
    validation curves of every run on one chart, previews over time, configuration, corpus, timing,
    and a memorisation check of a fresh sample.

    \b
      charlstm report checkpoints/plays --out report.html
      charlstm report checkpoints/small checkpoints/large --out compare.html
    """
    from ..files import check_output, is_charlstm_page, write_file

    check_output(out, "a charlstm page", is_charlstm_page)           # before any work
    say = Notices()
    facts = [gather(run, novelty_length, seed, device, say) for run in (runs or (None,))]
    page = build_report(facts)
    write_file(check_output(out, "a charlstm page", is_charlstm_page), page.encode("utf-8"))
    click.echo(f"wrote {out}: {len(facts)} run(s), {len(page) / 1024:,.0f} KiB", err=True)
