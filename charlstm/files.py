"""Every file charlstm writes: the names of a run's files, and the one way each is written.

A run folder (`checkpoints/<name>/` by default) holds

    latest.safetensors   best.safetensors   the checkpoints
    metrics.jsonl        samples.txt        the training log and the previews, appended to
    corpus.ids.npy       corpus.json        the prepared corpus (ids + what they were made from)
    corpus.sa.npy        corpus.sa.json     the suffix array of those ids, keyed by the ids file
    .lock                                   the pid of the process training it (an flock, dropped on death)
    .<name>.<token>.tmp                     a whole-file write in progress

This module is the only code that spells those names and the temp files' pattern. Whole files are
written through `write_file` (temp file in the same folder, created exclusively without following
links, fsync, rename, fsync the folder), so a reader sees the old file or the new one, never half
of one; appends and reads never follow links. Outputs the user names elsewhere (`inspect --html`,
`corpus --out`) go through `check_output` first: never through a link, never over a checkpoint or
a file of another kind.

The bottom of the house: imports nothing of charlstm but its errors, and nothing heavy. What a
run folder may hold and who may write it (claim, lock) is runs/folder.py's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TextIO

from .errors import CharlstmError

#: What every checkpoint file's name ends with; a corpus read leaves such files out.
CHECKPOINT_SUFFIX = ".safetensors"


LATEST, BEST = f"latest{CHECKPOINT_SUFFIX}", f"best{CHECKPOINT_SUFFIX}"


METRICS, SAMPLES, LOCK = "metrics.jsonl", "samples.txt", ".lock"


IDS_FILE, CORPUS_FILE = "corpus.ids.npy", "corpus.json"


INDEX_FILE, INDEX_META = "corpus.sa.npy", "corpus.sa.json"


#: Every file name a run holds. All of them are written under the run's lock (train and prepare),
#: so with the lock held, a temp file of any of them is a stale one from a killed writer.
RUN_FILES = (LATEST, BEST, METRICS, SAMPLES, LOCK, IDS_FILE, CORPUS_FILE, INDEX_FILE, INDEX_META)


_TEMP_OWNERS = (LATEST, BEST, METRICS, SAMPLES, IDS_FILE, CORPUS_FILE, INDEX_FILE, INDEX_META)


#: Files that mark a folder as a charlstm run (or one being prepared): a corpus read skips such folders.
RUN_MARKERS = (LATEST, BEST, IDS_FILE, LOCK)


#: The tag every charlstm HTML page carries: `inspect --html` replaces only a page that has it.
PAGE_GENERATOR = '<meta name="generator" content="charlstm">'


#: The open flag that refuses a symbolic link (0 where the system has none).
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_TEMP_END = ".tmp"  # a temp file is `.<name>.<pid>-<token>.tmp` beside the file it replaces


def make_folders(folder: str | os.PathLike, purpose: str = "") -> None:
    """Create `folder` and its missing parents. A part of the path that exists and is not a folder
    (a file, a broken link) is named in one CharlstmError line (`purpose`, e.g. " for --out", is
    added to it), instead of mkdir's bare "File exists" or "Not a directory"."""
    folder = Path(folder)
    for part in (*reversed(folder.parents), folder):
        if os.path.lexists(part) and not part.is_dir():
            kind = "a broken symbolic link" if is_link(part) else "not a folder"
            raise CharlstmError(f"cannot create the folder {folder}{purpose}: {part} is {kind}")
    folder.mkdir(parents=True, exist_ok=True)


