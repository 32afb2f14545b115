"""What a run may go on from, and what `charlstm train` trains: `refuse_resume`, the one check of
whether a run may be resumed from its checkpoint with a corpus and a recipe (training state present
and finite, the same corpus, budget left), the stream layout a resumed run keeps, the recipe it
continues with, and `plan_run`, which picks the run folder, the corpus and the recipe. Knows
checkpoints and run folders; trains nothing (loop.py does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ..config import ModelConfig, TrainConfig, format_duration
from ..data.corpus import Corpus
from ..data.reading import corpus_files, default_corpus_path
from ..data.streams import StreamLayout, fit_layout
from ..errors import CheckpointError, CorpusError, TrainingError, one_line
from ..runs import checkpoint as ckpt
from ..runs.folder import Run, default_out, most_recent
from ..runs.runinfo import RunInfo
from .checkpoints import nonfinite_tensor
from .clock import budget_left

# --------------------------------------------------------------------------------------------
# May a run go on from its checkpoint: the training state a resume reads, the corpus, the budget left


def refuse_resume(saved: ckpt.Checkpoint, run: Run, config: TrainConfig, corpus: Corpus | None = None, *,
                  complete: bool = False) -> str | None:
    """Whether `run` may go on from `saved`, its latest checkpoint, under `config` and — once it is
    read — with `corpus` (None: not read yet, as when `charlstm train` plans the run). Refuses, in
    this order: a checkpoint without training state (CheckpointError); a corpus with another
    character set, or another corpus (TrainingError); training tensors it cannot go on from
    (CheckpointError, `refuse_unresumable`); a budget with nothing left to train (TrainingError). With
    `complete` (the run resumed with its own budget), nothing left is not an error: the message
    saying the run is complete is returned instead. None: it may go on. Nothing is written. (The
    stream layout it claims is checked by `resumed_layout` once the corpus is split.)"""
    latest = run.latest
    info = saved.run_info
    if info is None:
        raise CheckpointError(f"{latest}: a model without training state; it cannot be resumed")
    if corpus is not None:
        vocab = corpus.vocab
        if saved.vocab != vocab:
            extra, lost = set(vocab.chars) - set(saved.vocab.chars), set(saved.vocab.chars) - set(vocab.chars)
            raise TrainingError(f"{latest}: the corpus has a different character set than the run "
                                f"(new: {sorted(extra)[:8]}, missing: {sorted(lost)[:8]}); resume with the same corpus")
        if info.corpus_fingerprint not in (None, corpus.fingerprint):
            raise TrainingError(f"{latest}: the corpus differs from the one this run was trained on "
                                f"({info.corpus_chars} characters then, {len(corpus)} now); resume with the same corpus")
    refuse_unresumable(saved, latest)
    why = nothing_to_train(saved, config, run, complete=complete)
    if why and not complete:
        raise TrainingError(why)
    return why


def resumed_layout(layout: StreamLayout, n_chars: int, where: Path) -> StreamLayout:
    """The stream layout a checkpoint claims, if `fit_layout` could have made it for `n_chars`
    training characters; else a CheckpointError (the work and memory of a step follow the layout,
    so a claimed one is checked against the corpus before it is used, and nothing is written)."""
    try:
        fits = fit_layout(n_chars, layout.batch_size, layout.seq_len, layout.seed) == layout
    except CorpusError:  # too short for two of its windows
        fits = False
    if not fits:
        raise CheckpointError(f"{where}: its stream layout ({layout.batch_size:,} streams of windows of "
                              f"{layout.seq_len:,} over {layout.n_chars:,} characters) does not fit the corpus's "
                              f"{n_chars:,} training characters, so the run cannot be resumed from it; nothing was written")
    return layout


def refuse_unresumable(saved: ckpt.Checkpoint, path: os.PathLike | str) -> None:
    """A CheckpointError if the training state in `saved` (optimizer moments, carried state) is not
    finite: resuming from it would make the weights NaN at the first update. (Its weights are checked
    by `checkpoint.load`, so it can still be sampled.)"""
    problem = _training_tensor_problem(saved)
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}, so the run cannot be resumed from it; nothing was written")
    bad = nonfinite_tensor(saved.tensors.items())
    if bad is not None:
        raise CheckpointError(f"{path}: {bad} holds NaN or infinite values, so the run cannot be resumed from it "
                              f"(its weights are finite: sample still loads it); nothing was written")


_MOMENTS = ("exp_avg", "exp_avg_sq")


def _training_tensor_problem(saved: ckpt.Checkpoint) -> str | None:
    """What is wrong with the tensors a resume reads besides the weights — optimizer moments
    (`optim.<index>.<name>`, shaped like their parameter), carried state (`state.<i>`, (L, B, H)), the
    RNG state (`rng.torch`), the training weights or their average beside the other (`train.<name>`,
    `average.<name>`, model/average.py) — checked by name, shape and dtype before any is used; None if nothing."""
    config, info = saved.config, saved.run_info
    names = list(saved.model_state)
    decays = [n for n in names if saved.model_state[n].dim() >= 2 and not n.startswith("embed")]
    order = decays + [n for n in names if n not in set(decays)]           # the optimizer's parameter indices
    state_shape = (config.num_layers, info.layout.batch_size, config.hidden_size)
    n_states = 2 if config.has_cell_state else 1
    for key, tensor in saved.tensors.items():
        kind, _, rest = key.partition(".")
        if kind == "optim":
            index, _, name = rest.partition(".")
            if not index.isdigit() or int(index) >= len(order) or name not in (*_MOMENTS, "step"):
                return f"optimizer tensor {key!r} names no moment of this model's parameters"
            want = tuple(saved.model_state[order[int(index)]].shape) if name in _MOMENTS else None
            if (want is not None and tuple(tensor.shape) != want) or (want is None and tensor.numel() != 1):
                return f"optimizer tensor {key!r} has shape {tuple(tensor.shape)}, its parameter needs {want or '()'}"
            if not tensor.is_floating_point():
                return f"optimizer tensor {key!r} is not floating point"
        elif kind == "state":
            if not rest.isdigit() or int(rest) >= n_states:
                return f"carried state {key!r} is not one of this cell's {n_states} state tensors"
            if tuple(tensor.shape) != state_shape or tensor.dtype != torch.float32:
                return f"carried state {key!r} has shape {tuple(tensor.shape)} ({tensor.dtype}), the run needs {state_shape}"
        elif kind in ("train", "average"):  # the training weights or their average, beside the other (model/average.py)
            want = saved.model_state.get(rest)
            if want is None:
                return f"{kind} weight {key!r} names no weight of this model"
            if tuple(tensor.shape) != tuple(want.shape) or tensor.dtype != want.dtype:
                return (f"{kind} weight {key!r} has shape {tuple(tensor.shape)} ({tensor.dtype}), "
                        f"the model needs {tuple(want.shape)}")
        elif key == "rng.torch":
            if tensor.dtype != torch.uint8 or tensor.shape != torch.get_rng_state().shape:
                return f"rng.torch holds {tensor.numel()} {tensor.dtype} values, not a torch RNG state"
        else:
            return f"tensor {key!r} is not part of a charlstm training checkpoint"
    beside = [kind for kind in ("train", "average") if any(k.startswith(kind + ".") for k in saved.tensors)]
    if len(beside) == 2:
        return "it holds both training weights and their average beside the model (one of them is the model)"
    for kind in beside:
        have = {k.partition(".")[2] for k in saved.tensors if k.startswith(kind + ".")}
        if have != set(names):
            return f"its {kind} weights cover {len(have)} of the model's {len(names)} tensors"
    return None


def nothing_to_train(saved: ckpt.Checkpoint, config: TrainConfig, where: object, complete: bool = False) -> str | None:
    """Why resuming `saved` under `config` would train no step (a one-line message), else None;
    `complete`: worded for a run resumed with its own budget (done, rather than a budget typed behind it).

    A run that ended because its budget was spent says so in its last checkpoint (`finished`);
    resumed with that same budget it has nothing left, even when the clock shows a fraction of a
    second to spare (the closing evaluation is what used it)."""
    info = saved.run_info
    same_budget = (config.max_steps, config.time_budget) == (info.train_config.max_steps, info.train_config.time_budget)
    if budget_left(info.step, info.elapsed_s, config) and not (info.finished and same_budget):
        return None
    if info.stopped and same_budget:
        spent = f"it stopped early at step {info.step}: {one_line(info.stopped, limit=200)}"
    elif config.max_steps is not None and info.step >= config.max_steps:
        spent = (f"it reached its budget of {config.max_steps} steps" if complete else
                 f"it is at step {info.step} and --max-steps {config.max_steps} (the step to stop at) is not beyond it")
    else:
        budget = f"{format_duration(config.time_budget)} " if config.time_budget is not None else ""
        spent = f"it finished its {budget}budget at step {info.step} ({format_duration(info.elapsed_s)} trained)"
    return (f"{where}{' is complete' if complete else ': nothing to train'}: {spent}; to go on, pass --time 10m "
            f"for 10 more minutes or --max-steps with a step beyond {info.step}")


# --------------------------------------------------------------------------------------------
# What `charlstm train` decides before training: which run, which corpus, which recipe


@dataclass(frozen=True)
class Plan:
    """A run to start or resume: its folder, the corpus files and encoding, the recipe. `complete`:
    a resumed run whose own budget is already spent, why there is nothing to do (nothing is trained,
    prepared or written; `charlstm train` says so and exits 0, as a finished job has nothing to redo)."""

    run: Run
    files: list[str]
    encoding: str
    config: TrainConfig
    resume: bool
    complete: str | None = None

    @property
    def source(self) -> dict:
        """Where the corpus comes from, as stored with the run (so --resume can read it again)."""
        return {"paths": [str(Path(f).resolve()) if f != "-" else "-" for f in self.files], "encoding": self.encoding}


#: The config fields that make a run's budget.
_BUDGET = frozenset({"max_steps", "time_budget"})


def _names_own_budget(info: RunInfo, config: TrainConfig, typed: Iterable[str]) -> bool:
    """The budget typed now (`typed`, values in `config`) is the run's stored budget, as the command
    that started it typed it: a finished run resumed with it is complete, not an error (a script
    that runs its command again after a crash past the end succeeds) and not `--time` more."""
    typed = set(typed)
    if not _BUDGET & typed:
        return False
    now = (config.max_steps if "max_steps" in typed else None, config.time_budget if "time_budget" in typed else None)
    return now == (info.train_config.max_steps, info.train_config.time_budget)


def resume_config(info: RunInfo, config: TrainConfig, typed: Iterable[str]) -> TrainConfig:
    """The run's own recipe with only the fields the user set now (`typed`) taken from `config`.

    The budget typed now replaces the run's whole budget (giving only --time drops a stored
    --max-steps, and the other way round), and it counts from where the run stands: --time is
    time on top of what the run has already trained (`info.elapsed_s`); --max-steps is the step
    to stop at, counted from the run's start, as the step numbers in the log are."""
    typed = set(typed)
    overrides = {name: value for name, value in config.to_dict().items() if name in typed}
    if _BUDGET & typed:
        overrides.setdefault("max_steps", None)
        overrides.setdefault("time_budget", None)
        if overrides["time_budget"] is not None:
            overrides["time_budget"] = info.elapsed_s + overrides["time_budget"]
    return TrainConfig.from_dict({**info.train_config.to_dict(), **overrides})


