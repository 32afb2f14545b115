"""The run folder: which files it has, who may write it (claim, refusals, the lock), and finding runs.

The folder is owned: `Run.claim` refuses it before anything is written (a fresh run needs a new or
empty folder, or one holding only what `charlstm prepare` wrote; --resume needs `latest` or an
empty folder; a folder or run file that is a symbolic link is always refused), then takes the lock,
removes stale temp files of every run file and checks again. Every writer of a run file (train,
prepare, the novelty index) holds the lock; it is re-entrant within a process. The log and the
previews are `Run.log`'s (runs/logs.py); the id and index caches are runs/caches.py's. File names
come from files.py. Knows no training math.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import CheckpointError, TrainingError, one_line
from ..files import (
    BEST,
    CORPUS_FILE,
    IDS_FILE,
    INDEX_FILE,
    INDEX_META,
    LATEST,
    LOCK,
    RUN_FILES,
    is_link,
    is_regular,
    is_run_temp,
    open_regular,
    stale_temps,
)
from .caches import holds_prepared_corpus
from .logs import RunLog

DEFAULT_ROOT = Path("checkpoints")


#: What `charlstm prepare` (and the memorisation check's index) leave in a folder a fresh run may take.
_PREPARED = (IDS_FILE, CORPUS_FILE, INDEX_FILE, INDEX_META)


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
        """The run has a latest checkpoint; a CheckpointError if what is there is not a regular file."""
        return is_regular(self.latest, CheckpointError, follow=True)

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
        prepared = holds_prepared_corpus(self.path)
        return [name for name in names
                if not (name == LOCK or is_run_temp(name) or (prepared and name in _PREPARED))]

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
        raise TrainingError(f"{self} is not empty and holds no charlstm run to continue ({_listed(foreign)}); "
                            f"a new run needs a new or empty folder: pass another --out")

    def refuse_unless_resumable(self) -> None:
        """With --resume: a TrainingError for a folder that has run files but no latest checkpoint
        (a lone best.safetensors, a log): starting from scratch there would overwrite them."""
        self.refuse_links()
        if is_regular(self.latest, TrainingError):
            return
        foreign = self.foreign_files()
        if foreign:
            raise TrainingError(f"{self}: nothing to resume (no {LATEST}), and it holds {_listed(foreign)}; "
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
        for stale in stale_temps(self.path):
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
            handle = open_regular(self.path / LOCK, TrainingError, write=True)
        except TrainingError:
            self.refuse_links()  # a link planted as the lock is named as one
            raise
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise self._busy(_pid(handle)) from None
            handle.truncate()
            handle.write(str(os.getpid()).encode())
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
            handle = open_regular(self.path / LOCK, TrainingError)
        except (OSError, TrainingError):  # no lock, or none a process could hold
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when the handle closes
            except OSError:
                return _pid(handle)
        return None

    def _busy(self, holder: str) -> TrainingError:
        return TrainingError(f"{self.path} is being trained by another process (pid {holder or 'unknown'}); "
                             f"wait for it to finish or pass another --out")


def _pid(lock) -> str:
    """The pid a lock file holds, as written (at most a few digits are read)."""
    return one_line(lock.read(32).decode("utf-8", errors="replace").strip(), limit=24)


def _listed(names: list[str]) -> str:
    """The first three names, and how many more, for a refusal."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


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
    return Run(max(found, key=lambda p: p.lstat().st_mtime).parent)  # lstat: a link to nothing has a time too


def resolve(target: str | os.PathLike | None, root: str | os.PathLike = DEFAULT_ROOT, prefer: str = BEST) -> Path:
    """The checkpoint file a user means: a file as given, a run directory's best (else latest)
    checkpoint, or with no target the most recently written run under `root`."""
    path = most_recent(root).path if target is None else Path(target)
    if path.is_dir():
        for name in (prefer, BEST, LATEST):
            if is_regular(path / name, CheckpointError, follow=True):
                return path / name
        raise CheckpointError(f"{path}: no {BEST} or {LATEST} in this directory")
    if not os.path.lexists(path):
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path  # a file of another kind is named by checkpoint.load
