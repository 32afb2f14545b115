"""`charlstm write`: write together with a model in the terminal.

Parses options into a `config.WriteConfig` (named like its fields), checks what can be checked
without torch (the checkpoint's path, the prime file, --out by the files guard the app saves
through), and runs the Textual app (views/writer.py), which loads the model off the UI thread.
"""

from __future__ import annotations

import sys

import click

from ..config import WriteConfig, config_from
from .help import Command
from .params import DEVICE_HELP, device_option, field_option

#: Option names by section of `charlstm write --help`.
SECTIONS = {
    "Text": ("prime", "prime_file", "out", "unknown"),
    "Suggestions": ("temperature", "length", "num_samples", "top", "seed"),
}


@click.command("write", cls=Command, sections=SECTIONS)
@click.argument("checkpoint", required=False)
@click.option("--prime", default="", help="Text to start from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this file's text (UTF-8).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Ctrl+S saves here (asked for when not given); an existing file is replaced only after you say so.")
@field_option(WriteConfig, "unknown",
              help="Primed or typed characters the model never saw: refuse them, skip them or replace them.")
@field_option(WriteConfig, "temperature",
              help="Continuations are sampled at it (Ctrl+Up / Ctrl+Down change it); 0 = most likely.")
@field_option(WriteConfig, "length", help="Characters per continuation (Ctrl+Left / Ctrl+Right change it).")
@field_option(WriteConfig, "num_samples", help="Continuations shown.")
@field_option(WriteConfig, "top", help="Next characters shown (Alt+1 … Alt+9 take one).")
@field_option(WriteConfig, "seed", help="Same seed and keys, same suggestions.")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
def command(checkpoint, prime, prime_file, out, device, **params):
    """Write together with a model, in the terminal.

    CHECKPOINT: a checkpoint file, a run directory or a shipped model's name (english); the
    most recent run if none.

    \b
    Type to write (Enter, Backspace, paste). The model suggests as you go:
      Tab         accept the highlighted continuation (↑ ↓ choose another)
      Alt+1 … 9   take one of the top next characters (Option+1 … 9 on a Mac)
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
