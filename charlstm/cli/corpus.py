"""`charlstm corpus`: write the corpus of a probe task from "Exploring LSTMs"."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from ..config import MAX_PROBE_LINES
from ..probes.tasks import DEFAULT_COUNT, TASKS, iter_lines, task_parameters, text_blocks
from .help import Command
from .params import Integer, Seed


def _corpus_default(task: str, name: str) -> str:
    return f"[default: {task_parameters(task)[name]}]"


#: Option names by section of `charlstm corpus --help`.
SECTIONS = {
    "Corpus": ("out", "count", "seed"),
    "Task settings (each task takes its own)": ("min_n", "max_n", "min_noise", "max_noise", "min_gap", "max_gap",
                                                "length", "alphabet"),
}


@click.command("corpus", cls=Command, sections=SECTIONS)
@click.argument("task", type=click.Choice(list(TASKS)))
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write, one sequence per line ('-' for stdout).")
@click.option("--count", type=Integer(0, MAX_PROBE_LINES), default=DEFAULT_COUNT, show_default=True, help="Sequences (lines) to write.")
@click.option("--seed", type=Seed(), default=0, show_default=True, help="Same seed, same corpus.")
@click.option("--min-n", type=Integer(1), default=None,
              help=f"counter, selective-counter: fewest a's. {_corpus_default('counter', 'min_n')}")
@click.option("--max-n", type=Integer(1), default=None,
              help=f"counter, selective-counter: most a's. {_corpus_default('counter', 'max_n')}")
@click.option("--min-noise", type=Integer(0), default=None,
              help=f"selective-counter: fewest X's. {_corpus_default('selective-counter', 'min_noise')}")
@click.option("--max-noise", type=Integer(0), default=None,
              help=f"selective-counter: most X's. {_corpus_default('selective-counter', 'max_noise')}")
@click.option("--min-gap", type=Integer(1), default=None,
              help=f"memorizer: fewest x's between the letter and Y. {_corpus_default('memorizer', 'min_gap')}")
@click.option("--max-gap", type=Integer(1), default=None,
              help=f"memorizer: most x's. {_corpus_default('memorizer', 'max_gap')}")
@click.option("--length", type=Integer(1), default=None,
              help=f"copy: characters to copy. {_corpus_default('copy', 'length')}")
@click.option("--alphabet", default=None, help=f"copy: characters to draw from. {_corpus_default('copy', 'alphabet')}")
def command(task, out, count, seed, **options):
    """Write the corpus of a probe task from "Exploring LSTMs".

    The task is one of these, written one sequence per line:

    \b
      counter            a^N X b^N                       aaaXbbb
      selective-counter  a's with noise X's, Y, b^N      aXaaXXaYbbb
      memorizer          A|B, x's, Y, the letter again   AxxxYa  BxxYb
      copy               s X s                           abcXabc
    """
    from ..files import check_output, is_text_file, make_folders, terminate_as_interrupt, write_file

    params = _task_params(task, options)
    if out != "-":  # before any work: never over a checkpoint, a page or any non-text file, nor through a link
        check_output(out, "a plain-text file", is_text_file)
    lines = _lines(task, count, seed, params)
    tally = [0, 0]                                                       # lines, characters written
    if out == "-":
        _stream(lines, sys.stdout.write, tally)
        sys.stdout.flush()
    else:
        make_folders(Path(out).parent, " for --out")                    # options checked: only now touch the disk
        with terminate_as_interrupt():  # a SIGTERM mid-write removes the temp file; the old file stays
            write_file(check_output(out, "a plain-text file", is_text_file),
                       lambda sink: _stream(lines, lambda text: sink.write(text.encode("utf-8")), tally))
    settings = " ".join(f"{_option(name)} {value}" for name, value in {**task_parameters(task), **params}.items())
    click.echo(f"[{tally[0]:,} {task} lines, {tally[1]:,} characters ({settings} --seed {seed}) → "
               f"{'stdout' if out == '-' else out}]", err=True)


def _stream(lines, write, tally: list[int]) -> None:
    """Write the lines block by block as they are made (memory does not grow with --count),
    counting lines and characters into `tally`."""

    for block in text_blocks(lines):
        write(block)
        tally[0] += block.count("\n")
        tally[1] += len(block)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _task_params(task: str, options: dict) -> dict:
    """The options given (not None), each checked to be one the task takes."""
    takes = task_parameters(task)
    params = {name: value for name, value in options.items() if value is not None}
    for name in params:
        if name not in takes:
            raise click.UsageError(f"{_option(name)} does not apply to {task}; it takes {', '.join(map(_option, takes))}")
    return params


def _lines(task: str, count: int, seed: int, params: dict):
    """The task's lines, made one at a time as they are written; the parameters checked now."""

    try:
        return iter_lines(task, count, seed, **params)
    except ValueError as error:  # an empty or inverted range, a size past the cap: name the options as typed
        names = "|".join(task_parameters(task))
        raise click.UsageError(re.sub(rf"\b({names})\b", lambda m: _option(m[1]), str(error))) from None
