"""A run's model as a small folder to share: `charlstm export RUN --out DIR`.

A training checkpoint is mostly what resuming needs (AdamW's two moments, the carried state, RNG
states). The export keeps the weights, the vocabulary, the model config and the training metadata
(budget, scores, where the corpus was), drops the rest, and copies the run's log and previews, so
`inspect`, `sample`, `score`, `write` and `report` work on the folder as on the run. It cannot be
resumed. The corpus paths it records are relative to DIR when they can be (texts.training_corpus
reads a relative path from the checkpoint's folder), so a folder committed beside a corpus, or
copied with it, still finds its training text in another checkout.

All or nothing: the folder is built under a temp name beside DIR (files.temp_beside), held by a
lock while it is built, and renamed to DIR when it is whole; the log and previews are streamed
into it (files.copy_file), whatever their size. A failure removes it; a temp folder left by a
killed export (its lock free, nothing in it but what an export writes) is removed by the next
export to the same DIR. DIR itself holds nothing until the rename.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import TrainingError
from ..files import (
    BEST,
    LOCK,
    METRICS,
    SAMPLES,
    copy_file,
    is_run_temp,
    make_folders,
    read_head,
    temp_beside,
    temps_beside,
    terminate_as_interrupt,
)
from .checkpoint import Checkpoint, load, save
from .folder import Run, resolve


@dataclass(frozen=True)
class Exported:
    path: Path                 # the checkpoint written
    source: Path               # the checkpoint it came from
    bytes_before: int
    bytes_after: int
    copied: tuple[str, ...]    # run files copied beside it (metrics.jsonl, samples.txt)


def export_run(source: str | os.PathLike | None, out: str | os.PathLike) -> Exported:
    """Write the weights-only copy of `source` (a run folder's best checkpoint, or a checkpoint
    file; default the most recent run) into the new or empty folder `out`, whole or not at all."""
    path = resolve(source)
    loaded = load(path)
    target = Run(out)
    _refuse(target)
    make_folders(target.path.parent, " for --out")
    _remove_dead_exports(target.path)
    building = Run(temp_beside(target.path))
    try:
        with terminate_as_interrupt():
            building.create()
            with building.lock():
                copied = _fill(building, loaded, Run(path.parent), target.path)
                _refuse(target)
                _rename(building.path, target)
    except BaseException:
        shutil.rmtree(building.path, ignore_errors=True)
        raise
    (target.path / LOCK).unlink(missing_ok=True)
    written = target.best
    return Exported(written, path, path.stat().st_size, written.stat().st_size, copied)


def _refuse(target: Run) -> None:
    """A TrainingError unless `target` is a new or empty folder (a run, or anything else, there is
    never replaced)."""
    target.refuse_links()
    if target.path.is_dir() and any(os.scandir(target.path)):
        raise TrainingError(f"{target} is not empty; export writes only into a new or empty folder: pass another --out")


def _fill(building: Run, loaded: Checkpoint, run: Run, out: Path) -> tuple[str, ...]:
    """Write the weights-only checkpoint and copy the run's log and previews into `building`;
    the names of the files copied."""
    train = copy.deepcopy(loaded.train)
    corpus = train.get("corpus") or {}
    if corpus.get("paths"):
        corpus["paths"] = [_relative(p, out) for p in corpus["paths"]]
    save(building.best, Checkpoint(loaded.config, loaded.vocab, loaded.model_state, train=train))
    copied = []
    for name in (run.log.metrics, run.log.samples):
        if os.path.lexists(name):
            copy_file(name, building.path / name.name, TrainingError)
            copied.append(name.name)
    return tuple(copied)


def _rename(building: Path, target: Run) -> None:
    """Put the whole export in place: a rename replaces an empty folder, never a full one."""
    try:
        os.rename(building, target.path)
    except OSError as error:
        raise TrainingError(f"{target}: cannot export into it ({error.strerror}); export writes only into a new "
                            f"or empty folder: pass another --out") from None


def _remove_dead_exports(out: Path) -> None:
    """Remove the temp folders beside `out` that exports killed before their rename left: a
    folder (not a link) holding only what an export writes, whose lock no process holds any more
    (an empty folder: killed before it took its lock). Anything else under such a name is left."""
    for folder in temps_beside(out):
        if folder.is_symlink() or not folder.is_dir():
            continue
        names = os.listdir(folder)
        if not names:
            with contextlib.suppress(OSError):
                folder.rmdir()  # removes an empty folder only
        elif all(name in _EXPORT_FILES or is_run_temp(name) for name in names) and _dead(Run(folder), names):
            shutil.rmtree(folder, ignore_errors=True)


def _dead(folder: Run, names: list[str]) -> bool:
    """The process that built `folder` is gone: its lock is a regular file no process holds, and
    holds the pid it wrote (or is all there is: killed before writing it)."""
    lock = folder.path / LOCK
    if LOCK not in names or not lock.is_file() or lock.is_symlink() or folder.holder() is not None:
        return False
    return read_head(lock, 32).strip().isdigit() or names == [LOCK]


#: What an export writes into its folder.
_EXPORT_FILES = (BEST, LOCK, METRICS, SAMPLES)


def _relative(recorded: str, folder: Path) -> str:
    """`recorded` (an absolute corpus path) relative to `folder`, or as it was where it cannot be
    (stdin, another drive)."""
    if recorded == "-" or not os.path.isabs(recorded):
        return recorded
    try:
        return os.path.relpath(recorded, folder.resolve())
    except ValueError:
        return recorded
