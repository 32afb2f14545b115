"""The training metadata a training checkpoint carries (its `train` JSON), as one typed, validated record.

`RunInfo.to_dict()` writes the checkpoint's `train` JSON; `RunInfo.from_dict()` checks every field
by type and range (a count or a figure within the bounds of every number a run records, logs.py's)
and turns anything wrong into one CheckpointError line naming the field. A field
a checkpoint may lack (elapsed time, fingerprint, recipe …) takes its default. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..config import MAX_VOCAB_SIZE, Bounds, TrainConfig, bounds
from ..data.streams import StreamLayout
from ..errors import CheckpointError, ConfigError
from .logs import FIGURE_BOUNDS, STEP_BOUNDS


@dataclass(frozen=True)
class CorpusSource:
    """Where a run's corpus came from, so `--resume` can read it again."""

    paths: tuple[str, ...] = ()
    encoding: str = "utf-8"

    def to_dict(self) -> dict:
        return {"paths": list(self.paths), "encoding": self.encoding}


@dataclass(frozen=True)
class StartedFrom:
    """The model a run started from (`train --init-from`): the name or path as the user gave it, the
    fingerprint of its weights (checkpoint.Checkpoint.fingerprint), and how many characters its
    vocabulary had (the run's first ids are its characters, in its order)."""

    source: str
    fingerprint: str
    chars: int

    def to_dict(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint, "chars": self.chars}


@dataclass(frozen=True)
class RunInfo:
    """Where a run stands: position, clock, scores, recipe, data layout, optimizer groups, corpus."""

    step: int
    layout: StreamLayout
    optimizer_groups: tuple[dict, ...]    # AdamW param_groups as JSON; the moments are tensors
    train_config: TrainConfig = TrainConfig()
    elapsed_s: float = 0.0
    best_val_bpc: float | None = None
    last_val_bpc: float | None = None
    corpus: CorpusSource | None = None
    corpus_chars: int | None = None
    corpus_fingerprint: str | None = None
    torch: str | None = None              # the version that wrote it
    finished: bool = False                # its budget was spent (a --resume with the same budget has nothing to do)
    evals_since_best: int = 0             # evaluations since the best validation figure (for --patience)
    stopped: str | None = None            # why it stopped before its budget was spent (--patience), if it did
    device: str | None = None             # where the last session trained ("cpu", "cuda:0")
    threads: str | None = None            # its CPU thread choice, as runtime.ThreadTuner.describe() says it
    half_windows: int | None = None       # the streams' position in half windows (a step reads one or two); None: 2 × step
    init_from: StartedFrom | None = None  # the model it started from, if not from scratch

    @property
    def position(self) -> int:
        """Half windows read so far: where the next step starts in the streams."""
        return 2 * self.step if self.half_windows is None else self.half_windows

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "best_val_bpc": self.best_val_bpc,
            "last_val_bpc": self.last_val_bpc,
            "train_config": self.train_config.to_dict(),
            "layout": asdict(self.layout),
            "optimizer_groups": [dict(g) for g in self.optimizer_groups],
            "corpus": self.corpus.to_dict() if self.corpus else {},
            "corpus_chars": self.corpus_chars,
            "corpus_fingerprint": self.corpus_fingerprint,
            "torch": self.torch,
            **({"finished": True} if self.finished else {}),
            **({"evals_since_best": self.evals_since_best} if self.evals_since_best else {}),
            **({"stopped": self.stopped} if self.stopped else {}),
            **({"device": self.device} if self.device else {}),
            **({"threads": self.threads} if self.threads else {}),
            **({"half_windows": self.half_windows} if self.half_windows not in (None, 2 * self.step) else {}),
            **({"init_from": self.init_from.to_dict()} if self.init_from else {}),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "checkpoint") -> "RunInfo":
        """Validate and type the `train` JSON of a checkpoint; `where` starts each error message."""
        check = _Checker(where)
        if not isinstance(d, Mapping):
            raise check.fail("train", "is not an object")
        step = check.integer(d, "step", required=True)
        halves = check.integer(d, "half_windows", minimum=step, maximum=2 * step)  # one or two per step
        return cls(
            step=step,
            half_windows=halves,
            layout=_layout(check, d.get("layout")),
            optimizer_groups=_groups(check, d.get("optimizer_groups")),
            train_config=_train_config(check, d.get("train_config")),
            elapsed_s=check.number(d, "elapsed_s", default=0.0),
            best_val_bpc=check.number(d, "best_val_bpc", default=None, finite=False),
            last_val_bpc=check.number(d, "last_val_bpc", default=None, finite=False),
            corpus=_corpus(check, d.get("corpus")),
            corpus_chars=check.integer(d, "corpus_chars"),
            corpus_fingerprint=check.text(d, "corpus_fingerprint"),
            torch=check.text(d, "torch"),
            finished=d.get("finished") is True,
            evals_since_best=check.integer(d, "evals_since_best") or 0,
            stopped=check.text(d, "stopped"),
            device=check.text(d, "device"),
            threads=check.text(d, "threads"),
            init_from=_started_from(check, d.get("init_from")),
        )


