"""Every error a user can cause, as one family of one-line messages. Imports nothing.

The command line turns any `CharlstmError` into `Error: <message>` and exit 1; library callers
catch the subclass they care about. A message is one line naming the thing and the fix.
"""

from __future__ import annotations


def one_line(text: object, limit: int | None = None) -> str:
    """`text` with every character that is not printable shown as a backslash escape (a newline as
    \\n, an escape character as \\x1b, a lone surrogate from an undecodable file name as \\udcff),
    so a message that embeds a user's path or text stays one line and cannot drive the terminal;
    cut to `limit` characters (with …) when given. The command line's error mapping passes every
    message through it; checkpoint.py uses it for values quoted from a file."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


class CharlstmError(ValueError):
    """Bad input or a state charlstm refuses to act on; the message is one line."""


class CorpusError(CharlstmError):
    """A corpus that cannot be read as text; the message names the file."""


class ConfigError(CharlstmError):
    """A setting charlstm cannot use: a model size above its caps, a value out of range, a device
    this machine or charlstm cannot run on."""


class MemoryBudgetError(CharlstmError):
    """A request that would hold more memory than charlstm's budget (config.MEMORY_BUDGET): a text
    too long for what is kept of it, a model too large to train; the message says what fits."""


class StreamError(CharlstmError):
    """The process's own standard input or output cannot be used: closed, or an encoding that
    cannot write the text."""


class CheckpointError(CharlstmError):
    """A checkpoint that cannot be used; the message is one line naming the file and the reason."""


class TrainingError(CharlstmError):
    """Training cannot go on; the message says why and what was kept."""


class NeuronError(CharlstmError):
    """A layer, vector or neuron the model does not have, or an analysis that cannot run."""


class TraceTooLongError(MemoryBudgetError, NeuronError):
    """A text whose trace (or what a view keeps of it) would not fit the memory budget: a
    MemoryBudgetError, and, as every refusal of what a trace is asked for, a NeuronError."""


class UnknownCharactersError(CharlstmError, KeyError):
    """A text (a prime, a text to trace or score, prompts) holds characters the model's vocabulary
    never saw; raised by `data.Vocab` alone. Also a KeyError: a character looked up and not found."""

    __str__ = CharlstmError.__str__  # the message as given, not KeyError's repr of it


PrimeError = UnknownCharactersError  # another name for it (charlstm.PrimeError)


class PageError(CharlstmError):
    """A charlstm HTML page that cannot be drawn again: an older page's facts, which today's page does not read."""


class FeatureError(NeuronError):
    """An unknown feature name, an invalid regular expression, or a feature nothing can correlate with."""


class PatternTimeout(FeatureError):
    """A user's regular expression ran past its time limit over a text (config.MAX_PATTERN_SECONDS)."""
