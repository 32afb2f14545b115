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
of one; appends and reads never follow links. Every reader of a file (a run's files, a checkpoint,
a corpus, a prime) opens it through `open_regular`, the one check of a file's kind: a FIFO, a
device, a directory, a socket or a link is named in one line before a byte is read, and opening
one never blocks. Outputs the user names elsewhere (`inspect --html`,
`corpus --out`) go through `check_output` first: never through a link, never over a checkpoint or
a file of another kind.

The bottom of the house: imports nothing of charlstm but its errors, and nothing heavy. What a
run folder may hold and who may write it (claim, lock) is runs/folder.py's.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import shutil
import stat
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


#: Open flags that keep opening a FIFO from blocking and a terminal from becoming ours (0 where absent).
_NO_WAIT = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


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
    tmp = temp_beside(path)
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
    """A UTF-8 text file opened for appending (emptied first with truncate=True); never follows a
    link, and refuses a file that is not a regular one as `open_regular` does."""
    flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND | (os.O_TRUNC if truncate else 0)
    return os.fdopen(_open_checked(path, flags, CharlstmError, follow=False), "a", encoding="utf-8")


def temp_beside(path: str | os.PathLike) -> Path:
    """A new name for a temp file (or folder) that will replace `path`, in the same folder:
    `.<name>.<pid>-<token>.tmp`."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_END}"


def temps_beside(path: str | os.PathLike) -> list[Path]:
    """The temp names (see `temp_beside`) that exist for `path`: writes in progress, or left by
    killed writers."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*{_TEMP_END}"))


def copy_file(source: str | os.PathLike, target: str | os.PathLike, error: type[CharlstmError] = CharlstmError) -> Path:
    """Replace `target` atomically (write_file) with a copy of the regular file `source`, streamed
    a piece at a time; the holes of a sparse file stay holes (they are skipped, not read)."""
    with open_regular(source, error) as f:
        return write_file(target, lambda sink: _copy_stream(f, sink))


def _copy_stream(source: BinaryIO, sink: BinaryIO) -> None:
    """`source` into `sink` from their starts, a piece at a time: its data written, its holes left
    as holes. Read by offset (os.pread), so looking for data never moves a buffered reader's file
    position behind its back; a file that grows meanwhile is copied as long as it was."""
    if not hasattr(os, "pread"):  # no reads by offset here: a plain streamed copy
        shutil.copyfileobj(source, sink, 1 << 20)
        return
    fd = source.fileno()
    size, at = os.fstat(fd).st_size, 0
    while at < size:
        start, end = _data_span(fd, at, size)
        sink.seek(start)
        while start < end:
            piece = os.pread(fd, min(end - start, 1 << 20), start)
            if not piece:  # it shrank meanwhile: the copy ends where it does
                sink.truncate(start)
                return
            sink.write(piece)
            start += len(piece)
        at = end
    sink.truncate(size)


def _data_span(fd: int, at: int, size: int) -> tuple[int, int]:
    """The next run of data in the file from `at`: (start, end), (size, size) when only a hole is
    left; the whole rest where the system cannot tell data from holes."""
    try:
        start = os.lseek(fd, at, os.SEEK_DATA)
        return start, min(os.lseek(fd, start, os.SEEK_HOLE), size)
    except (AttributeError, OSError) as error:
        if getattr(error, "errno", None) == errno.ENXIO:  # no data after `at`
            return size, size
        return at, size


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


# ---- reading: regular files only

def open_regular(path: str | os.PathLike, error: type[CharlstmError] = CharlstmError, follow: bool = False,
                 write: bool = False) -> BinaryIO:
    """`path` opened for reading bytes (with write=True: for reading and writing, created if
    missing) if it is a regular file. Anything else is `error`'s one line naming the path and its
    kind (see `not_regular`), raised before a byte is read: opening a FIFO does not wait for a
    writer, a device is not opened at all, a terminal never becomes the process's. A symbolic link
    is refused unless `follow` (a corpus or a checkpoint the user names may be one). A missing
    file is a FileNotFoundError, for the caller to word; any other failure is `error`'s line."""
    flags = os.O_CREAT | os.O_RDWR if write else os.O_RDONLY
    return os.fdopen(_open_checked(path, flags, error, follow), "r+b" if write else "rb")