#: Model options a resumed run cannot change (the model is the saved one); vocab_size comes from the corpus.
MODEL_OPTIONS = {"cell": "--cell", "hidden_size": "--hidden-size", "num_layers": "--num-layers",
                  "embedding_size": "--embedding-size", "dropout": "--dropout", "forget_bias": "--forget-bias"}


def refuse_model_change(saved: ckpt.Checkpoint, model: ModelConfig | None, typed: Iterable[str], where: object) -> None:
    """With --resume, a model option typed now that differs from the saved model is a TrainingError
    naming the saved values: the run goes on with the model it has (typing the same value is fine)."""
    if model is not None:
        _refuse_typed_change(MODEL_OPTIONS, model, saved.config, typed, where,
                             "a resumed run keeps its model", "model")


#: Recipe options that decide how the corpus is cut into streams, fixed for the life of a run.
_LAYOUT_OPTIONS = {"batch_size": "--batch-size", "seq_len": "--seq-len", "val_fraction": "--val-fraction"}


def refuse_layout_change(info: RunInfo, config: TrainConfig, typed: Iterable[str], where: object) -> None:
    """With --resume, --batch-size, --seq-len or --val-fraction typed with another value than the
    run's is a TrainingError: the run goes on over the streams it was cut into (the learning rate,
    weight decay and the other recipe options typed now do apply from here on)."""
    _refuse_typed_change(_LAYOUT_OPTIONS, config, info.train_config, typed, where,
                         "a resumed run keeps the streams its corpus was cut into", "run")


