"""`charlstm score`: bits per character of a text under a model."""

from __future__ import annotations

import sys

import click

from ..config import UNKNOWN_POLICIES
from .common import load_model, stdout_console


@click.command("score")
@click.argument("checkpoint", required=False)
@click.option("--text", default=None, help="Text to score.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to score ('-' for stdin).")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text: bits per character, a surprisal strip and the biggest surprises; tsv / json: every character.")
@click.option("--device", default=None)
def command(checkpoint, text, text_file, unknown, fmt, device):
    """Bits per character of a text under a model, and how surprised it is by each character.

    The first character is context only: it is never predicted, so a text of T characters has
    T − 1 scores. Lower is better; a blind guess among the V characters of the vocabulary costs log2 V bits.
    """
    import json
    import math

    from ..data import read_corpus
    from ..render import records_tsv, score_view
    from ..sample import prepare_prime
    from ..score import score_text

    if (text is None) == (text_file is None):
        raise click.UsageError("give the text to score with --text or --text-file (not both)")
    loaded, model, path = load_model(checkpoint, device)
    if text_file:
        text = read_corpus([text_file])
    text = prepare_prime(loaded.vocab, text, unknown, what="text")
    result = score_text(model, loaded.vocab, text)
    expected = [loaded.vocab.chars[int(i)] for i in result.predicted]
    bits = [float(b) for b in result.bits]
    if fmt == "tsv":
        records = [{"position": t + 1, "char": text[t + 1], "bits": b, "expected": expected[t]} for t, b in enumerate(bits)]
        sys.stdout.writelines(line + "\n" for line in records_tsv(records, ["position", "char", "bits", "expected"]))
    elif fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "bits_per_char": round(result.bits_per_char, 6),
                                     "characters": len(text), "predicted_characters": len(bits), "text": text,
                                     "surprisal_bits": [round(b, 6) for b in bits], "expected": expected},
                                    ensure_ascii=False) + "\n")
    else:
        title = f"{result.bits_per_char:.3f} bits per character   {path}"
        stdout_console().print(score_view(title, text, bits, expected, math.log2(max(len(loaded.vocab), 2)),
                                    show_strip=len(text) <= 20_000))
