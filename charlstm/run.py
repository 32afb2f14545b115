"""The run directory as one object: its files, how each is written, its lock, its stale temp files.

A run directory (`checkpoints/<name>/` by default) holds

    latest.safetensors   best.safetensors   the checkpoints (written by checkpoint.save through `write_file`)
    metrics.jsonl        samples.txt        the training log and the previews, appended to
    corpus.ids.npy       corpus.json        the prepared corpus (ids + what they were made from)
    .lock                                   the pid of the process training it (an flock, dropped on death)
    .<name>.<token>.tmp                     a whole-file write in progress

This module is the only code that knows those names. Whole files are written through one helper
(temp file in the same folder, created exclusively without following links, fsync, rename, fsync the
folder), so a reader sees the old file or the new one, never half of one; appends never follow links.
Torch-free, and it knows nothing of training math, models or corpora beyond the ids it caches.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, TextIO

import numpy as np

from .errors import CheckpointError, TrainingError

LATEST, BEST = "latest.safetensors", "best.safetensors"
METRICS, SAMPLES, LOCK = "metrics.jsonl", "samples.txt", ".lock"
IDS_FILE, CORPUS_FILE = "corpus.ids.npy", "corpus.json"
DEFAULT_ROOT = Path("checkpoints")
_TEMP_OWNERS = (LATEST, BEST, METRICS)  # what a trainer writes under its lock: their temp files are its own


# --------------------------------------------------------------------------------------------
# Writing files


def write_file(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], None]) -> Path:
    """Replace `path` atomically with `content` (bytes, or a function writing to a binary file).

    The temp file lives in the same folder (so the rename is atomic), is created exclusively and
    never through a symbolic link, and reaches the disk before the rename; the folder is fsynced
    after it. On any failure the temp file is removed and the previous file is left intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o644)
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
    flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | (os.O_TRUNC if truncate else 0)
    return os.fdopen(os.open(path, flags, 0o644), "a", encoding="utf-8")


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


# --------------------------------------------------------------------------------------------
# The run directory


