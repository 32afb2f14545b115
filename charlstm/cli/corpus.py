"""`charlstm corpus`: write the corpus of a probe task from "Exploring LSTMs"."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from ..synthetic import DEFAULT_COUNT, TASKS, task_parameters


def _corpus_default(task: str, name: str) -> str:
    return f"[default: {task_parameters(task)[name]}]"


@click.command("corpus")
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
def command(task, out, count, seed, **options):
    """Write the corpus of a probe task from "Exploring LSTMs", one sequence per line.

    \b
      counter            a^N X b^N                       aaaXbbb
      selective-counter  a's with noise X's, Y, b^N      aXaaXXaYbbb
      memorizer          A|B, x's, Y, the letter again   AxxxYa  BxxYb
      copy               s X s                           abcXabc
    """
    params = _task_params(task, options)
    lines = _lines(task, count, seed, params)
    text = "".join(line + "\n" for line in lines)
    if out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(out).write_text(text, encoding="utf-8", newline="\n")
    settings = " ".join(f"{_option(name)} {value}" for name, value in {**task_parameters(task), **params}.items())
    click.echo(f"[{len(lines):,} {task} lines, {len(text):,} characters ({settings} --seed {seed}) → "
               f"{'stdout' if out == '-' else out}]", err=True)


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


def _lines(task: str, count: int, seed: int, params: dict) -> list[str]:
    from ..synthetic import generate

    try:
        return generate(task, count, seed, **params)
    except ValueError as error:  # an empty or inverted range: name the options as typed
        raise click.UsageError(re.sub(r"\b(min|max)_(\w+)", lambda m: f"--{m[1]}-{m[2]}", str(error))) from None
