"""`charlstm score`: bits per character of a text under a model."""

from __future__ import annotations

import click

from ..config import MAX_NGRAM_ORDER, SampleConfig
from ..inspection.texts import ANALYSIS_LENGTH, corpus_tail, read_text, training_corpus
from .common import Notices
from .help import Command
from .params import DEVICE_HELP, NgramBaseline, device_option, field_option, threads_option


def _definitions() -> dict:
    """The figures of the error categories, for the help (scoring.comparison loads numpy: only when shown)."""
    from ..scoring.comparison import DYNAMIC_CONTEXT, DYNAMIC_WINDOW, ERROR_P, RARE_COUNT

    return {"error_p": ERROR_P, "dynamic_context": DYNAMIC_CONTEXT, "dynamic_window": DYNAMIC_WINDOW,
            "rare_count": RARE_COUNT}


@click.command("score", cls=Command, facts=_definitions)
@click.argument("checkpoint", required=False)
@click.option("--text", default=None, help=f"Text to score. [default: the last {ANALYSIS_LENGTH:,} characters of the "
                                            "model's training corpus, held out from training]")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to score ('-' for stdin).")
@field_option(SampleConfig, "unknown", help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text: bits per character, a surprisal strip and the biggest surprises; tsv / json: every character.")
@click.option("--baseline", type=NgramBaseline(), default=None,
              help=f"ngram:N (N from 1 to {MAX_NGRAM_ORDER}): also score the text with an interpolated modified "
                   "Kneser-Ney character N-gram model of the run's training text (not its validation tail), and "
                   "break the LSTM's errors down (below).")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
@threads_option
def command(checkpoint, text, text_file, unknown, fmt, baseline, device, threads):
    """Bits per character of a text under a model.

    CHECKPOINT: a checkpoint file, a run directory or a shipped model's name (english); the
    most recent run if none. Shows how
    surprised the model is by each character. The first character is context only: it is never
    predicted, so a text of T characters has T − 1 scores. Lower is better; a blind guess among the
    V characters of the vocabulary costs log2 V bits.

    With --baseline ngram:N (after Karpathy, Johnson & Fei-Fei 2015) an error is a character the LSTM
    gives p < {error_p}, counted in the first of these that fits; where each model wins and, for
    brackets, accuracy by distance from the opener are shown too (--format json states every
    definition):

    \b
      n-gram       some order 1..N of the n-gram gives it p >= {error_p}
      memory       it and its {dynamic_context} preceding characters occurred in the last {dynamic_window} characters
      rare word    it is in a word seen fewer than {rare_count} times in the training text
      word start   it begins a word
      punctuation  it is punctuation
      rest         everything else
    """
    if text is not None and text_file is not None:
        raise click.UsageError("give the text to score with --text or --text-file, not both")
    import numpy as np

    from ..runtime import load_model
    from ..scoring.bits import surprisal
    from ..scoring.yardsticks import of_run
    from ..views.output import write
    from ..views.scores import score_output

    loaded, model, path = load_model(checkpoint, device, threads)
    text, _ = read_text(loaded.vocab, text, text_file, unknown, lambda: (_held_out(loaded, path), None))
    if baseline is not None:
        from ..scoring.comparison import DEFINITIONS, PARAMETERS
        from ..scoring.ngram import run_baseline
        from ..views.scores import comparison_output

        comparison = run_baseline(loaded, model, text, baseline)
        write(fmt, comparison_output(str(path), comparison, DEFINITIONS, PARAMETERS, of_run(loaded, path, Notices())))
        return
    bits, predicted = surprisal(model, loaded.vocab, text)
    bits_per_char = float(np.mean(bits, dtype=np.float64))
    yardsticks = of_run(loaded, path, Notices())
    write(fmt, score_output(str(path), text, bits, predicted, loaded.vocab.chars, bits_per_char, yardsticks))


def _held_out(loaded, path) -> str:
    """With no text given: the tail of the training corpus, as inspect reads it (texts.corpus_tail)."""
    from ..errors import CharlstmError

    tail = corpus_tail(training_corpus(loaded), ANALYSIS_LENGTH)
    if tail is None:
        raise CharlstmError(f"{path}: its training corpus is not at hand; give the text to score with --text or --text-file")
    click.echo(f"charlstm: reading {tail[1]}", err=True)
    return tail[0]
