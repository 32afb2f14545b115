"""The run folder as one object: its checkpoints and caches, its claim and its lock; its log and previews are `Run.log`'s (logs.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from ..errors import CheckpointError, TrainingError, one_line
from ..files import (
    _NOFOLLOW,
    _TEMP_OWNERS,
    BEST,
    CORPUS_FILE,
    IDS_FILE,
    INDEX_FILE,
    INDEX_META,
    LATEST,
    LOCK,
    RUN_FILES,
    _head,
    _is_run_temp,
    is_link,
    write_file,
)
from .logs import RunLog

DEFAULT_ROOT = Path("checkpoints")


#: The kind stored in corpus.json, so a fresh run knows the prepared corpus there is its own.
CORPUS_KIND = "charlstm-corpus"


_HELD: dict[tuple[int, int], int] = {}  # run folders whose lock this process holds (st_dev, st_ino) → depth


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
    def log(self) -> RunLog:
        """The training log and the previews."""
        return RunLog(self.path)

    def has_checkpoint(self) -> bool:
        return self.latest.is_file()

    def create(self) -> None:
        """Make the folder (and its parents); a one-line TrainingError if that is impossible, or if
        the folder or one of its run files is a symbolic link."""
        self.refuse_links()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"{self.path}: cannot create the run directory ({error.strerror})") from None
        self.refuse_links()

    def refuse_links(self) -> None:
        """A TrainingError if the run folder, or any of its run files, is a symbolic link: a run's
        files are written only where the user named, never through a link planted in the folder."""
        if is_link(self.path):
            raise TrainingError(f"{self.path} is a symbolic link; charlstm writes a run only into a real folder "
                                f"(pass --out the folder itself)")
        if self.path.exists() and not self.path.is_dir():
            raise TrainingError(f"{self.path} exists and is not a folder; pass --out a new or empty folder")
        linked = [name for name in RUN_FILES if is_link(self.path / name)]
        if linked:
            raise TrainingError(f"{self.path / linked[0]} is a symbolic link; charlstm does not write through "
                                f"links (remove it, or pass --out another folder)")

    def foreign_files(self) -> list[str]:
        """Names in the folder that a fresh run may not replace: everything except the lock, temp
        files of run files, and a corpus prepared for the run (corpus.json of charlstm's kind, with
        its corpus.ids.npy)."""
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise TrainingError(f"{self.path}: cannot read the run directory ({error.strerror})") from None
        prepared = self._prepared_corpus()
        return [name for name in names
                if not (name == LOCK or _is_run_temp(name)
                        or (prepared and name in (IDS_FILE, CORPUS_FILE, INDEX_FILE, INDEX_META)))]

    def _prepared_corpus(self) -> bool:
        """corpus.json and corpus.ids.npy here are regular files charlstm wrote (by their contents)."""
        meta, ids = self.path / CORPUS_FILE, self.path / IDS_FILE
        if is_link(meta) or is_link(ids) or not meta.is_file():
            return False
        try:
            found = json.loads(_head(meta, MAX_CORPUS_META).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return False
        if not isinstance(found, dict) or found.get("kind", CORPUS_KIND) != CORPUS_KIND or "fingerprint" not in found:
            return False
        return not ids.exists() or (ids.is_file() and _head(ids, 6) == b"\x93NUMPY")

    def refuse_unless_fresh(self) -> None:
        """A TrainingError unless a fresh run may start here: the folder is new, empty, or holds only
        what `charlstm prepare` wrote for it. A folder with a run is for --resume; any other file in it
        is the user's and is never deleted or overwritten."""
        self.refuse_links()
        foreign = self.foreign_files()
        if not foreign:
            return
        if LATEST in foreign:
            raise TrainingError(f"{self} already holds a run; pass --resume to continue it or --out to start another")
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise TrainingError(f"{self} is not empty and holds no charlstm run to continue ({shown}); "
                            f"a new run needs a new or empty folder: pass another --out")

    def refuse_unless_resumable(self) -> None:
        """With --resume: a TrainingError for a folder that has run files but no latest checkpoint
        (a lone best.safetensors, a log): starting from scratch there would overwrite them."""
        self.refuse_links()
        if self.latest.is_file():
            return
        foreign = self.foreign_files()
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise TrainingError(f"{self}: nothing to resume (no {LATEST}), and it holds {shown}; "
                                f"not starting from scratch over them: pass --out a new or empty folder")

    def can_start(self) -> bool:
        """A fresh run could start here (see refuse_unless_fresh)."""
        try:
            self.refuse_unless_fresh()
        except TrainingError:
            return False
        return True

    @contextlib.contextmanager
    def claim(self, resume: bool = False) -> Iterator[None]:
        """Own the run folder for a fresh run (or a resumed one): refuse it before anything is
        written, then create it, take the lock, remove stale temp files and check again under the
        lock (another process may have started meanwhile). Everything that writes the run —
        preparation included — happens inside."""
        check = self.refuse_unless_resumable if resume else self.refuse_unless_fresh
        check()
        existed, had_lock = self.path.is_dir(), os.path.lexists(self.path / LOCK)
        self.create()
        try:
            with self.lock():
                check()
                yield
        except BaseException:
            self._undo_claim(existed, had_lock)
            raise

    def _undo_claim(self, existed: bool, had_lock: bool) -> None:
        """After a refused or failed command: if the folder holds nothing but the lock this claim
        made, remove the lock (and the folder, if the claim made it), so a refusal leaves no trace."""
        try:
            if had_lock or os.listdir(self.path) != [LOCK] or self.holder() is not None:
                return
            (self.path / LOCK).unlink()
            if not existed:
                self.path.rmdir()
        except OSError:
            pass

    def remove_stale_temps(self) -> None:
        """Delete temp files left by a writer killed mid-write (call with the lock held: every
        writer of a run file holds it, so no temp file of a run file is in use)."""
        for name in _TEMP_OWNERS:
            for stale in self.path.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)  # a link among them: unlinking touches only the link

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
        self.refuse_links()
        key = self._key()
        if key is not None and _HELD.get(key):  # this process holds it already (claim, then train)
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        try:
            fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR | _NOFOLLOW, 0o644)
        except OSError as error:
            if is_link(self.path / LOCK):
                self.refuse_links()
            raise TrainingError(f"{self.path / LOCK}: cannot create the lock ({error.strerror})") from None
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise self._busy(handle.read().strip()) from None
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            key = self._key()
            if key is not None:
                _HELD[key] = 1
            try:
                self.remove_stale_temps()
                yield
            finally:
                if key is not None:
                    _HELD.pop(key, None)

    def holds_lock(self) -> bool:
        """This process holds the run's lock."""
        key = self._key()
        return key is not None and bool(_HELD.get(key))

    def _key(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

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
            handle = os.fdopen(os.open(self.path / LOCK, os.O_RDONLY | _NOFOLLOW), "r", encoding="utf-8")
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

    # -- the prepared corpus

    def load_ids(self, fingerprint: str, n_chars: int, vocab_chars: list[str]) -> np.ndarray | None:
        """The cached ids (memory-mapped) if they were made from this very text, else None. The ids
        themselves are checked too (integers, each an index into `vocab_chars`: one pass over the
        map), so a damaged cache is made again rather than read past the embedding."""
        try:
            meta = json.loads((self.path / CORPUS_FILE).read_text(encoding="utf-8"))
            if meta.get("fingerprint") != fingerprint or meta.get("chars") != n_chars or meta.get("vocab") != vocab_chars:
                return None
            ids = np.load(self.path / IDS_FILE, mmap_mode="r")
        except (OSError, ValueError, AttributeError):
            return None
        if ids.shape != (n_chars,) or ids.dtype.kind not in "ui":
            return None
        if n_chars and not (int(ids.min()) >= 0 and int(ids.max()) < len(vocab_chars)):
            return None
        return ids

    def may_replace_ids(self) -> bool:
        """The id cache may be (re)written: the folder holds no trained run yet, or that run's cache
        is gone. A run's cache of its own corpus is never replaced by another text."""
        return not self.latest.exists() or not (self.path / CORPUS_FILE).exists()

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
        meta = {"kind": CORPUS_KIND, "fingerprint": fingerprint, "chars": n_chars, "vocab": vocab_chars, "sources": sources,
                "encoding": encoding}
        write_file(self.path / CORPUS_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        return np.load(self.path / IDS_FILE, mmap_mode="r")


    # -- the suffix array of the prepared corpus (the memorisation check's index)

    def cached_corpus(self) -> tuple[np.ndarray, list[str], str] | None:
        """(ids memory-mapped, the characters they index, the text's fingerprint) from the id
        cache, or None when the folder holds no valid one."""
        meta, ids_path = self.path / CORPUS_FILE, self.path / IDS_FILE
        if is_link(meta) or is_link(ids_path) or not meta.is_file() or not ids_path.is_file():
            return None
        try:
            found = json.loads(_head(meta, MAX_CORPUS_META).decode("utf-8"))
            ids = np.load(ids_path, mmap_mode="r")
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(found, dict):
            return None
        chars, fingerprint = found.get("vocab"), found.get("fingerprint")
        if (not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars)
                or not isinstance(fingerprint, str) or ids.ndim != 1 or ids.dtype.kind not in "ui"
                or ids.shape != (found.get("chars"),)):
            return None
        return ids, chars, fingerprint

    def _ids_key(self) -> dict:
        """What the index was made from: the id file's size and content hash."""
        import hashlib

        digest, size = hashlib.blake2b(digest_size=16), 0
        with os.fdopen(os.open(self.path / IDS_FILE, os.O_RDONLY | _NOFOLLOW), "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
                size += len(chunk)
        return {"kind": "charlstm-suffix-array", "version": 1, "ids_bytes": size, "ids_hash": digest.hexdigest()}

    def load_index(self) -> tuple[np.ndarray | None, str]:
        """(the cached suffix array, memory-mapped, "loaded") if it was made from the ids there now,
        else (None, why not)."""
        sa_path, meta = self.path / INDEX_FILE, self.path / INDEX_META
        if is_link(sa_path) or is_link(meta) or not sa_path.is_file() or not meta.is_file():
            return None, "none cached"
        try:
            stored = json.loads(_head(meta, 4096).decode("utf-8"))
            if stored != self._ids_key():
                return None, "stale"
            sa = np.load(sa_path, mmap_mode="r")
            ids = np.load(self.path / IDS_FILE, mmap_mode="r")
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None, "unreadable"
        if sa.shape != ids.shape or sa.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            return None, "unreadable"
        return sa, "loaded"

    def store_index(self, sa: np.ndarray) -> str:
        """Cache the suffix array of the ids (under the run's lock); how that went, for the report.
        A run being trained by another process is not written to: the index is then only used."""
        try:
            with self.lock():
                key = self._ids_key()
                write_file(self.path / INDEX_FILE, lambda sink: np.save(sink, np.ascontiguousarray(sa)))
                write_file(self.path / INDEX_META, json.dumps(key).encode("utf-8"))
        except TrainingError as error:  # busy: another process trains it; or a link planted among its files

            return f"built (not cached: {one_line(error)})"
        except OSError as error:
            return f"built (not cached: {error.strerror or error})"
        return "built and cached"


#: corpus.json holds the vocabulary: a vocabulary of every Unicode scalar value is ~7 M characters.
MAX_CORPUS_META = 64 << 20


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
    while not out.can_start():  # a run, or a folder of someone else's files: the next name
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
