"""`charlstm write`: write together with a model in the terminal.

Parses options into a `WriteConfig` (generation/cowriter.py, options named like its fields), checks
what can be checked without torch (the checkpoint's path, the prime file, --out by the files guard
the app saves through), and runs the Textual app (views/writer.py), which loads the model off the
UI thread.
"""

from __future__ import annotations

import sys

import click

from ..config import UNKNOWN_POLICIES, config_from
from ..generation.cowriter import MAX_LENGTH, MAX_SAMPLES, MAX_TOP, WriteConfig
from .params import Seed, Temperature, device_option


@click.command("write")
@click.argument("checkpoint", required=False)
@click.option("--prime", default="", help="Text to start from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this file's text (UTF-8).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Ctrl+S saves here (asked for when not given); an existing file is replaced only after you say so.")
@click.option("--temperature", type=Temperature(), default=WriteConfig.temperature, show_default=True,
              help="Continuations are sampled at it (Ctrl+Up / Ctrl+Down change it); 0 = most likely.")
@click.option("--length", type=click.IntRange(1, MAX_LENGTH), default=WriteConfig.length, show_default=True,
              help="Characters per continuation (Ctrl+Left / Ctrl+Right change it).")
@click.option("--num-samples", type=click.IntRange(1, MAX_SAMPLES), default=WriteConfig.num_samples,
              show_default=True, help="Continuations shown.")
@click.option("--top", type=click.IntRange(1, MAX_TOP), default=WriteConfig.top, show_default=True,
              help="Next characters shown (Alt+1 … Alt+9 take one).")
@click.option("--seed", type=Seed(), default=WriteConfig.seed, help="Same seed and keys, same suggestions.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default=WriteConfig.unknown, show_default=True,
              help="Primed or typed characters the model never saw: refuse them, skip them or replace them.")
@click.option("--device", default=None, callback=device_option)
def command(checkpoint, prime, prime_file, out, device, **params):
    """Write with a model (CHECKPOINT: a file or run directory; default: the most recent run).

    \b
    Type to write (Enter, Backspace, paste). The model suggests as you go:
      Tab         accept the highlighted continuation (↑ ↓ choose another)
      Alt+1 … 9   take one of the top next characters
      Ctrl+R      new continuations       Ctrl+↑ / Ctrl+↓  temperature
      Ctrl+← / →  continuation length     Ctrl+Z  undo
      Ctrl+S      save                    Ctrl+Q  quit
    """
    from ..data.reading import read_text_file
    from ..runs.folder import resolve

    path = resolve(checkpoint)
    if prime_file:
        prime = read_text_file(prime_file)
    if out is not None:
        from ..errors import CharlstmError
        from ..views.writing import Saving  # textual, no torch

        try:
            Saving.check(out)
        except CharlstmError as error:
            raise click.BadParameter(str(error), param_hint="--out") from None
    if not (sys.stdin.isatty() and sys.__stderr__ is not None and sys.__stderr__.isatty()):
        raise click.UsageError("charlstm write is interactive: run it in a terminal (stdin and stderr a terminal)")
    from ..views.writer import WriterApp

    app = WriterApp(path, prime, config_from(WriteConfig, params), out=out, device=device)
    app.run()
    if app.failure is not None:
        raise app.failure