class _Checker:
    """Field checks that raise one CheckpointError line naming the field; what a field accepts is a
    config.Bounds (a training config field's own, where the field is one)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, name: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: training metadata field {name!r} {problem}")

    def value(self, d: Mapping, name: str, accepts: Bounds, *, required: bool = False, label: str | None = None):
        """d[name] if `accepts` takes it; None when it is missing (an error when `required`)."""
        value = d.get(name)
        label = label or name
        if value is None:
            if required:
                raise self.fail(label, "is missing")
            return None
        problem = accepts.problem(value)
        if problem is not None:
            raise self.fail(label, problem[1])
        return value

    def integer(self, d: Mapping, name: str, *, required: bool = False, minimum: int = 0,
                maximum: int = STEP_BOUNDS.high, label: str | None = None):
        return self.value(d, name, Bounds(minimum, maximum, integer=True), required=required, label=label)

    def number(self, d: Mapping, name: str, *, default, finite: bool = True, minimum: float = 0.0,
               label: str | None = None):
        value = d.get(name)
        if value is None:
            return default
        if not finite and isinstance(value, float) and math.isnan(value):  # a validation on an empty split scores NaN
            return value
        return float(self.value(d, name, Bounds(minimum, FIGURE_BOUNDS.high), label=label))

    def text(self, d: Mapping, name: str) -> str | None:
        value = d.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {value!r:.40}")
        return value


def _layout(check: _Checker, value: Any) -> StreamLayout:
    if not isinstance(value, Mapping):
        raise check.fail("layout", "is missing" if value is None else "is not an object")
    unknown = set(value) - {f.name for f in fields(StreamLayout)}
    if unknown:
        raise check.fail("layout", f"has unknown keys {sorted(unknown)}")
    n_chars = check.integer(value, "n_chars", required=True, minimum=1, label="layout.n_chars")
    batch, seq_len, seed = (check.value(value, name, bounds(TrainConfig, name), required=name != "seed",
                                        label=f"layout.{name}") for name in ("batch_size", "seq_len", "seed"))
    return StreamLayout(n_chars, batch, seq_len, 0 if seed is None else seed)


def _groups(check: _Checker, value: Any) -> tuple[dict, ...]:
    if value is None:
        raise check.fail("optimizer_groups", "is missing")
    if not isinstance(value, list) or not all(isinstance(g, Mapping) for g in value):
        raise check.fail("optimizer_groups", "must be a list of objects")
    for group in value:
        params = group.get("params")
        if not isinstance(params, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in params):
            raise check.fail("optimizer_groups", "must list each group's parameter indices")
    return tuple(dict(g) for g in value)


def _train_config(check: _Checker, value: Any) -> TrainConfig:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise check.fail("train_config", "is not an object")
    try:
        return TrainConfig.from_dict(dict(value))
    except (ConfigError, TypeError) as error:  # each field's type and range: TrainConfig's own Bounds
        raise check.fail("train_config", f"is refused: {error}") from None


def _corpus(check: _Checker, value: Any) -> CorpusSource | None:
    if not value:
        return None
    if not isinstance(value, Mapping):
        raise check.fail("corpus", "is not an object")
    paths, encoding = value.get("paths") or [], value.get("encoding", "utf-8")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise check.fail("corpus.paths", "must be a list of strings")
    if not isinstance(encoding, str):
        raise check.fail("corpus.encoding", f"must be a string, not {encoding!r:.40}")
    return CorpusSource(tuple(paths), encoding)


def _started_from(check: _Checker, value: Any) -> StartedFrom | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise check.fail("init_from", "is not an object")
    source, fingerprint = check.text(value, "source"), check.text(value, "fingerprint")
    if not source or not fingerprint:
        raise check.fail("init_from", "must name its source and fingerprint")
    chars = check.integer(value, "chars", required=True, minimum=1, maximum=MAX_VOCAB_SIZE, label="init_from.chars")
    return StartedFrom(source, fingerprint, chars)