def write_file(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], None]) -> Path:
    """Replace `path` atomically with `content` (bytes, or a function writing to a binary file).

    The temp file lives in the same folder (so the rename is atomic), is created exclusively and
    never through a symbolic link, and reaches the disk before the rename; the folder is fsynced
    after it. On any failure the temp file is removed and the previous file is left intact.
    """
    path = Path(path)
    make_folders(path.parent)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_END}"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as sink:
            if isinstance(content, (bytes, bytearray, memoryview)):
                sink.write(content)
            else:
                content(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def open_append(path: str | os.PathLike, truncate: bool = False) -> TextIO:
    """A UTF-8 text file opened for appending (emptied first with truncate=True); never follows a link."""
    flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND | O_NOFOLLOW | (os.O_TRUNC if truncate else 0)
    return os.fdopen(os.open(path, flags, 0o644), "a", encoding="utf-8")


def is_link(path: str | os.PathLike) -> bool:
    """True for a symbolic link (dangling or not)."""
    try:
        return os.path.islink(path)
    except OSError:
        return False


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception by `terminate_as_interrupt`."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `Terminated` (a KeyboardInterrupt) while inside (main thread only), so
    `finally` blocks and write_file's cleanup run: a killed preparation leaves no temp file behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_output(path: str | os.PathLike, what: str, replaceable: Callable[[Path], bool]) -> Path:
    """Refuse to write a user-named output `path` (an HTML page, a corpus) over something else: never
    through a symbolic link, never over a directory, a checkpoint, a run's file or any existing file
    that `replaceable` does not recognise as one of the kind being written. A one-line CharlstmError."""
    path = Path(path)
    if is_link(path):
        raise CharlstmError(f"{path} is a symbolic link; charlstm does not write through links (name the file itself)")
    if not path.exists():
        return path
    if not path.is_file():
        raise CharlstmError(f"{path} exists and is not a regular file; not replaced")
    if path.suffix == CHECKPOINT_SUFFIX or (path.name in RUN_FILES and _in_run(path.parent)):
        raise CharlstmError(f"{path} is a checkpoint or a file of a charlstm run; not replaced (name a new file)")
    if not replaceable(path):
        raise CharlstmError(f"{path} already exists and is not {what}; not replaced (remove it or name a new file)")
    return path


def open_read(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading bytes, never through a symbolic link (an OSError for one)."""
    return os.fdopen(os.open(path, os.O_RDONLY | O_NOFOLLOW), "rb")


def read_head(path: str | os.PathLike, size: int = 1 << 16) -> bytes:
    """At most the first `size` bytes of a file; b"" for a link or a file that cannot be read."""
    try:
        f = open_read(path)
    except OSError:
        return b""
    with f:
        return f.read(size)


def is_charlstm_page(path: Path) -> bool:
    """An HTML page charlstm wrote (it carries PAGE_GENERATOR near its top)."""
    return PAGE_GENERATOR.encode() in read_head(path, 4096)


def is_text_file(path: Path) -> bool:
    """A file whose first 64 KiB are UTF-8 text without NUL bytes (what `corpus --out` may replace),
    and not a charlstm page."""
    head = read_head(path)
    if b"\0" in head or PAGE_GENERATOR.encode() in head[:4096]:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return len(head) == 1 << 16 and error.start >= len(head) - 3  # a character cut at the 64 KiB boundary
    return True


def _in_run(folder: Path) -> bool:
    """The folder holds charlstm run files (a run, or a corpus prepared for one)."""
    return any(os.path.lexists(folder / name) for name in RUN_MARKERS) or (
        os.path.lexists(folder / METRICS) and os.path.lexists(folder / SAMPLES))


def is_run_dir(folder: str | os.PathLike) -> bool:
    """True when `folder` is a charlstm run folder (or one prepared for a run): reading a directory
    corpus skips such folders and everything under them."""
    return _in_run(Path(folder))


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_run_temp(name: str) -> bool:
    """`name` is the name of a temp file of a run file (a write in progress, or left by a killed one)."""
    return name.endswith(_TEMP_END) and any(name.startswith(f".{owner}.") for owner in _TEMP_OWNERS)


def stale_temps(folder: str | os.PathLike) -> list[Path]:
    """The temp files of run files in `folder` (stale ones, when the caller holds the run's lock)."""
    return [path for owner in _TEMP_OWNERS for path in Path(folder).glob(f".{owner}.*{_TEMP_END}")]


# ---- the co-writer's saves (charlstm write) ----

def check_text_output(path: str | os.PathLike) -> Path:
    """`check_output` for a plain-text file a user names to save into: never through a link, over
    a folder, a checkpoint, a run's file or a file that is not plain text; and its folder must exist
    already, so a mistyped name creates no folders. A one-line CharlstmError."""
    path = check_output(path, "a plain-text file", is_text_file)
    if not path.parent.is_dir():
        raise CharlstmError(f"no folder {path.parent}; create it first or choose another name")
    return path
