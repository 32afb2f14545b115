"""What several commands share: a console for diagnostics on stderr, the notice of what reading a
corpus folder left out, where an option's value came from, the guarded standard streams, and how
the user ran charlstm. (Results go to stdout through views.output.write; models are loaded by
runtime.load_model.)"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ..errors import StreamError, one_line  # noqa: F401  (the escaping every message gets)


def stderr_console():
    """The console diagnostics print on. On a terminal a line longer than its width wraps at a
    space (rich breaks only there, folding a word only when it alone is wider than the terminal), so
    no figure is cut in two by the terminal's own wrap; anywhere else every line is written whole,
    as a log or a pipe wants it. (A command to paste is printed with soft_wrap=True: one line.)"""
    from rich.console import Console

    terminal = sys.stderr.isatty()
    console = Console(stderr=True, highlight=False, soft_wrap=not terminal)
    if terminal and console.is_dumb_terminal:  # where rich assumes 80 columns, the terminal knows its width
        try:
            size = os.get_terminal_size(sys.stderr.fileno())
            if size.columns:
                console.size = (size.columns, size.lines or 25)
        except OSError:
            pass
    return console


def notice_skipped(corpus, glob) -> None:
    """One line on stderr when reading directory corpora left charlstm's own output out."""
    from ..data.reading import corpus_files, skipped_summary

    if not any(str(c) != "-" and Path(c).is_dir() for c in corpus):
        return
    skipped: list = []
    corpus_files(corpus, glob, skipped=skipped)
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:2]) + (" …" if len(skipped) > 2 else "")
        stderr_console().print(f"charlstm: reading the corpus, left out charlstm's own output: "
                               f"{skipped_summary(skipped)} ({shown})", markup=False, highlight=False)



class Notices:
    """One-line notices on stderr (`charlstm: …`), each said once in a command however many parts
    of it find the same thing (a damaged cache read for two figures)."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def __call__(self, text: str) -> None:
        if text not in self.said:
            self.said.add(text)
            stderr_console().print(f"charlstm: {one_line(text)}", markup=False, highlight=False, soft_wrap=True)


def explicit(ctx: click.Context, name: str) -> bool:
    """True when the user typed the option, rather than it taking its default."""
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


class ResultStream:
    """Standard output as charlstm writes its results: a proxy of the real stream in which writing
    to a closed stdout, or a character its encoding cannot represent, is a one-line StreamError
    instead of an AttributeError or a UnicodeEncodeError traceback. (Results are never silently
    altered: an ASCII-only PYTHONIOENCODING with a Chinese model is an error naming the variable,
    not backslash escapes in poem.txt.) Everything else is the real stream's."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        stream = self._open()
        try:
            return stream.write(text)
        except UnicodeEncodeError as error:
            raise _unencodable(stream, error) from None

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._stream is not None:  # a closed stdout holds nothing to flush (and Python flushes at exit)
            self._stream.flush()

    def _open(self):
        if self._stream is None:

            raise StreamError("standard output is closed; redirect it to a file (> out.txt), or to /dev/null to "
                              "discard it")
        return self._stream

    def __getattr__(self, name: str):
        if self._stream is None:  # as None has no attributes: libraries probing stdout (getattr with a default) go on
            raise AttributeError(f"standard output is closed: no {name}")
        return getattr(self._stream, name)


def _unencodable(stream, error: UnicodeEncodeError):

    char = error.object[error.start:error.start + 1]
    encoding = getattr(stream, "encoding", None) or error.encoding
    told = os.environ.get("PYTHONIOENCODING")
    source = f"PYTHONIOENCODING={told}" if told else "the locale"
    return StreamError(f"standard output's encoding {encoding} (from {source}) cannot write {ascii(char)} "
                       f"(U+{ord(char):04X}); set PYTHONIOENCODING=utf-8")


def guard_streams() -> None:
    """Run before any command: keep file descriptors 0–2 taken (a closed one is reopened on
    /dev/null, so no checkpoint or metrics file the command opens can become fd 1 or 2 and receive
    what a library prints), send diagnostics nowhere when stderr is closed, and wrap stdout in a
    ResultStream. A closed stdin stays None in sys.stdin: reading it is data._stdin's one-line error."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                opened = os.open(os.devnull, os.O_RDWR)
            except OSError:
                continue
            if opened != fd:  # a lower descriptor was free after all: leave this one as it was
                os.close(opened)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if not isinstance(sys.stdout, ResultStream):
        sys.stdout = ResultStream(sys.stdout)


def invocation() -> str:
    """How the user ran charlstm, for hints that work when pasted: `charlstm` when that is what the
    shell finds, else the path typed (`.venv/bin/charlstm`), else `python -m charlstm`."""
    import shlex
    import shutil

    typed = sys.argv[0] if sys.argv else ""
    if os.path.basename(typed) == "charlstm":
        found = shutil.which("charlstm")
        if found and os.path.realpath(found) == os.path.realpath(typed):
            return "charlstm"
        return shlex.quote(typed)
    python = "python3" if shutil.which("python3") and os.path.realpath(shutil.which("python3")) == os.path.realpath(
        sys.executable) else shlex.quote(sys.executable)
    return f"{python} -m charlstm"


def prepare_corpus(files, encoding: str, run, store: bool = True, min_char_count: int | None = None, base=None,
                   surveyed=None):
    """Encode the corpus (cached in the run directory, whose lock the caller holds; store=False only
    reads the cache), with a progress bar when it is big; a damaged cache, made again, is said in one
    line; `base`: the vocabulary it grows (a model the run starts from); `surveyed(vocab, characters)`
    may refuse the corpus before anything is stored (data.corpus.prepare). SIGTERM stops it like
    Ctrl-C, leaving no temp file: exit 143."""
    from tqdm import tqdm

    from ..data.corpus import prepare
    from ..files import Terminated, terminate_as_interrupt
    from ..runs.caches import CorpusCache

    sizes = sum(Path(f).stat().st_size for f in files if f != "-")
    cache = CorpusCache(run, store=store)
    try:
        with terminate_as_interrupt(), tqdm(total=2 * sizes, unit="B", unit_scale=True, desc="preparing corpus",
                                            file=sys.stderr, disable=sizes < (32 << 20), mininterval=0.5) as bar:
            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            prepared = prepare(files, encoding=encoding, cache=cache, progress=progress, min_char_count=min_char_count,
                               base=base, surveyed=surveyed)
    except Terminated:
        click.echo("\ncharlstm: terminated while preparing the corpus; nothing half-written was left", err=True)
        sys.exit(128 + signal.SIGTERM)
    if cache.notice and store:  # (under torchrun, rank 0 alone says it)
        Notices()(cache.notice)
    return prepared
