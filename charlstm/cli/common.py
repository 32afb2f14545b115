"""What several commands share: a console for diagnostics on stderr, loading a model, option
sources. (Results go to stdout through render.write.)"""

from __future__ import annotations

import click
from click.core import ParameterSource


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def load_model(target: str | None, device: str | None = None):
    """(checkpoint, model on its device in eval mode, path) for a file, a run directory or the latest run."""
    from .. import checkpoint as ckpt
    from ..model import pick_device

    path = ckpt.resolve(target)
    loaded = ckpt.load(path)
    return loaded, loaded.model(pick_device(device)), path


def explicit(ctx: click.Context, name: str) -> bool:
    """True when the user typed the option, rather than it taking its default."""
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
