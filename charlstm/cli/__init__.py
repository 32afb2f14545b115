"""The `charlstm` command: a Click group that loads each command's module only when it runs.

Each command lives in a module of its own (train, prepare, sample, inspect, score, corpus) and is
parse → one library call → render. Domain errors (`errors.CharlstmError`) become `Error: <one
line>` on stderr and exit 1 — never a traceback. Nothing here, and nothing a command module
imports at its top, loads torch: `charlstm --help`, `charlstm COMMAND --help`, `--version` and
usage errors stay fast.

Results (samples, traces) go to stdout; progress and diagnostics go to stderr, so
`charlstm sample > poem.txt` stays clean.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..config import UNKNOWN_POLICIES
from ..errors import CharlstmError, UnknownCharactersError, one_line

#: command name → module of this package that defines `command`
COMMANDS = {"train": "train", "prepare": "prepare", "sample": "sample", "inspect": "neurons", "score": "score",
            "corpus": "corpus", "report": "report", "write": "write", "export": "export"}

#: What follows an unknown-characters error: every command that reads a user's text takes --unknown.
UNKNOWN_HINT = f"(use {' or '.join(f'--unknown {policy}' for policy in UNKNOWN_POLICIES if policy != 'error')})"


class _Group(click.Group):
    """Commands load on demand; domain errors become one line on stderr and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"{__name__}.{COMMANDS[name]}").command

    def main(self, *args, **kwargs):
        """Guard the process's own streams (common.guard_streams) for the command, and restore
        them after it (a caller's, e.g. a test runner's, stay theirs)."""
        from .common import ResultStream, guard_streams

        saved = sys.stdout
        guard_streams()
        try:
            return super().main(*args, **kwargs)
        except CharlstmError as error:  # e.g. --help with stdout closed: raised outside invoke
            click.echo(f"Error: {one_line(error)}", err=True)
            sys.exit(1)
        finally:
            if isinstance(sys.stdout, ResultStream):
                sys.stdout = saved

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UnknownCharactersError as error:  # the vocabulary names the characters; the command line, its remedy
            raise click.ClickException(one_line(f"{error} {UNKNOWN_HINT}")) from None
        except CharlstmError as error:
            raise click.ClickException(one_line(error)) from None
        except click.ClickException as error:  # usage errors: their message may quote a path or a value too
            error.message = one_line(error.message)
            raise
        except BrokenPipeError:  # `charlstm sample | head`: the reader left; that is not an error
            sys.stdout = open(os.devnull, "w")
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)
        except OSError as error:
            name = error.filename
            where = f"{os.fsdecode(name) if isinstance(name, (str, bytes)) else name}: " if name is not None else ""
            raise click.ClickException(one_line(f"{where}{error.strerror or error}")) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="charlstm")
def main() -> None:
    """Train a character-level LSTM on your own text, sample from it, and look inside its neurons.

    \b
      charlstm train corpus.txt          # writes checkpoints/corpus/
      charlstm sample --temperature 0.8  # streams text from the latest run
      charlstm inspect --neuron 42       # one neuron's activity, character by character
    """

