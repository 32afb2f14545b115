"""Training loop. Knows batches, loss and checkpoints; nothing of the command line or the terminal.

Truncated BPTT over B contiguous streams with the hidden state carried from batch to batch,
AdamW, linear warmup then cosine decay, gradient-norm clipping, periodic validation in bits per
character with a short sample preview, best/latest checkpoints, a wall-clock budget, exact
resume, a clean stop on request (Ctrl-C, SIGTERM) and a NaN guard. `Trainer` holds a run in
progress; `train` is the one call; progress goes to a callback as typed `Event`s. The run
directory's files are run.Run's; `plan_run` decides what `charlstm train` trains (run, corpus, recipe).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .config import ModelConfig, SampleConfig, TrainConfig
from .data import Corpus, StreamLayout, corpus_files, default_corpus_path, eval_streams, fit_layout, split, stream_batch
from .distributed import Cluster
from .errors import CheckpointError, CorpusError, TrainingError
from .model import CharModel, State, pick_device
from .run import Run, default_out, most_recent
from .runinfo import CorpusSource, RunInfo
from .sample import sample_text

LOG2E = 1.0 / math.log(2.0)


class EventKind(str, Enum):
    """What an Event reports (a str, so `event.kind == "step"` reads as it always did)."""

    START = "start"    # the run begins (or resumes): `text` describes the model and the data
    STEP = "step"      # one optimisation step done
    EVAL = "eval"      # a validation (and checkpoint): `val_bpc`, `text` the preview sample
    NOTICE = "notice"  # something the user should know: `text`


@dataclass(frozen=True, kw_only=True)
class Event:
    """What the loop reports to its callback; built with keyword fields."""

    kind: EventKind
    step: int
    max_steps: int | None = None
    elapsed_s: float = 0.0
    time_budget: float | None = None
    train_loss: float | None = None  # nats per character
    val_bpc: float | None = None
    lr: float | None = None
    chars_per_s: float | None = None
    text: str = ""                   # preview sample or notice


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    out_dir: Path
    step: int
    elapsed_s: float
    best_val_bpc: float | None
    last_val_bpc: float | None
    chars_per_s: float
    interrupted: bool


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over warmup_steps; the peak until the last decay_fraction of the budget; then
    cosine from the peak to min_lr_ratio·peak as progress → 1 (decay_fraction 1: cosine throughout)."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    start = 1.0 - config.decay_fraction
    if progress <= start or config.decay_fraction <= 0:
        return peak
    floor = peak * config.min_lr_ratio
    phase = min((progress - start) / config.decay_fraction, 1.0)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * phase))


class StopRequest(threading.Event):
    """Set to ask the training loop to save and stop after the current step; remembers the signal."""

    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into a stop request the loop honours between steps (so a step is
    never half-applied); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------------------------
# Optimizer state ⇄ checkpoint tensors (no pickle: moments as tensors, the rest as JSON)


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def _optimizer_from_tensors(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


# --------------------------------------------------------------------------------------------


@torch.inference_mode()
def evaluate(model: CharModel, val_ids: np.ndarray, seq_len: int, device: torch.device, max_chars: int | None = None,
             num_streams: int = 32) -> float:
    """Validation bits per character: the text as contiguous streams, state carried chunk to chunk
    (`score.chunked_cross_entropy`, the same reading as scoring)."""
    from .score import chunked_cross_entropy

    if max_chars:
        val_ids = val_ids[: max_chars + 1]
    streams = torch.as_tensor(eval_streams(val_ids, num_streams).astype(np.int64), device=device)  # (S, L)
    was_training = model.training
    model.eval()
    total = 0.0
    for nats, _ in chunked_cross_entropy(model, streams, max(seq_len, 256), reduction="sum"):
        total += nats.item()
    model.train(was_training)
    count = streams.shape[0] * max(streams.shape[1] - 1, 0)                           # every target
    return total / max(count, 1) * LOG2E


def train(
    data: str | Corpus,
    out_dir: str | os.PathLike,
    model_config: ModelConfig | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = False,
    source: dict | None = None,
    on_event: Callable[[Event], None] | None = None,
    stop: StopRequest | None = None,
    device: str | None = None,
) -> TrainResult:
    """Train a character model on `data` (text, or a prepared `Corpus`), writing checkpoints, metrics
    and previews to `out_dir`. `source` (where the corpus came from: {"paths": [...], "encoding": ...})
    is stored with the run.

    model_config's vocab_size is filled in from the corpus. With resume=True the model, optimizer,
    carried state, RNG and position come from out_dir/latest.safetensors, and the run goes on as if
    it had never stopped; `config` then only changes the budget and cadence.
    """
    run = Run(out_dir)
    run.create()
    cluster = Cluster.from_env(pick_device(device))
    corpus = data if isinstance(data, Corpus) else Corpus.from_text(data)
    with run.lock() if cluster.main else contextlib.nullcontext():
        trainer = Trainer(corpus, run, model_config, config, resume=resume, source=source, on_event=on_event,
                          stop=stop, cluster=cluster)
        return trainer.run()


class Trainer:
    """One training run in progress: the model, the optimizer, the carried state and the counters.

    `step()` takes one optimisation step, `evaluate()` scores the validation text and saves, `save()`
    writes the checkpoint(s) through the run directory, `run()` loops until the budget is spent or a
    stop is requested. Under torchrun every rank makes one; rank 0 alone writes, logs and reports.
    Made with the run's lock held (see `train`).
    """

    def __init__(self, corpus: Corpus, run: Run, model_config: ModelConfig | None, config: TrainConfig, *,
                 resume: bool = False, source: dict | None = None, on_event: Callable[[Event], None] | None = None,
                 stop: StopRequest | None = None, cluster: Cluster | None = None) -> None:
        self.cluster = cluster = cluster or Cluster()
        self.corpus, self.run_dir, self.config = corpus, run, config
        self.source = CorpusSource(tuple(source.get("paths") or ()), source.get("encoding", "utf-8")) if source else None
        self.stop = stop or StopRequest()
        self._on_event = on_event if cluster.main else None
        self.device = cluster.device
        self.steps, self.elapsed_before, self.best_val, self.last_val = 0, 0.0, None, None
        self.state: State | None = None
        if cluster.main:
            run.remove_stale_temps()
        saved = self._resumable(resume)
        self.resumed = saved is not None
        base = model_config or ModelConfig(vocab_size=len(corpus.vocab))
        self.model_config = saved.config if saved else replace(base, vocab_size=len(corpus.vocab))
        torch.manual_seed(config.seed)
        self.model = CharModel(self.model_config).to(self.device)
        self.optimizer = _adamw(self.model, config)
        self.train_ids, self.val_ids = split(corpus.ids, config.val_fraction)
        # B streams per rank; under torchrun the ranks share one global layout, each taking its rows.
        self.layout = _global_layout(len(self.train_ids), config, cluster.world)
        if saved is not None:
            self._restore(saved)
        elif run.latest.exists():
            raise TrainingError(f"{run} already holds a run; pass --resume to continue it or --out to start another")
        per_rank = self.layout.batch_size // cluster.world
        self.rows = cluster.rows(per_rank)
        if per_rank != config.batch_size and not self.resumed:
            self._notice(f"corpus is short ({len(self.train_ids)} training characters): using batch size {per_rank}")
        self.chars_per_step = self.layout.batch_size * self.layout.seq_len              # all ranks together
        self.net = cluster.wrap(self.model)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")  # cuDNN LSTM in bf16
        self.train_time, self.train_chars, self.last_eval_cost, self.last_eval_step = 0.0, 0, 0.0, -1
        self.window_loss, self.window_steps = 0.0, 0
        self._t0 = time.perf_counter()
        self._metrics: TextIO | None = None

    # -- setting up

    def _resumable(self, resume: bool) -> ckpt.Checkpoint | None:
        """The run's latest checkpoint when resuming it, checked against the corpus given now."""
        latest = self.run_dir.latest
        if resume and not latest.is_file():
            self._notice(f"{self.run_dir} has no checkpoint yet: starting from scratch")
            return None
        if not resume:
            return None
        saved = ckpt.load(latest)
        info = saved.run_info
        if info is None:
            raise CheckpointError(f"{latest}: a model without training state; it cannot be resumed")
        vocab = self.corpus.vocab
        if saved.vocab != vocab:
            extra, lost = set(vocab.chars) - set(saved.vocab.chars), set(saved.vocab.chars) - set(vocab.chars)
            raise TrainingError(f"{latest}: the corpus has a different character set than the run "
                                f"(new: {sorted(extra)[:8]}, missing: {sorted(lost)[:8]}); resume with the same corpus")
        if info.corpus_fingerprint not in (None, self.corpus.fingerprint):
            raise TrainingError(f"{latest}: the corpus differs from the one this run was trained on "
                                f"({info.corpus_chars} characters then, {len(self.corpus)} now); resume with the same corpus")
        return saved

    def _restore(self, saved: ckpt.Checkpoint) -> None:
        """Model, optimizer, position, clock, scores, layout, carried state and RNG as they were saved."""
        info = saved.run_info
        self.model.load_state_dict(saved.model_state)
        self.optimizer.load_state_dict(_optimizer_from_tensors(saved.tensors, [dict(g) for g in info.optimizer_groups]))
        self.steps, self.elapsed_before = info.step, info.elapsed_s
        self.best_val, self.last_val = info.best_val_bpc, info.last_val_bpc
        self.layout = info.layout
        rows = self.cluster.rows(self.layout.batch_size // self.cluster.world)
        if "state.0" in saved.tensors:  # each (L, B, H): this rank's streams
            layers = range(len(self.model.init_state(1)))
            self.state = tuple(saved.tensors[f"state.{i}"][:, rows].to(self.device) for i in layers)
        if "rng.torch" in saved.tensors:
            torch.set_rng_state(saved.tensors["rng.torch"])
        if self.cluster.main:  # rank 0 alone owns the log
            self.run_dir.truncate_metrics(self.steps)

    # -- the clock and the budget

    @property
    def elapsed(self) -> float:
        """Seconds of this run so far, earlier sessions included."""
        return self.elapsed_before + time.perf_counter() - self._t0

    @property
    def chars_per_s(self) -> float:
        """Training throughput of this session, evaluation excluded."""
        return self.train_chars / max(self.train_time, 1e-9)

    def _progress(self, elapsed: float) -> float:
        """How much of the budget is spent, 0 → 1 (the larger share when both budgets are set)."""
        parts = []
        if self.config.max_steps:
            parts.append(self.steps / self.config.max_steps)
        if self.config.time_budget:
            parts.append(elapsed / self.config.time_budget)
        return max(parts) if parts else 0.0

    def _budget_spent(self) -> bool:
        """No room for another step (counting what the next evaluation costs against the time budget)."""
        config = self.config
        return (config.max_steps is not None and self.steps >= config.max_steps) or (
            config.time_budget is not None and self.elapsed + self.last_eval_cost >= config.time_budget)

    # -- the work

    def step(self) -> tuple[float, float]:
        """One optimisation step on this rank's streams; returns (the global batch's loss in nats, lr)."""
        started = time.perf_counter()
        _, k = self.layout.position(self.steps)
        if k == 0:  # a new epoch starts the streams at a new offset: the carried state is stale
            self.state = None
        x, y = _batch(self.train_ids, self.layout, self.steps, self.device)
        x, y = x[self.rows], y[self.rows]                                        # this rank's streams (b, T)
        lr = learning_rate(self.config, self.steps, self._progress(self.elapsed))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            logits, new_state = self.net(x, self.state)                          # (b, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        loss_value = self.cluster.mean(loss)
        if not math.isfinite(loss_value):
            raise TrainingError(f"loss became {loss_value} at step {self.steps} (try a lower --lr); "
                                f"the last good checkpoint is {self.run_dir.latest}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.state = tuple(s.detach() for s in new_state)                        # a BPTT boundary
        self.steps += 1
        self.train_time += time.perf_counter() - started
        self.train_chars += self.chars_per_step
        return loss_value, lr

    def evaluate(self) -> tuple[float, str]:
        """Validation bits per character and a preview sample; saves latest (and best when it
        improved). Rank 0 evaluates; the other ranks only help gather the state to save."""
        if not self.cluster.main:
            self.save()
            return float("nan"), ""
        val_bpc = (evaluate(self.model, self.val_ids, self.layout.seq_len, self.device, self.config.eval_chars)
                   if len(self.val_ids) > 1 else float("nan"))
        self.last_val = val_bpc
        improved = self.best_val is None or (val_bpc == val_bpc and val_bpc < self.best_val)
        if improved and val_bpc == val_bpc:
            self.best_val = val_bpc
        preview = ""
        if self.config.preview_chars:
            sampling = SampleConfig(length=self.config.preview_chars, temperature=0.8, seed=self.steps)
            preview = sample_text(self.model, self.corpus.vocab, "", sampling)[0]
            self.run_dir.append_sample(self.steps, val_bpc, preview)
        self.save(best=improved)
        return val_bpc, preview

    def save(self, best: bool = False) -> None:
        """Write latest.safetensors (and best.safetensors). Every rank takes part (the carried state
        is gathered from all); rank 0 writes. Nothing non-finite is saved: the NaN guard stops first."""
        full_state = self.cluster.gather_rows(self.state)                        # each (L, B, H)
        if not self.cluster.main:
            return
        checkpoint = self._checkpoint(full_state)
        for path in (self.run_dir.latest, self.run_dir.best) if best else (self.run_dir.latest,):
            try:
                ckpt.save(path, checkpoint)
            except OSError as error:
                raise TrainingError(f"could not write {path} ({error.strerror or error}); "
                                    f"the previous checkpoint there is intact") from None

    def _checkpoint(self, full_state: State | None) -> ckpt.Checkpoint:
        opt_tensors, groups = _optimizer_to_tensors(self.optimizer)
        extra = dict(opt_tensors)
        if full_state is not None:
            extra.update({f"state.{i}": s for i, s in enumerate(full_state)})
        extra["rng.torch"] = torch.get_rng_state()
        info = RunInfo(step=self.steps, layout=self.layout, optimizer_groups=tuple(groups), train_config=self.config,
                       elapsed_s=round(self.elapsed, 3), best_val_bpc=self.best_val, last_val_bpc=self.last_val,
                       corpus=self.source, corpus_chars=int(len(self.corpus)),
                       corpus_fingerprint=self.corpus.fingerprint, torch=torch.__version__)
        return ckpt.Checkpoint(self.model_config, self.corpus.vocab, self.model.state_dict(), info.to_dict(), extra)

    def run(self) -> TrainResult:
        """Train until the budget is spent or a stop is requested, then save (and evaluate once more
        unless the last step was just evaluated)."""
        main = self.cluster.main
        self._metrics = self.run_dir.open_metrics(fresh=not self.resumed) if main else None
        try:
            if main and not self.resumed:
                self.run_dir.clear_samples()
            self.model.train()
            self._t0 = time.perf_counter()
            if not self.resumed:
                self.save()  # from the first moment there is something to --resume
            self._emit(Event(kind=EventKind.START, step=self.steps, max_steps=self.config.max_steps,
                             elapsed_s=self.elapsed_before, time_budget=self.config.time_budget,
                             text=self._describe()))
            interrupted = self._loop()
            if interrupted:
                self.save()
            elif self.last_eval_step != self.steps:  # the same decision on every rank
                self._evaluate_and_report()
        finally:  # a second Ctrl-C may land mid-update: the last whole checkpoint stays as it is
            if self._metrics is not None:
                self._metrics.close()
        return TrainResult(self.run_dir.path, self.steps, self.elapsed, self.best_val, self.last_val,
                           self.chars_per_s, interrupted)

    def _loop(self) -> bool:
        """Steps until the budget is spent (False) or a stop is requested (True); ranks stop together."""
        while True:
            done = self._budget_spent()
            if self.cluster.agree(self.stop.is_set()):  # every rank stops on the same step
                return True
            if self.cluster.agree(done):
                return False
            loss, lr = self.step()
            self._report_step(loss, lr)
            if self.steps % self.config.eval_every == 0:
                self._evaluate_and_report(loss, lr)

    # -- reporting: metrics.jsonl (rank 0) and events to the callback

    def _report_step(self, loss: float, lr: float) -> None:
        self.window_loss += loss
        self.window_steps += 1
        elapsed, rate = self.elapsed, self.chars_per_s
        if self.steps % self.config.log_every == 0:
            self._log({"step": self.steps, "elapsed_s": round(elapsed, 3),
                       "train_loss": round(self.window_loss / self.window_steps, 5), "lr": lr,
                       "chars_per_s": round(rate, 1)})
            self.window_loss, self.window_steps = 0.0, 0
        self._emit(Event(kind=EventKind.STEP, step=self.steps, max_steps=self.config.max_steps, elapsed_s=elapsed,
                         time_budget=self.config.time_budget, train_loss=loss, val_bpc=self.last_val, lr=lr,
                         chars_per_s=rate))

    def _evaluate_and_report(self, loss: float | None = None, lr: float | None = None) -> None:
        """Evaluate and save, then log and emit the result; `loss` and `lr` are those of the step
        just taken (None for the closing evaluation, which follows no step of its own)."""
        started = time.perf_counter()
        val_bpc, preview = self.evaluate()
        self.last_eval_step, self.last_eval_cost = self.steps, time.perf_counter() - started
        elapsed, rate = self.elapsed, self.chars_per_s
        record = {"step": self.steps, "elapsed_s": round(elapsed, 3), "val_bpc": round(val_bpc, 5),
                  "val_loss": round(val_bpc / LOG2E, 5)}
        if lr is not None:
            record["lr"] = lr
        self._log({**record, "chars_per_s": round(rate, 1)})
        self._emit(Event(kind=EventKind.EVAL, step=self.steps, max_steps=self.config.max_steps, elapsed_s=elapsed,
                         time_budget=self.config.time_budget, train_loss=loss, val_bpc=val_bpc, lr=lr,
                         chars_per_s=rate if lr is not None else None, text=preview))

    def _describe(self) -> str:
        return (f"{self.model.num_parameters:,} parameters, {len(self.corpus.vocab)} characters, "
                f"{len(self.train_ids):,} training / {len(self.val_ids):,} validation characters, device {self.device}")

    def _log(self, record: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.write(json.dumps(record) + "\n")
            self._metrics.flush()

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _notice(self, text: str) -> None:
        self._emit(Event(kind=EventKind.NOTICE, step=self.steps, text=text))


def _adamw(model: CharModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices only (not the embedding, biases or peepholes)."""
    decays = {n: p.dim() >= 2 and not n.startswith("embed") for n, p in model.named_parameters()}
    groups = [{"params": [p for n, p in model.named_parameters() if decays[n]], "weight_decay": config.weight_decay},
              {"params": [p for n, p in model.named_parameters() if not decays[n]], "weight_decay": 0.0}]
    try:  # one fused kernel for the whole update: ~4x faster than the per-tensor loop on CPU
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99))


def _global_layout(n_chars: int, config: TrainConfig, world: int) -> StreamLayout:
    layout = fit_layout(n_chars, config.batch_size * world, config.seq_len, config.seed)
    if layout.batch_size % world:  # a short corpus shrank the batch: keep it a multiple of the ranks
        if layout.batch_size < world:
            raise CorpusError(f"corpus too short for {world} ranks: give more text or a smaller --seq-len")
        layout = replace(layout, batch_size=layout.batch_size - layout.batch_size % world)
    return layout


def _batch(ids: np.ndarray, layout: StreamLayout, step: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch as int64 tensors; the corpus itself stays compact (and possibly memory-mapped)."""
    x, y = stream_batch(ids, layout, step)                                    # (B, T) each
    x, y = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# --------------------------------------------------------------------------------------------
# What `charlstm train` decides before training: which run, which corpus, which recipe


@dataclass(frozen=True)
class Plan:
    """A run to start or resume: its folder, the corpus files and encoding, the recipe."""

    run: Run
    files: list[str]
    encoding: str
    config: TrainConfig
    resume: bool

    @property
    def source(self) -> dict:
        """Where the corpus comes from, as stored with the run (so --resume can read it again)."""
        return {"paths": [str(Path(f).resolve()) if f != "-" else "-" for f in self.files], "encoding": self.encoding}


def resume_config(info: RunInfo, config: TrainConfig, typed: Iterable[str]) -> TrainConfig:
    """The run's own recipe with only the fields the user set now (`typed`) taken from `config`."""
    typed = set(typed)
    overrides = {name: value for name, value in config.to_dict().items() if name in typed}
    return TrainConfig.from_dict({**info.train_config.to_dict(), **overrides})


def plan_run(corpus: Sequence[str], glob: str | None, encoding: str, out: str | os.PathLike | None, resume: bool,
         config: TrainConfig, typed: Iterable[str] = ()) -> Plan:
    """Decide what `charlstm train` trains. A new run goes to `out` (default: named after the corpus
    under checkpoints/); --resume continues `out` (default: the most recent run) with its stored
    recipe and corpus, changed only where the user typed something now (`typed`: config field names)."""
    if resume:
        run = Run(out) if out else most_recent()
        saved = ckpt.load(run.latest) if run.has_checkpoint() else None
        if saved is None and not corpus:
            run.refuse_if_busy()  # started moments ago, its first checkpoint not yet written
            raise CheckpointError(f"{run}: nothing to resume (no {run.latest.name}); give the corpus to start it afresh")
        info = saved.run_info if saved is not None else None
        if info is not None:
            config = resume_config(info, config, typed)
            if not corpus and info.corpus is not None:
                corpus, encoding = info.corpus.paths, info.corpus.encoding
    files = corpus_files(corpus, glob) if corpus else [default_corpus_path()]
    if not corpus and not Path(files[0]).is_file():
        raise CorpusError(f"{files[0]}: the bundled default corpus is missing; give a corpus file")
    if not resume:
        run = Run(out) if out else default_out(files)
    return Plan(run, files, encoding, config, resume)
