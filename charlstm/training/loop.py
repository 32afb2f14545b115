"""Training loop. Knows batches, loss and checkpoints; nothing of the command line or the terminal.

Truncated BPTT over B contiguous streams with the hidden state carried from batch to batch, AdamW,
gradient-norm clipping, periodic validation with a short sample preview, best/latest checkpoints,
exact resume and a clean stop on request (Ctrl-C, SIGTERM). `train` is the one call; `Trainer` is
a run in progress: it sets the run up (fresh or resumed) and loops, over parts with one job each —
the budget and its clock (clock.py), the learning rate (schedule.py), validation and the weights'
moving average (validation.py), the checkpoint writer and its finiteness guard (checkpoints.py),
the log and the events (reporting.py). The run directory's files are runs.folder.Run's; whether a run may
go on from its checkpoint, and what `charlstm train` trains, is resume.py's.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import replace
from typing import Callable, Iterable

import numpy as np
import torch

from .. import memory
from ..config import THREAD_COUNT, ModelConfig, SampleConfig, TrainConfig
from ..data.corpus import Corpus
from ..data.streams import StreamLayout, fit_layout, split, stream_batch
from ..errors import CorpusError, TrainingError
from ..generation.sampling import sample_text
from ..model.loss import cross_entropy
from ..model.network import CharModel, State
from ..runs import checkpoint as ckpt
from ..runs.folder import Run
from ..runs.runinfo import CorpusSource, RunInfo
from ..runtime import ThreadTuner, pick_device
from .checkpoints import CheckpointWriter, optimizer_state
from .clock import Clock, budget_left
from .distributed import Cluster
from .events import Event, TrainResult
from .finetune import KEPT_OPTIONS, Base, load_base, refuse_changes, start_vocabulary
from .fit import fitted_config
from .reporting import Reporter
from .resume import refuse_resume, resumed_layout
from .schedule import LearningRate
from .stopping import StopRequest
from .validation import Scores, Weights, evaluate


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
    threads: int | None = None,
    init_from: str | os.PathLike | Base | None = None,
) -> TrainResult:
    """Train a character model on `data` (text, or a prepared `Corpus`), writing checkpoints, metrics
    and previews to `out_dir`. `source` (where the corpus came from: {"paths": [...], "encoding": ...})
    is stored with the run.

    model_config's vocab_size is filled in from the corpus; None fits the model's size to the corpus
    and the budget (fit.py). With resume=True the model, optimizer,
    carried state, RNG and position come from out_dir/latest.safetensors, and the run goes on as if
    it had never stopped; `config` then only changes the budget and cadence. `threads` pins the CPU
    thread count; None times the candidates on the first steps and keeps the fastest (runtime.ThreadTuner).

    `init_from` (a run folder, a checkpoint file, the name of a model charlstm ships, or a loaded
    finetune.Base) starts a fresh run from that model (finetune.py): its weights and architecture
    (model_config may set the dropout; other fields that differ are refused), its vocabulary grown
    by the corpus's new characters, `config` used as given (finetune.fine_tuning applies the recipe
    the command line takes). Resuming a run that started from a model needs no `init_from`.
    """
    THREAD_COUNT.check("threads", threads)         # before the run folder is made
    base = load_base(init_from) if isinstance(init_from, (str, os.PathLike)) else init_from
    if base is not None:
        refuse_changes(base, model_config, KEPT_OPTIONS)
    run = Run(out_dir)
    cluster = Cluster.from_env(pick_device(device))
    grows = start_vocabulary(run, resume, base) if base is not None or not isinstance(data, Corpus) else None
    corpus = data if isinstance(data, Corpus) else Corpus.from_text(data, config.min_char_count, grows)
    if model_config is None and base is None and not (resume and run.latest.is_file()):
        model_config, _ = fitted_model(corpus, config, cluster.device.type)
    if not (resume and run.latest.is_file()):  # before the run is made
        dropout = model_config.dropout if model_config else None
        memory_chunks(base.model_config(len(corpus.vocab), dropout) if base is not None else
                      replace(model_config, vocab_size=len(corpus.vocab)), config)
    run.create()
    with run.lock() if cluster.main else contextlib.nullcontext():
        trainer = Trainer(corpus, run, model_config, config, resume=resume, source=source, on_event=on_event,
                          stop=stop, cluster=cluster, threads=threads, base=base)
        result = trainer.run()
    cluster.close()                                 # every rank finished the run (the ranks stop on one step)
    return result


def fitted_model(corpus: Corpus, config: TrainConfig, device: str = "cpu", base: ModelConfig | None = None,
                 keep: Iterable[str] = ()):
    """`base` (default: every field at its default) with the size fields not in `keep` fitted to the
    training split of `corpus` and the budget of `config` (fit.fitted_config) → (ModelConfig, the
    fit.FittedModel, or None when nothing was fitted)."""
    return fitted_for(len(corpus.vocab), len(corpus), config, device, base, keep)


def fitted_for(vocab_size: int, chars: int, config: TrainConfig, device: str = "cpu", base: ModelConfig | None = None,
               keep: Iterable[str] = ()):
    """`fitted_model` for a corpus of `chars` characters and `vocab_size` distinct ones, before its
    ids are made."""
    base = replace(base or ModelConfig(vocab_size=1), vocab_size=vocab_size)
    train_chars = len(split(range(chars), config.val_fraction)[0])  # the split's rule (and refusal), no ids needed
    return fitted_config(base, train_chars, config, device, keep=set(keep))


def memory_chunks(model_config: ModelConfig, config: TrainConfig, batch_size: int | None = None,
                  seq_len: int | None = None) -> tuple[int, int]:
    """(positions per piece of the output layer in a step, positions per chunk of a validation) for
    this model and recipe (memory.training_chunks); a model that cannot train within the memory
    budget is a MemoryBudgetError, raised before a run is made or a model built."""
    return memory.training_chunks(model_config, batch_size or config.batch_size, seq_len or config.seq_len,
                                  config.ema_decay > 0)


class Trainer:
    """One training run in progress: the model, the optimizer and the carried state, and the parts
    the loop uses — `clock` (position and budget), `rate` (the learning rate), `weights` (the
    weights and their average), `scores` (the validation record), `writer` (checkpoints and the
    finiteness guard), `reporter` (log and events).

    `step()` takes one optimisation step, `evaluate()` scores the validation text and saves, `save()`
    writes the checkpoint(s) through the run directory, `run()` loops until the budget is spent or a
    stop is requested. Under torchrun every rank makes one; rank 0 alone writes, logs and reports.
    Made with the run's lock held (see `train`).
    """

    def __init__(self, corpus: Corpus, run: Run, model_config: ModelConfig | None, config: TrainConfig, *,
                 resume: bool = False, source: dict | None = None, on_event: Callable[[Event], None] | None = None,
                 stop: StopRequest | None = None, cluster: Cluster | None = None, threads: int | None = None,
                 base: Base | None = None) -> None:
        self.cluster = cluster = cluster or Cluster()
        # On the CPU, the thread count is chosen by timing the steps (a busy machine makes torch's
        # spin-waiting default several times slower); ranks of a torchrun job keep what they were given.
        tuned = cluster.device.type == "cpu" and cluster.world == 1
        self.tuner = ThreadTuner(pinned=threads) if tuned or threads else None
        self.corpus, self.run_dir, self.config = corpus, run, config
        self.source = CorpusSource(tuple(source.get("paths") or ()), source.get("encoding", "utf-8")) if source else None
        self.stop = stop or StopRequest()
        self.device = cluster.device
        self.reporter = Reporter(config, on_event if cluster.main else None)
        if cluster.main:
            run.remove_stale_temps()
        saved = self._resumable(resume)
        self.resumed = saved is not None
        info = saved.run_info if saved else None
        self.train_ids, self.val_ids = split(corpus.ids, config.val_fraction)
        self.model = self._model(saved, model_config, base)
        self.started_from = info.init_from if info else base.record() if base and not saved else None
        self.optimizer = _adamw(self.model, config)
        self.weights = Weights(self.model, config.ema_decay)
        self.state: State | None = None
        # B streams per rank; under torchrun the ranks share one global layout, each taking its rows.
        self.layout = _global_layout(len(self.train_ids), config, cluster.world)
        if saved is not None:
            self._restore(saved)
        elif run.latest.exists():
            raise TrainingError(f"{run} already holds a run; pass --resume to continue it or --out to start another")
        elif not budget_left(0, 0.0, config):
            raise TrainingError(f"{run}: nothing to train: the budget allows no step; give --time or --max-steps above 0")
        self.clock = Clock(config, cluster, info, self.layout.seq_len)
        self.rate = LearningRate(config, info)
        self.scores = Scores(info)
        self.writer = CheckpointWriter(run, cluster, self.clock, self.rate, model_config=self.model_config,
                                       vocab=corpus.vocab, weights=self.weights, optimizer=self.optimizer,
                                       saved_step=info.step if info else None)
        per_rank = self.layout.batch_size // cluster.world
        self.rows = cluster.rows(per_rank)
        if per_rank != config.batch_size and not self.resumed:
            self.reporter.notice(f"corpus is short ({len(self.train_ids)} training characters): using batch size "
                                 f"{per_rank}", self.clock.steps)
        self.chars_per_step = self.layout.batch_size * self.layout.seq_len              # all ranks together
        self.piece, self.eval_chunk = memory_chunks(self.model_config, config, per_rank, self.layout.seq_len)
        self.net = cluster.wrap(Objective(self.model))
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")  # cuDNN LSTM in bf16

    # -- setting up

    def _resumable(self, resume: bool) -> ckpt.Checkpoint | None:
        """The run's latest checkpoint when resuming it, checked against the corpus and recipe given
        now (resume.refuse_resume)."""
        if not resume:
            return None
        if not self.run_dir.latest.is_file():
            self.reporter.notice(f"{self.run_dir} has no checkpoint yet: starting from scratch", 0)
            return None
        saved = ckpt.load(self.run_dir.latest)
        refuse_resume(saved, self.run_dir, self.config, self.corpus)  # before anything is written
        return saved

    def _model(self, saved: ckpt.Checkpoint | None, model_config: ModelConfig | None, base: Base | None) -> CharModel:
        """The model of the run: the saved one's architecture (its weights are restored later), else
        a base's grown to the corpus's vocabulary with its weights (finetune.py), else a fresh one."""
        vocab = self.corpus.vocab
        if saved is not None:
            self.model_config = saved.config
        elif base is not None:
            if vocab.chars[: len(base.vocab)] != base.vocab.chars:
                raise TrainingError(f"the corpus's vocabulary does not start with {base.source}'s; prepare it with "
                                    f"the base's vocabulary (finetune.start_vocabulary)")
            self.model_config = base.model_config(len(vocab), model_config.dropout if model_config else None)
        else:
            self.model_config = replace(model_config or ModelConfig(vocab_size=1), vocab_size=len(vocab))
        if saved is None:  # a resumed run's layout is checked first (_restore), its memory after that
            memory_chunks(self.model_config, self.config)             # before a model is built
        torch.manual_seed(self.config.seed)
        model = CharModel(self.model_config)
        if base is not None and saved is None:
            base.weights(model, self.train_ids)
        return model.to(self.device)

    def _restore(self, saved: ckpt.Checkpoint) -> None:
        """Weights, optimizer, layout, carried state and RNG as they were saved, and the log cut back
        to the checkpoint's step (the clock, the learning rate and the scores read `saved.run_info`)."""
        info = saved.run_info
        self.weights.restore(saved)
        self.optimizer.load_state_dict(optimizer_state(saved.tensors, [dict(g) for g in info.optimizer_groups]))
        self.layout = resumed_layout(info.layout, len(self.train_ids), self.run_dir.latest)
        rows = self.cluster.rows(self.layout.batch_size // self.cluster.world)
        if "state.0" in saved.tensors:  # each (L, B, H): this rank's streams
            layers = range(len(self.model.init_state(1)))
            self.state = tuple(saved.tensors[f"state.{i}"][:, rows].to(self.device) for i in layers)
        if "rng.torch" in saved.tensors:
            torch.set_rng_state(saved.tensors["rng.torch"])
        if self.cluster.main:  # rank 0 alone owns the log
            self.run_dir.log.truncate_metrics(info.step)

    # -- the loop

    def run(self) -> TrainResult:
        """Train until the budget is spent or a stop is requested, then save (and evaluate once more
        unless the last step was just evaluated)."""
        main = self.cluster.main
        try:
            self.model.train()
            self.clock.start()
            if not self.resumed:  # before any other file: from the first moment there is something to --resume
                self.save()
            if main:
                self.reporter.open(self.run_dir, fresh=not self.resumed)
            if main and not self.resumed:
                self.run_dir.log.clear_samples()
            self.reporter.start(self.clock, self._describe())
            interrupted = self._loop()
            if interrupted:
                self.save()
            elif self.clock.last_eval_step != self.clock.steps:  # the same decision on every rank
                self._evaluate_and_report(finished=True)
            else:  # the last step was just evaluated and saved: mark that checkpoint as the end
                self.save(finished=True)
        finally:  # a second Ctrl-C may land mid-update: the last whole checkpoint stays as it is
            self.reporter.close()
        clock = self.clock
        return TrainResult(self.run_dir.path, clock.steps, clock.elapsed, self.scores.best, self.scores.last,
                           clock.chars_per_s, interrupted, self.tuner.describe() if self.tuner else "",
                           self.scores.stopped)

    def _loop(self) -> bool:
        """Steps until the budget is spent (False) or a stop is requested (True); ranks stop together."""
        while True:
            done = self.clock.spent()
            if self.cluster.agree(self.stop.is_set()):  # every rank stops on the same step
                return True
            if self.cluster.agree(done):
                return False
            loss, lr = self.step()
            self.reporter.step(self.clock, loss, lr, self.scores.last)
            if self.clock.evaluation_due():
                self._evaluate_and_report(loss, lr)
                if self._out_of_patience():
                    return False

    def _out_of_patience(self) -> bool:
        """--patience N: N evaluations in a row without a better validation figure end the run (best
        is kept; the reason is logged, shown and stored, so --resume knows it)."""
        scores = self.scores
        if not self.cluster.agree(scores.out_of_patience(self.config.patience)):
            return False
        scores.stopped = (f"no better validation figure in {scores.stale} evaluations (best {scores.best:.3f} "
                          f"bits/char)" if self.cluster.main else "out of patience")
        self.reporter.stopped(self.clock, scores.stopped)
        return True

    def _evaluate_and_report(self, loss: float | None = None, lr: float | None = None, finished: bool = False) -> None:
        """Evaluate and save, then log and emit the result; `loss` and `lr` are those of the step
        just taken (None for the closing evaluation). Without validation text the scores are logged
        as null."""
        started = time.perf_counter()
        val_bpc, preview = self.evaluate(finished)
        self.clock.evaluated(started)
        if self.tuner is not None:  # the next step runs with cold caches: not a fair thread trial
            self.tuner.disturbed()
        self.reporter.evaluation(self.clock, val_bpc, preview, self.weights, loss, lr)

    def _describe(self) -> str:
        vocab = self.corpus.vocab
        folded = f" (the rarest read as {vocab.unknown_char})" if vocab.unknown_char is not None else ""
        started = f" (started from {self.started_from.source})" if self.started_from else ""
        return (f"{self.model.num_parameters:,} parameters{started}, {len(vocab)} characters{folded}, "
                f"{len(self.train_ids):,} training / {len(self.val_ids):,} validation characters, device {self.device}")

    # -- the work

    def step(self) -> tuple[float, float]:
        """One optimisation step on this rank's streams; returns (the global batch's loss in nats, lr)."""
        short = self.clock.short_step()
        if self.tuner is None:
            return self._step(short)
        rounds, before = self.tuner.rounds, self.tuner.chosen
        with self.tuner.timed(work=0.5 if short else 1.0):                  # trials compare time per character
            result = self._step(short)
        if self.tuner.rounds != rounds and (rounds == 0 or self.tuner.chosen != before):
            # the first choice, and every change of mind
            self.reporter.notice(f"threads: {self.tuner.describe()}", self.clock.steps)
        return result

    def _step(self, short: bool) -> tuple[float, float]:
        started = time.perf_counter()
        x, y = self._window(short)                                               # (b, T) each
        lr = self.rate.at(self.clock.steps, self.clock.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            loss, new_state = self.net(x, y, self.state, self.piece)
        loss_value = self.cluster.mean(loss)
        if not math.isfinite(loss_value):
            raise self.writer.diverged(f"the loss became {loss_value}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip))
        if not math.isfinite(norm):  # clipping would spread it to every gradient: stop before the update
            raise self.writer.diverged(f"the loss became {loss_value:.4g} with a gradient norm of {norm}")
        self.optimizer.step()
        self.weights.update()
        self.rate.applied(lr)
        self.state = tuple(s.detach() for s in new_state)                        # a BPTT boundary
        self.clock.stepped(short, started, self.chars_per_step * x.shape[1] // self.layout.seq_len)
        return loss_value, lr

    def _window(self, short: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's streams of the next step's window (its first or second half when `short`)."""
        batch, half = divmod(self.clock.half_windows, 2)
        _, k = self.layout.position(batch)
        if k == 0 and half == 0:  # a new epoch starts the streams at a new offset: the carried state is stale
            self.state = None
        x, y = _batch(self.train_ids, self.layout, batch, self.device)
        x, y = x[self.rows], y[self.rows]                                        # this rank's streams (b, T)
        if short:                                                                # its first or second half
            cut = slice(0, self.layout.seq_len // 2) if half == 0 else slice(self.layout.seq_len // 2, None)
            x, y = x[:, cut], y[:, cut]
        return x, y

    def evaluate(self, finished: bool = False) -> tuple[float | None, str]:
        """Validation bits per character (None without validation text) and a preview sample;
        saves latest (and best when it improved). Rank 0 evaluates; the other ranks only help
        gather the state to save. Non-finite weights or a non-finite validation loss stop the run
        (a TrainingError) before anything is sampled or saved."""
        main = self.cluster.main
        self.writer.check_weights(self.model)                                    # the same on every rank
        val_bpc = None
        if main and len(self.val_ids) > 1:
            val_bpc = self.weights.score(lambda model: evaluate(model, self.val_ids, self.layout.seq_len, self.device,
                                                                self.config.eval_chars, chunk=self.eval_chunk))
        self.writer.guard(val_bpc is not None and not math.isfinite(val_bpc), f"the validation loss became {val_bpc}")
        if not main:
            self.save(finished=finished)
            return None, ""
        improved = self.scores.record(val_bpc)
        preview = ""
        if self.config.preview_chars:
            step = self.clock.steps
            sampling = SampleConfig(length=self.config.preview_chars, temperature=0.8, seed=step)
            preview = sample_text(self.weights.scored, self.corpus.vocab, "", sampling)[0]
            self.run_dir.log.append_sample(step, float("nan") if val_bpc is None else val_bpc, preview)
        self.save(best=improved, finished=finished)
        return val_bpc, preview

    def save(self, best: bool = False, finished: bool = False) -> None:
        """Write latest.safetensors (and best.safetensors); `finished`: the budget is spent. Every
        rank takes part; rank 0 writes, and nothing non-finite is saved (CheckpointWriter.save)."""
        self.writer.save(self.state, lambda groups: self._run_info(groups, finished), best=best)

    def _run_info(self, optimizer_groups: tuple[dict, ...], finished: bool) -> RunInfo:
        """Where the run stands, as its checkpoint records it."""
        clock, scores = self.clock, self.scores
        return RunInfo(step=clock.steps, layout=self.layout, optimizer_groups=optimizer_groups, train_config=self.config,
                       elapsed_s=round(clock.elapsed, 3), best_val_bpc=scores.best, last_val_bpc=scores.last,
                       corpus=self.source, corpus_chars=int(len(self.corpus)),
                       corpus_fingerprint=self.corpus.fingerprint, torch=torch.__version__, finished=finished,
                       evals_since_best=scores.stale, stopped=scores.stopped, device=str(self.device),
                       threads=self.tuner.describe() if self.tuner else None, half_windows=clock.half_windows,
                       init_from=self.started_from)


class Objective(torch.nn.Module):
    """The model and its training loss as one module, so that under torchrun DistributedDataParallel
    wraps the whole step, the output layer taken in pieces included (model/loss.py)."""

    def __init__(self, model: CharModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, state: State | None, piece: int) -> tuple[torch.Tensor, State]:
        """(the mean cross-entropy of targets y (b, T) in nats, float32; the new state)."""
        features, new_state = self.model.features(x, state)                      # (b, T, H)
        return cross_entropy(features, self.model.head, y, piece), new_state


def _adamw(model: CharModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices only (not the embedding, biases or peepholes)."""
    decays = {n: p.dim() >= 2 and not n.startswith("embed") for n, p in model.named_parameters()}
    groups = [{"params": [p for n, p in model.named_parameters() if decays[n]], "weight_decay": config.weight_decay},
              {"params": [p for n, p in model.named_parameters() if not decays[n]], "weight_decay": 0.0}]
    try:  # one fused kernel for the whole update rather than a loop over the tensors
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
