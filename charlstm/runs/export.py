"""A run's model as a small folder to share: `charlstm export RUN --out DIR`.

A training checkpoint is mostly what resuming needs (AdamW's two moments, the carried state, RNG
states). The export keeps the weights, the vocabulary, the model config and the training metadata
(budget, scores, where the corpus was), drops the rest, and copies the run's log and previews, so
`inspect`, `sample`, `score`, `write` and `report` work on the folder as on the run. It cannot be
resumed. The corpus paths it records are relative to DIR when they can be (texts.training_corpus
reads a relative path from the checkpoint's folder), so a folder committed beside a corpus, or
copied with it, still finds its training text in another checkout.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import TrainingError
from ..files import is_link, write_file
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
    file; default the most recent run) into the new or empty folder `out`."""
    path = resolve(source)
    loaded = load(path)
    target = Run(out)
    target.refuse_links()
    if target.foreign_files():  # a run (or anything else) there is never replaced
        raise TrainingError(f"{target} is not empty; export writes only into a new or empty folder: pass another --out")
    target.create()
    train = copy.deepcopy(loaded.train)
    corpus = train.get("corpus") or {}
    if corpus.get("paths"):
        corpus["paths"] = [_relative(p, target.path) for p in corpus["paths"]]
    written = save(target.best, Checkpoint(loaded.config, loaded.vocab, loaded.model_state, train=train))
    copied = []
    run = Run(path.parent)
    for name in (run.log.metrics, run.log.samples):
        if name.is_file() and not is_link(name):
            write_file(target.path / name.name, name.read_bytes())
            copied.append(name.name)
    return Exported(written, path, path.stat().st_size, written.stat().st_size, tuple(copied))


def _relative(recorded: str, folder: Path) -> str:
    """`recorded` (an absolute corpus path) relative to `folder`, or as it was where it cannot be
    (stdin, another drive)."""
    if recorded == "-" or not os.path.isabs(recorded):
        return recorded
    try:
        return os.path.relpath(recorded, folder.resolve())
    except ValueError:
        return recorded