@contextlib.contextmanager
def regular_path(path: str | os.PathLike, error: type[CharlstmError] = CharlstmError,
                 follow: bool = False) -> Iterator[str]:
    """A name to hand a library that opens files by name (safetensors, numpy's memory maps): the
    file is opened and checked by `open_regular`, and the name is that open file's own
    (/proc/self/fd/N) where the system has one, so what the library opens is the file checked."""
    with open_regular(path, error, follow) as f:
        own = f"/proc/self/fd/{f.fileno()}"
        yield own if os.path.exists(own) else os.fspath(path)


def is_regular(path: str | os.PathLike, error: type[CharlstmError] = CharlstmError, follow: bool = False) -> bool:
    """True for a regular file at `path`, False when nothing is there; anything else there is
    `error`'s one line (see `not_regular`). Opens nothing."""
    _refuse_kind(path, error, follow)
    return os.path.exists(path) if follow else os.path.lexists(path)


def not_regular(path: str | os.PathLike, kind: str, error: type[CharlstmError] = CharlstmError) -> CharlstmError:
    """The one message for a file of the wrong kind: `<path>: not a regular file (a FIFO)`."""
    return error(f"{path}: not a regular file ({kind})")


def file_kind(mode: int) -> str:
    """What a file of `st_mode` is, in words: 'a FIFO', 'a device', 'a directory' …"""
    for test, kind in ((stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "a file of an unknown kind"


def _refuse_kind(path: str | os.PathLike, error: type[CharlstmError], follow: bool) -> None:
    """`error` (see `not_regular`) if something other than a regular file is at `path`; nothing
    when a regular file or nothing at all is there."""
    try:
        mode = (os.stat if follow else os.lstat)(path).st_mode
    except FileNotFoundError:
        if follow and is_link(path):
            raise not_regular(path, "a symbolic link to nothing", error) from None
        return
    except OSError as failed:
        if failed.errno == errno.ELOOP:
            raise not_regular(path, "a loop of symbolic links", error) from None
        return  # for the open to report
    if not stat.S_ISREG(mode):
        raise not_regular(path, file_kind(mode), error)


def _open_checked(path: str | os.PathLike, flags: int, error: type[CharlstmError], follow: bool) -> int:
    """The one check of a file's kind, as a file descriptor: the path is looked at first (so a
    device is not opened at all), then opened without waiting and without following a link
    (unless `follow`) and looked at again through the descriptor (so what was checked is what is
    read), and set back to blocking reads."""
    _refuse_kind(path, error, follow)
    try:
        fd = os.open(path, flags | _NO_WAIT | (0 if follow else O_NOFOLLOW), 0o644)
    except FileNotFoundError:
        _refuse_kind(path, error, follow)  # a link to nothing
        raise
    except OSError as failed:
        _refuse_kind(path, error, follow)  # it changed kind meanwhile, or it is a link (O_NOFOLLOW)
        doing = "read" if flags & (os.O_WRONLY | os.O_RDWR) == 0 else "open"
        raise error(f"{path}: cannot {doing} ({failed.strerror or failed})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, file_kind(mode), error)
        if _NO_WAIT:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_head(path: str | os.PathLike, size: int = 1 << 16) -> bytes:
    """At most the first `size` bytes of a file; b"" for a link, a file of another kind than a
    regular one, or one that cannot be read."""
    try:
        f = open_regular(path)
    except (OSError, CharlstmError):
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
    return [path for owner in _TEMP_OWNERS for path in temps_beside(Path(folder) / owner)]


# ---- the co-writer's saves (charlstm write) ----

def check_text_output(path: str | os.PathLike) -> Path:
    """`check_output` for a plain-text file a user names to save into: never through a link, over
    a folder, a checkpoint, a run's file or a file that is not plain text; and its folder must exist
    already, so a mistyped name creates no folders. A one-line CharlstmError."""
    path = check_output(path, "a plain-text file", is_text_file)
    if not path.parent.is_dir():
        raise CharlstmError(f"no folder {path.parent}; create it first or choose another name")
    return path
