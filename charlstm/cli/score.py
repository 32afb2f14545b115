"""`charlstm score`: bits per character of a text under a model."""

from __future__ import annotations

import click

from ..config import UNKNOWN_POLICIES
from .common import load_model
from .params import device_option


@click.command("score")
@click.argument("checkpoint", required=False)
@click.option("--text", default=None, help="Text to score.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to score ('-' for stdin).")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text: bits per character, a surprisal strip and the biggest surprises; tsv / json: every character.")
@click.option("--device", default=None, callback=device_option)
def command(checkpoint, text, text_file, unknown, fmt, device):
    """Bits per character of a text under a model, and how surprised it is by each character.

    The first character is context only: it is never predicted, so a text of T characters has
    T − 1 scores. Lower is better; a blind guess among the V characters of the vocabulary costs log2 V bits.
    """
    if (text is None) == (text_file is None):
        raise click.UsageError("give the text to score with --text or --text-file (not both)")
    from ..data import read_corpus
    from ..render import score_output, write
    from ..sample import prepare_prime
    from ..score import score_text

    loaded, model, path = load_model(checkpoint, device)
    text = prepare_prime(loaded.vocab, read_corpus([text_file]) if text_file else text, unknown, what="text")
    result = score_text(model, loaded.vocab, text)
    expected = list(loaded.vocab.decode(result.predicted))
    write(fmt, score_output(str(path), text, result.bits, expected, result.bits_per_char, len(loaded.vocab)))