def _refuse_typed_change(options: dict[str, str], now: Any, then: Any, typed: Iterable[str], where: object,
                         keeps: str, new: str) -> None:
    """A TrainingError naming the `options` (field → flag) typed with a value other than the run's."""
    differ = [name for name in options if name in set(typed) and getattr(now, name) != getattr(then, name)]
    if differ:
        shown = lambda config: " ".join(f"{options[n]} {getattr(config, n)}" for n in differ)
        raise TrainingError(f"{where} was trained with {shown(then)}; {keeps}, so {shown(now)} cannot "
                            f"apply: drop it, or pass another --out to train a new {new}")


def plan_run(corpus: Sequence[str], glob: str | None, encoding: str, out: str | os.PathLike | None, resume: bool,
         config: TrainConfig, typed: Iterable[str] = (), model: ModelConfig | None = None) -> Plan:
    """Decide what `charlstm train` trains. A new run goes to `out` (default: named after the corpus
    under checkpoints/); --resume continues `out` (default: the most recent run) with its stored
    recipe, model and corpus, changed only where the user typed something now (`typed`: config field
    names; see resume_config for the budget). A resume that cannot go on (a different model typed,
    unusable training state, no budget left) is refused here, before anything is prepared or written.
    A finished run resumed with its own budget (none typed, or the one stored with it) is complete."""
    typed = set(typed)
    if resume:
        run = Run(out) if out else most_recent()
        saved = ckpt.load(run.latest) if run.has_checkpoint() else None
        if saved is None and not corpus:
            run.refuse_if_busy()  # started moments ago, its first checkpoint not yet written
            raise CheckpointError(f"{run}: nothing to resume (no {run.latest.name}); give the corpus to start it afresh")
        info = saved.run_info if saved is not None else None
        if info is not None:
            refuse_layout_change(info, config, typed, run)
            if info.finished and _names_own_budget(info, config, typed):
                typed -= _BUDGET  # the command that trained it, run again: its own budget, spent already
            config = resume_config(info, config, typed)
            refuse_model_change(saved, model, typed, run)
            # a budget typed now that is not beyond where the run stands is an error; the run's own
            # budget spent means it is done already, with nothing to redo
            why = refuse_resume(saved, run, config, complete=not _BUDGET & typed)
            if why:
                return Plan(run, [], encoding, config, resume, complete=why)
            if not corpus and info.corpus is not None:
                corpus, encoding = info.corpus.paths, info.corpus.encoding
    files = corpus_files(corpus, glob) if corpus else [default_corpus_path()]
    if not corpus and not Path(files[0]).is_file():
        raise CorpusError(f"{files[0]}: the bundled default corpus is missing; give a corpus file")
    if not resume:
        run = Run(out) if out else default_out(files)
    return Plan(run, files, encoding, config, resume)
