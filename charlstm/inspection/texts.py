"""Which text `charlstm inspect` and `charlstm score` read, and where a text chosen for the user came from.

`read_text` takes the text a user gave (or a file of it) and admits it under the unknown-character
policy (`Vocab.admit`); `inspect_text` chooses one when none is given: for the analyses, the tail of
the corpus the model was trained on (when its files are still there), else a fresh sample.
Knows nothing of the terminal (the caller prints the note). Importing it loads no torch: the
command line shows its lengths in --help.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError, CorpusError, NeuronError
from ..files import is_regular

#: Characters read by --find, --top and --stats when no text is given.
ANALYSIS_LENGTH = 20_000
#: Characters of a fresh sample shown when no text is given.
VIEW_LENGTH = 400


@dataclass(frozen=True)
class TrainingCorpus:
    """What a checkpoint says about the corpus it was trained on."""

    paths: tuple[Path, ...]
    encoding: str
    chars: int | None          # characters of the whole corpus, when recorded
    val_fraction: float        # the share at its end held out for validation


def training_corpus(loaded) -> TrainingCorpus:
    """Where the loaded checkpoint's training text was, from its typed training metadata. A model
    saved without any (or with metadata that does not validate) has no known corpus."""

    try:
        info = loaded.run_info
    except CheckpointError:
        info = None
    if info is None or info.corpus is None:
        return TrainingCorpus(paths=(), encoding="utf-8", chars=None, val_fraction=0.0)
    home = Path(loaded.path).parent if getattr(loaded, "path", None) else Path()
    paths = tuple(Path(p) if p == "-" or Path(p).is_absolute() else home / p   # relative: from the checkpoint's
                  for p in info.corpus.paths)                                  # folder (export.py)
    return TrainingCorpus(paths=paths, encoding=info.corpus.encoding,
                          chars=info.corpus_chars or None, val_fraction=info.train_config.val_fraction)


def inspect_text(loaded, model, text: str | None = None, text_file: str | None = None, length: int | None = None,
                 seed: int = 0, unknown: str = "error", analysis: bool = False,
                 sample_length: int | None = None) -> tuple[str, str | None]:
    """(text, note): `text`, else the contents of `text_file`, else (with `analysis`, for --find,
    --top, --stats, --atlas and --html) the last `length` characters of the training corpus, else a
    fresh sample of `sample_length` (default `length`) characters; as the model reads it (see
    `read_text`). The note says where a chosen text came from (None for a given one)."""
    text, note = read_text(loaded.vocab, text, text_file, unknown, lambda: _chosen_text(
        loaded, model, length or (ANALYSIS_LENGTH if analysis else VIEW_LENGTH), seed, analysis, sample_length))
    if not text:
        raise NeuronError("the text to inspect is empty")
    return text, note


def read_text(vocab, text: str | None, text_file: str | None, unknown: str,
              choose: Callable[[], tuple[str, str | None]]) -> tuple[str, str | None]:
    """(text, note): the text a command reads — `text`, else the contents of `text_file` (read
    strictly), else what `choose()` picks with its note — admitted under the `unknown` policy
    (`Vocab.admit`). `charlstm inspect` and `charlstm score` take their text here."""
    from ..data.reading import read_corpus

    note = None
    if text_file:
        text = read_corpus([text_file])
    if text is None:
        text, note = choose()
    return vocab.admit(text, unknown, "text"), note


def _chosen_text(loaded, model, length: int, seed: int, analysis: bool,
                 sample_length: int | None = None) -> tuple[str, str]:
    tail = corpus_tail(training_corpus(loaded), length) if analysis else None
    if tail is not None:
        return tail
    length = sample_length or length
    from ..config import SampleConfig
    from ..generation.sampling import sample_text

    text = sample_text(model, loaded.vocab, "", SampleConfig(length=length, seed=seed))[0]
    note = f"a fresh {len(text):,}-character sample (seed {seed})" + (
        "; the training corpus is not at hand, give --text-file for real text" if analysis else "")
    return text, note


def corpus_tail(corpus: TrainingCorpus, length: int) -> tuple[str, str] | None:
    """The last `length` characters of the corpus, if its files are still there (started at a
    line when one begins near the cut), and a note saying how much of that the model held out
    (never trained on)."""
    from ..data.streams import held_out_size

    text = _read_tail(corpus, length)
    if text is None:
        return None
    tail = text[-length:]
    line_start = tail.find("\n", 0, 200)
    if 0 <= line_start < len(tail) - 1 and len(text) > length:
        tail = tail[line_start + 1 :]  # start at a line, not mid-word
    held_out = held_out_size(corpus.chars or len(text), corpus.val_fraction)
    name = corpus.paths[-1].name if len(corpus.paths) == 1 else f"{len(corpus.paths)} files"
    unseen = ("all held out from training" if held_out >= len(tail) else
              f"the last {held_out:,} held out from training, the rest trained on" if held_out else "all trained on")
    return tail, f"the last {len(tail):,} characters of the training corpus {name} ({unseen})"


def _read_tail(corpus: TrainingCorpus, length: int) -> str | None:
    """At least `length` characters from the end of the corpus files (all of them if shorter), or
    None when a file is gone, unreadable or was stdin; a CorpusError for one that is there but is
    not a regular file."""
    from ..data.reading import read_tail

    paths = corpus.paths
    if not paths or any(str(p) == "-" or not is_regular(p, CorpusError, follow=True) for p in paths):
        return None
    parts: list[str] = []
    try:
        for path in reversed(paths):
            parts.insert(0, read_tail(path, length, corpus.encoding))
            if sum(map(len, parts)) >= length:
                break
    except (CorpusError, OSError, UnicodeDecodeError, LookupError):
        return None
    return "".join(parts)