@dataclass(frozen=True)
class Run:
    """One run directory. Cheap to make; touches the disk only when a method is called."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # -- the files

    @property
    def latest(self) -> Path:
        return self.path / LATEST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    def has_checkpoint(self) -> bool:
        return self.latest.is_file()

    def create(self) -> None:
        """Make the folder (and its parents); a one-line TrainingError if that is impossible."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"{self.path}: cannot create the run directory ({error.strerror})") from None

    def remove_stale_temps(self) -> None:
        """Delete temp files left by a trainer killed mid-write (call with the lock held)."""
        for name in _TEMP_OWNERS:
            for stale in self.path.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)

    # -- the lock: one training process per run directory

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process (its pid written in `.lock`). The kernel drops the lock when
        its holder dies, so a crashed run never blocks the next one; a live holder is a TrainingError."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no lock
            yield
            return
        fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise self._busy(handle.read().strip()) from None
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield

    def refuse_if_busy(self) -> None:
        """A TrainingError naming the process that holds the lock, if one does: a run that has just
        started has no checkpoint yet, and that, not "nothing to resume", is what to tell the user."""
        holder = self.holder()
        if holder is not None:
            raise self._busy(holder)

    def holder(self) -> str | None:
        """The pid (as written, possibly '') of the process holding the lock; None when it is free."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no lock
            return None
        try:
            handle = open(self.path / LOCK, "r", encoding="utf-8")
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when the handle closes
            except OSError:
                return handle.read().strip()
        return None

    def _busy(self, holder: str) -> TrainingError:
        return TrainingError(f"{self.path} is being trained by another process (pid {holder or 'unknown'}); "
                             f"wait for it to finish or pass another --out")

    # -- the log and the previews

    def open_metrics(self, fresh: bool) -> TextIO:
        """metrics.jsonl for appending; emptied first for a fresh run."""
        return open_append(self.metrics, truncate=fresh)

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop log lines from steps after the checkpoint: they will be run again."""
        if not self.metrics.exists():
            return
        kept = [line for line in self.metrics.read_text(encoding="utf-8").splitlines()
                if line.strip() and _line_step(line) <= step]
        write_file(self.metrics, "".join(line + "\n" for line in kept).encode("utf-8"))

    def clear_samples(self) -> None:
        self.samples.unlink(missing_ok=True)

    def append_sample(self, step: int, val_bpc: float, text: str) -> None:
        with open_append(self.samples) as f:
            f.write(f"--- step {step}, val {val_bpc:.3f} bpc ---\n{text}\n\n")

    # -- the prepared corpus

    def load_ids(self, fingerprint: str, n_chars: int, vocab_chars: list[str]) -> np.ndarray | None:
        """The cached ids (memory-mapped) if they were made from this very text, else None."""
        try:
            meta = json.loads((self.path / CORPUS_FILE).read_text(encoding="utf-8"))
            if meta.get("fingerprint") != fingerprint or meta.get("chars") != n_chars or meta.get("vocab") != vocab_chars:
                return None
            ids = np.load(self.path / IDS_FILE, mmap_mode="r")
        except (OSError, ValueError, AttributeError):
            return None
        return ids if ids.shape == (n_chars,) else None

    def store_ids(self, dtype: np.dtype, n_chars: int, pieces: Iterable[np.ndarray], *, fingerprint: str,
                  vocab_chars: list[str], sources: list[str], encoding: str) -> np.ndarray:
        """Write the ids piece by piece as an .npy file, with what they were made from; return them memory-mapped."""
        def write(sink: BinaryIO) -> None:
            # The .npy header, then the ids appended with plain writes: the kernel's page cache holds
            # them, not this process (a memory map would count every page written in its RSS).
            np.lib.format.write_array_header_1_0(sink, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                        "fortran_order": False, "shape": (n_chars,)})
            for piece in pieces:
                sink.write(memoryview(piece))

        write_file(self.path / IDS_FILE, write)
        meta = {"fingerprint": fingerprint, "chars": n_chars, "vocab": vocab_chars, "sources": sources,
                "encoding": encoding}
        write_file(self.path / CORPUS_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        return np.load(self.path / IDS_FILE, mmap_mode="r")


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a kill: drop it


# --------------------------------------------------------------------------------------------
# Naming a new run, finding an old one


def default_out(files: list, root: str | os.PathLike | None = None) -> Run:
    """A new run under `root` (checkpoints/) named after the corpus: its file's stem, or its folder
    for several files; `-2`, `-3` … when that name already holds a run."""
    root = DEFAULT_ROOT if root is None else Path(root)
    first = str(files[0]) if files else "run"
    name = "stdin" if first == "-" else Path(first).stem or Path(first).name
    if len(files) > 1 and first != "-" and Path(first).parent != Path("."):
        name = Path(first).parent.name or name
    name = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "run"
    out, n = Run(root / name), 2
    while out.latest.exists():
        out, n = Run(root / f"{name}-{n}"), n + 1
    return out


def most_recent(root: str | os.PathLike = DEFAULT_ROOT) -> Run:
    """The run under `root` whose checkpoint was written last."""
    root = Path(root)
    found = [p for p in root.glob("*/" + LATEST)] + [p for p in root.glob("*/" + BEST)] if root.is_dir() else []
    if not found:
        raise CheckpointError(f"no trained model found under {root}/; run `charlstm train` first or name a checkpoint")
    return Run(max(found, key=lambda p: p.stat().st_mtime).parent)


def resolve(target: str | os.PathLike | None, root: str | os.PathLike = DEFAULT_ROOT, prefer: str = BEST) -> Path:
    """The checkpoint file a user means: a file as given, a run directory's best (else latest)
    checkpoint, or with no target the most recently written run under `root`."""
    path = most_recent(root).path if target is None else Path(target)
    if path.is_dir():
        for name in (prefer, BEST, LATEST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no {BEST} or {LATEST} in this directory")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path
