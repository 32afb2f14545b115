"""`charlstm score`: bits per character of a text under a model."""

from __future__ import annotations

import click

from ..config import UNKNOWN_POLICIES
from .params import NgramBaseline, device_option, threads_option


@click.command("score")
@click.argument("checkpoint", required=False)
@click.option("--text", default=None, help="Text to score. [default: the last 20,000 characters of the model's "
                                            "training corpus, held out from training]")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to score ('-' for stdin).")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text: bits per character, a surprisal strip and the biggest surprises; tsv / json: every character.")
@click.option("--baseline", type=NgramBaseline(), default=None,
              help="ngram:N (N from 1 to 20): also score the text with an interpolated modified Kneser-Ney character N-gram "
                   "model built from the run's training text (not its validation tail), and show where each model "
                   "wins, the LSTM's errors (p < 0.5) by category and, for brackets, accuracy by distance from the "
                   "opener; --format json states every definition.")
@click.option("--device", default=None, callback=device_option)
@threads_option
def command(checkpoint, text, text_file, unknown, fmt, baseline, device, threads):
    """Bits per character of a text under a model, and how surprised it is by each character.

    The first character is context only: it is never predicted, so a text of T characters has
    T − 1 scores. Lower is better; a blind guess among the V characters of the vocabulary costs log2 V bits.

    With --baseline ngram:N (after Karpathy, Johnson & Fei-Fei 2015) an error is a character the LSTM
    gives p < 0.5, counted in the first of these that fits:

    \b
      n-gram       some order 1..N of the n-gram gives it p >= 0.5
      memory       it and its 5 preceding characters occurred in the last 2000 characters
      rare word    it is in a word seen fewer than 5 times in the training text
      word start   it begins a word
      punctuation  it is punctuation
      rest         everything else
    """
    if text is not None and text_file is not None:
        raise click.UsageError("give the text to score with --text or --text-file, not both")
    from ..data.reading import read_corpus
    from ..generation.sampling import prepare_prime
    from ..runtime import load_model
    from ..scoring.bits import score_text
    from ..scoring.yardsticks import of_run
    from ..views.output import write
    from ..views.scores import score_output

    loaded, model, path = load_model(checkpoint, device, threads)
    if text is None and text_file is None:
        text = _held_out(loaded, path)
    text = prepare_prime(loaded.vocab, read_corpus([text_file]) if text_file else text, unknown, what="text")
    if baseline is not None:
        from ..scoring.comparison import DEFINITIONS, PARAMETERS
        from ..scoring.ngram import run_baseline
        from ..views.scores import comparison_output

        comparison = run_baseline(loaded, model, text, baseline)
        write(fmt, comparison_output(str(path), comparison, DEFINITIONS, PARAMETERS))
        return
    result = score_text(model, loaded.vocab, text)
    expected = list(loaded.vocab.decode(result.predicted))
    write(fmt, score_output(str(path), text, result.bits, expected, result.bits_per_char, of_run(loaded, path)))


def _held_out(loaded, path) -> str:
    """With no text given: the tail of the training corpus, as inspect reads it (texts.corpus_tail)."""
    from ..errors import CharlstmError
    from ..inspection.texts import ANALYSIS_LENGTH, corpus_tail, training_corpus

    tail = corpus_tail(training_corpus(loaded), ANALYSIS_LENGTH)
    if tail is None:
        raise CharlstmError(f"{path}: its training corpus is not at hand; give the text to score with --text or --text-file")
    click.echo(f"charlstm: reading {tail[1]}", err=True)
    return tail[0]
