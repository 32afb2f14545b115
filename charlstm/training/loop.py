"""Training loop. Knows batches, loss and checkpoints; nothing of the command line or the terminal.

Truncated BPTT over B contiguous streams with the hidden state carried from batch to batch,
AdamW, linear warmup then cosine decay, gradient-norm clipping, periodic validation in bits per
character with a short sample preview, best/latest checkpoints, a wall-clock budget, exact
resume, a clean stop on request (Ctrl-C, SIGTERM) and a NaN guard. `Trainer` holds a run in
progress; `train` is the one call; progress goes to a callback as typed `Event`s. The run
directory's files are run.Run's; what a run may go on from, and what `charlstm train` trains
(run, corpus, recipe), is resume.py's.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ModelConfig, SampleConfig, TrainConfig
from ..data.corpus import Corpus
from ..data.streams import StreamLayout, eval_streams, fit_layout, split, stream_batch
from ..errors import CheckpointError, CorpusError, TrainingError
from ..generation.sampling import sample_text
from ..model.average import AVERAGE_PREFIX, TRAINING_PREFIX, WeightAverage
from ..model.network import CharModel, State
from ..runs import checkpoint as ckpt
from ..runs.folder import Run
from ..runs.logs import MetricsWriter
from ..runs.runinfo import CorpusSource, RunInfo
from ..runtime import ThreadTuner, pick_device
from .distributed import Cluster
from .events import Event, EventKind, TrainResult
from .resume import budget_left, nonfinite_tensor, nothing_to_train, refuse_unresumable
from .schedule import learning_rate
from .stopping import StopRequest

LOG2E = 1.0 / math.log(2.0)


#: Below this learning rate a divergence is not plausibly the learning rate's doing, and the message
#: does not suggest lowering it (the updates of AdamW are about the learning rate in size).
PLAUSIBLE_DIVERGENT_LR = 1e-4


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


@torch.inference_mode()
def evaluate(model: CharModel, val_ids: np.ndarray, seq_len: int, device: torch.device, max_chars: int | None = None,
             num_streams: int = 32) -> float:
    """Validation bits per character: the text as contiguous streams, state carried chunk to chunk
    (`score.chunked_cross_entropy`, the same reading as scoring)."""
    from ..scoring.bits import chunked_cross_entropy

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
    threads: int | None = None,
) -> TrainResult:
    """Train a character model on `data` (text, or a prepared `Corpus`), writing checkpoints, metrics
    and previews to `out_dir`. `source` (where the corpus came from: {"paths": [...], "encoding": ...})
    is stored with the run.

    model_config's vocab_size is filled in from the corpus; None fits the model's size to the corpus
    and the budget (fit.py). With resume=True the model, optimizer,
    carried state, RNG and position come from out_dir/latest.safetensors, and the run goes on as if
    it had never stopped; `config` then only changes the budget and cadence. `threads` pins the CPU
    thread count; None times the candidates on the first steps and keeps the fastest (threads.py).
    """
    run = Run(out_dir)
    run.create()
    cluster = Cluster.from_env(pick_device(device))
    corpus = data if isinstance(data, Corpus) else Corpus.from_text(data, config.min_char_count)
    if model_config is None and not (resume and run.latest.is_file()):
        model_config, _ = fitted_model(corpus, config, cluster.device.type)
    with run.lock() if cluster.main else contextlib.nullcontext():
        trainer = Trainer(corpus, run, model_config, config, resume=resume, source=source, on_event=on_event,
                          stop=stop, cluster=cluster, threads=threads)
        return trainer.run()


def fitted_model(corpus: Corpus, config: TrainConfig, device: str = "cpu", base: ModelConfig | None = None,
                 keep: Iterable[str] = ()):
    """`base` (default: every field at its default) with the size fields not in `keep` fitted to the
    training split of `corpus` and the budget of `config` (fit.fitted_config) → (ModelConfig, the
    fit.FittedModel, or None when nothing was fitted)."""
    from .fit import fitted_config

    base = replace(base or ModelConfig(vocab_size=1), vocab_size=len(corpus.vocab))
    return fitted_config(base, len(split(corpus.ids, config.val_fraction)[0]), config, device, keep=set(keep))


class Trainer:
    """One training run in progress: the model, the optimizer, the carried state and the counters.

    `step()` takes one optimisation step, `evaluate()` scores the validation text and saves, `save()`
    writes the checkpoint(s) through the run directory, `run()` loops until the budget is spent or a
    stop is requested. Under torchrun every rank makes one; rank 0 alone writes, logs and reports.
    Made with the run's lock held (see `train`).
    """

    def __init__(self, corpus: Corpus, run: Run, model_config: ModelConfig | None, config: TrainConfig, *,
                 resume: bool = False, source: dict | None = None, on_event: Callable[[Event], None] | None = None,
                 stop: StopRequest | None = None, cluster: Cluster | None = None, threads: int | None = None) -> None:
        self.cluster = cluster = cluster or Cluster()
        # On the CPU, the thread count is chosen by timing the steps (a busy machine makes torch's
        # spin-waiting default several times slower); ranks of a torchrun job keep what they were given.
        tuned = cluster.device.type == "cpu" and cluster.world == 1
        self.tuner = ThreadTuner(pinned=threads) if tuned or threads else None
        self.corpus, self.run_dir, self.config = corpus, run, config
        self.source = CorpusSource(tuple(source.get("paths") or ()), source.get("encoding", "utf-8")) if source else None
        self.stop = stop or StopRequest()
        self._on_event = on_event if cluster.main else None
        self.device = cluster.device
        self.steps, self.elapsed_before, self.best_val, self.last_val = 0, 0.0, None, None
        # Where the next step starts in the streams, in half windows: a step reads half a window
        # while the first `short_windows` of the budget lasts, then whole ones (_short_step).
        self.half_windows = 0
        self.stale, self.stopped = 0, None       # evaluations since the best figure; why it stopped early
        self.state: State | None = None
        # The NaN guard: the step of the last checkpoint written (or found, on resume) and loadable,
        # and the learning rate of the last update; the lr never rises again after warmup (step()).
        self.saved_step: int | None = None
        self.last_lr: float | None = None
        self.lr_cap: float | None = None
        if cluster.main:
            run.remove_stale_temps()
        saved = self._resumable(resume)
        self.resumed = saved is not None
        base = model_config or ModelConfig(vocab_size=len(corpus.vocab))
        self.model_config = saved.config if saved else replace(base, vocab_size=len(corpus.vocab))
        torch.manual_seed(config.seed)
        self.model = CharModel(self.model_config).to(self.device)
        self.optimizer = _adamw(self.model, config)
        # The moving average of the weights (average.py), kept beside them; each evaluation scores
        # both, and the better is previewed and saved as the model (`scored`).
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.use_average = False
        self.val_training: float | None = None                  # the training weights' figure, when averaged
        self.train_ids, self.val_ids = split(corpus.ids, config.val_fraction)
        # B streams per rank; under torchrun the ranks share one global layout, each taking its rows.
        self.layout = _global_layout(len(self.train_ids), config, cluster.world)
        if saved is not None:
            self._restore(saved)
        elif run.latest.exists():
            raise TrainingError(f"{run} already holds a run; pass --resume to continue it or --out to start another")
        elif not budget_left(0, 0.0, config):
            raise TrainingError(f"{run}: nothing to train: the budget allows no step; give --time or --max-steps above 0")
        # Windows only grow: half ones while no whole one was read, and there is a budget to take a fraction of.
        self.short_phase = (self.half_windows == self.steps and config.short_windows > 0 and self.layout.seq_len >= 2
                            and bool(config.max_steps or config.time_budget))
        per_rank = self.layout.batch_size // cluster.world
        self.rows = cluster.rows(per_rank)
        if per_rank != config.batch_size and not self.resumed:
            self._notice(f"corpus is short ({len(self.train_ids)} training characters): using batch size {per_rank}")
        self.chars_per_step = self.layout.batch_size * self.layout.seq_len              # all ranks together
        self.net = cluster.wrap(self.model)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")  # cuDNN LSTM in bf16
        self.train_time, self.train_chars, self.last_eval_cost, self.last_eval_step = 0.0, 0, 0.0, -1
        self.session_steps = 0
        self._next_eval_at: float | None = None                                   # perf_counter times
        self._clock_eval_at: float | None = None                                 # the last one the clock asked for
        self.window_loss, self.window_steps = 0.0, 0
        self._t0 = time.perf_counter()
        self._metrics: MetricsWriter | None = None

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
        refuse_unresumable(saved, latest)
        why = nothing_to_train(saved, self.config, self.run_dir)
        if why:  # before anything is written: the log and the checkpoints stay as they are
            raise TrainingError(why)
        return saved

    def _restore(self, saved: ckpt.Checkpoint) -> None:
        """Model, optimizer, position, clock, scores, layout, carried state and RNG as they were saved."""
        info = saved.run_info
        beside = lambda prefix: {name[len(prefix):]: t for name, t in saved.tensors.items() if name.startswith(prefix)}
        training, average = beside(TRAINING_PREFIX), beside(AVERAGE_PREFIX)
        # The model tensors hold the better of the two and the other is beside them; a checkpoint
        # without an average holds the training weights alone (an average then starts from them).
        self.model.load_state_dict(training or saved.model_state)
        if self.average is not None:
            self.average.load(average or saved.model_state, info.step)
            self.use_average = bool(training)
        self.optimizer.load_state_dict(_optimizer_from_tensors(saved.tensors, [dict(g) for g in info.optimizer_groups]))
        self.steps, self.elapsed_before = info.step, info.elapsed_s
        self.half_windows = info.position
        self.best_val, self.last_val = info.best_val_bpc, info.last_val_bpc
        # a run stopped by --patience and given more budget starts counting afresh
        self.stale = 0 if info.stopped else info.evals_since_best
        if self.best_val is not None and not math.isfinite(self.best_val):
            self.best_val = None
        if self.last_val is not None and not math.isfinite(self.last_val):
            self.last_val = None  # saved by older versions for a run without validation text
        self.saved_step = info.step
        self.lr_cap = _resumed_lr_cap(info, self.config)
        self.layout = _resumed_layout(info.layout, len(self.train_ids), self.run_dir.latest)
        rows = self.cluster.rows(self.layout.batch_size // self.cluster.world)
        if "state.0" in saved.tensors:  # each (L, B, H): this rank's streams
            layers = range(len(self.model.init_state(1)))
            self.state = tuple(saved.tensors[f"state.{i}"][:, rows].to(self.device) for i in layers)
        if "rng.torch" in saved.tensors:
            torch.set_rng_state(saved.tensors["rng.torch"])
        if self.cluster.main:  # rank 0 alone owns the log
            self.run_dir.log.truncate_metrics(self.steps)

    @property
    def scored(self) -> CharModel:
        """The model previewed and saved for sampling: the weights' average when it scored better at
        the last evaluation, else the training weights."""
        return self.average.model if self.average is not None and self.use_average else self.model

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
        """No room for another step: the time budget counts the step (its mean so far) and the
        closing evaluation and save (as long as the last one took) before they run, so a run ends
        on time rather than one step and one evaluation late."""
        config = self.config
        if config.max_steps is not None and self.steps >= config.max_steps:
            return True
        if config.time_budget is None:
            return False
        mean_step = self.train_time / self.session_steps if self.session_steps else 0.0
        return self.elapsed + mean_step + self.last_eval_cost >= config.time_budget

    def _evaluation_due(self) -> bool:
        """Every `eval_every` steps, and on the clock: the first `eval_seconds`/2 into this session
        (sooner in a short budget: a sixth of it), then `eval_seconds` after the last one ended — but
        neither kind within a quarter of `eval_seconds` of the end, where the closing evaluation
        comes anyway. A step's turn that comes within a quarter of
        `eval_seconds` after an evaluation the clock asked for is skipped (it would show nearly the same figure, and
        each costs seconds of the budget). Ranks decide together."""
        seconds = self.config.eval_seconds
        clocked = bool(seconds) and seconds > 0
        left = None if self.config.time_budget is None else self.config.time_budget - self.elapsed
        closing_near = clocked and left is not None and left <= seconds / 4
        if self.steps % self.config.eval_every == 0:
            recent = clocked and self._clock_eval_at is not None and (
                time.perf_counter() - self._clock_eval_at < seconds / 4)
            return not self.cluster.agree(recent or closing_near)
        due = False
        if self._next_eval_at is not None and time.perf_counter() >= self._next_eval_at:
            due = not closing_near
        due = self.cluster.agree(due)
        if due:
            self._clock_eval_at = time.perf_counter()
        return due

    def _schedule_evaluation(self, first: bool = False) -> None:
        seconds = self.config.eval_seconds
        if not seconds or seconds <= 0:
            self._next_eval_at = None
            return
        if first:
            seconds = seconds / 2
            if self.config.time_budget is not None:
                seconds = min(seconds, max(self.config.time_budget - self.elapsed_before, 0.0) / 6)
        self._next_eval_at = time.perf_counter() + seconds

    # -- the work

    def step(self) -> tuple[float, float]:
        """One optimisation step on this rank's streams; returns (the global batch's loss in nats, lr)."""
        short = self._short_step()
        if self.tuner is None:
            return self._step(short)
        rounds, before = self.tuner.rounds, self.tuner.chosen
        with self.tuner.timed(work=0.5 if short else 1.0):                  # trials compare time per character
            result = self._step(short)
        if self.tuner.rounds != rounds and (rounds == 0 or self.tuner.chosen != before):
            self._notice(f"threads: {self.tuner.describe()}")  # the first choice, and every change of mind
        return result

    def _short_step(self) -> bool:
        """Whether the next step reads half a window: over the first `short_windows` of the budget
        (twice the updates per character while the loss falls fastest; benchmarks/README.md), and to
        finish a window begun in halves. Once a whole window is read, windows stay whole. Ranks
        decide together."""
        if self.half_windows % 2:
            return True
        if self.short_phase:
            over = self._progress(self.elapsed) >= self.config.short_windows
            self.short_phase = not self.cluster.agree(over)
        return self.short_phase

    def _step(self, short: bool) -> tuple[float, float]:
        started = time.perf_counter()
        batch, half = divmod(self.half_windows, 2)
        _, k = self.layout.position(batch)
        if k == 0 and half == 0:  # a new epoch starts the streams at a new offset: the carried state is stale
            self.state = None
        x, y = _batch(self.train_ids, self.layout, batch, self.device)
        x, y = x[self.rows], y[self.rows]                                        # this rank's streams (b, T)
        if short:                                                                # its first or second half
            cut = slice(0, self.layout.seq_len // 2) if half == 0 else slice(self.layout.seq_len // 2, None)
            x, y = x[:, cut], y[:, cut]
        lr = learning_rate(self.config, self.steps, self._progress(self.elapsed))
        if self.steps >= self.config.warmup_steps:  # after warmup the rate only falls (see _resumed_lr_cap)
            if self.lr_cap is not None and lr > self.lr_cap:
                lr = self.lr_cap
            self.lr_cap = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            logits, new_state = self.net(x, self.state)                          # (b, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        loss_value = self.cluster.mean(loss)
        if not math.isfinite(loss_value):
            raise self._diverged(f"the loss became {loss_value}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip))
        if not math.isfinite(norm):  # clipping would spread it to every gradient: stop before the update
            raise self._diverged(f"the loss became {loss_value:.4g} with a gradient norm of {norm}")
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.model)
        self.last_lr = lr
        self.state = tuple(s.detach() for s in new_state)                        # a BPTT boundary
        self.steps += 1
        self.half_windows += 1 if short else 2
        self.session_steps += 1
        self.train_time += time.perf_counter() - started
        self.train_chars += self.chars_per_step * x.shape[1] // self.layout.seq_len
        return loss_value, lr

    def evaluate(self, finished: bool = False) -> tuple[float | None, str]:
        """Validation bits per character (None without validation text) and a preview sample;
        saves latest (and best when it improved). Rank 0 evaluates; the other ranks only help
        gather the state to save. Non-finite weights or a non-finite validation loss stop the run
        (a TrainingError) before anything is sampled or saved."""
        main = self.cluster.main
        bad = nonfinite_tensor(self.model.named_parameters())               # the same on every rank
        if self.cluster.agree(bad is not None):
            raise self._diverged(f"the weights became non-finite (in {bad})")
        val_bpc = None
        if main and len(self.val_ids) > 1:
            val_bpc = evaluate(self.model, self.val_ids, self.layout.seq_len, self.device, self.config.eval_chars)
            if self.average is not None and math.isfinite(val_bpc):
                averaged = evaluate(self.average.model, self.val_ids, self.layout.seq_len, self.device,
                                    self.config.eval_chars)
                self.val_training, self.use_average = val_bpc, averaged < val_bpc
                val_bpc = min(val_bpc, averaged)
        if self.cluster.agree(val_bpc is not None and not math.isfinite(val_bpc)):
            raise self._diverged(f"the validation loss became {val_bpc}")
        if not main:
            self.save(finished=finished)
            return None, ""
        self.last_val = val_bpc
        improved = self.best_val is None or (val_bpc is not None and val_bpc < self.best_val)
        if improved and val_bpc is not None:
            self.best_val = val_bpc
        if val_bpc is not None:
            self.stale = 0 if improved else self.stale + 1
        preview = ""
        if self.config.preview_chars:
            sampling = SampleConfig(length=self.config.preview_chars, temperature=0.8, seed=self.steps)
            preview = sample_text(self.scored, self.corpus.vocab, "", sampling)[0]
            self.run_dir.log.append_sample(self.steps, float("nan") if val_bpc is None else val_bpc, preview)
        self.save(best=improved, finished=finished)
        return val_bpc, preview

    def save(self, best: bool = False, finished: bool = False) -> None:
        """Write latest.safetensors (and best.safetensors); `finished`: the budget is spent. Every
        rank takes part (the carried state is gathered from all); rank 0 writes.

        Every save passes here, and nothing non-finite is saved: each tensor that would go into the
        file (weights, optimizer moments, carried state) is checked first, and a non-finite one stops
        the run with a TrainingError naming the last good checkpoint, the files left as they were."""
        full_state = self.cluster.gather_rows(self.state)                        # each (L, B, H)
        checkpoint = self._checkpoint(full_state, finished) if self.cluster.main else None
        bad = None if checkpoint is None else nonfinite_tensor(
            [*(("model." + k, v) for k, v in checkpoint.model_state.items()), *checkpoint.tensors.items()])
        if self.cluster.agree(bad is not None):
            raise self._diverged(f"{bad or 'a tensor to save'} became non-finite, so it was not saved")
        if not self.cluster.main:
            return
        for path in (self.run_dir.latest, self.run_dir.best) if best else (self.run_dir.latest,):
            try:
                ckpt.save(path, checkpoint)
            except OSError as error:
                raise TrainingError(f"could not write {path} ({error.strerror or error}); "
                                    f"the previous checkpoint there is intact") from None
            if path == self.run_dir.latest:
                self.saved_step = self.steps

    def _diverged(self, what: str) -> TrainingError:
        """The one-line error for a run whose numbers stopped being finite: what, where, the likely
        cause (the learning rate only when that is plausible) and the checkpoint that is still good."""
        if self.last_lr is None:
            hint = ("before any update of this session, so not the learning rate: the model options "
                    "(--forget-bias …) or the checkpoint are the likely cause")
        elif self.last_lr >= PLAUSIBLE_DIVERGENT_LR:
            hint = f"the learning rate was {self.last_lr:.3g}: try a lower --lr"
        else:
            hint = f"at a learning rate of {self.last_lr:.3g} the learning rate is an unlikely cause"
        if self.saved_step is None:
            kept = "no checkpoint was written"
        else:
            kept = f"the last good checkpoint is {self.run_dir.latest} (step {self.saved_step})"
            kept += (f"; it and {self.run_dir.best.name} are left as they were" if self.run_dir.best.exists()
                     else ", left as it was")
        return TrainingError(f"training diverged at step {self.steps}: {what} ({hint}); {kept}")

    def _checkpoint(self, full_state: State | None, finished: bool = False) -> ckpt.Checkpoint:
        opt_tensors, groups = _optimizer_to_tensors(self.optimizer)
        extra = dict(opt_tensors)
        if full_state is not None:
            extra.update({f"state.{i}": s for i, s in enumerate(full_state)})
        extra["rng.torch"] = torch.get_rng_state()
        if self.average is not None:  # the one of the two that is not the model
            prefix, other = (TRAINING_PREFIX, self.model) if self.use_average else (AVERAGE_PREFIX, self.average.model)
            extra.update({prefix + name: tensor for name, tensor in other.state_dict().items()})
        info = RunInfo(step=self.steps, layout=self.layout, optimizer_groups=tuple(groups), train_config=self.config,
                       elapsed_s=round(self.elapsed, 3), best_val_bpc=self.best_val, last_val_bpc=self.last_val,
                       corpus=self.source, corpus_chars=int(len(self.corpus)),
                       corpus_fingerprint=self.corpus.fingerprint, torch=torch.__version__, finished=finished,
                       evals_since_best=self.stale, stopped=self.stopped, device=str(self.device),
                       threads=self.tuner.describe() if self.tuner else None, half_windows=self.half_windows)
        return ckpt.Checkpoint(self.model_config, self.corpus.vocab, self.scored.state_dict(), info.to_dict(), extra)

    def run(self) -> TrainResult:
        """Train until the budget is spent or a stop is requested, then save (and evaluate once more
        unless the last step was just evaluated)."""
        main = self.cluster.main
        self._metrics = None
        try:
            self.model.train()
            self._t0 = time.perf_counter()
            self._schedule_evaluation(first=True)
            if not self.resumed:  # before any other file: from the first moment there is something to --resume
                self.save()
            self._metrics = self.run_dir.log.open_metrics(fresh=not self.resumed) if main else None
            if main and not self.resumed:
                self.run_dir.log.clear_samples()
            self._emit(Event(kind=EventKind.START, step=self.steps, max_steps=self.config.max_steps,
                             elapsed_s=self.elapsed_before, time_budget=self.config.time_budget,
                             text=self._describe()))
            interrupted = self._loop()
            if interrupted:
                self.save()
            elif self.last_eval_step != self.steps:  # the same decision on every rank
                self._evaluate_and_report(finished=True)
            else:  # the last step was just evaluated and saved: mark that checkpoint as the end
                self.save(finished=True)
        finally:  # a second Ctrl-C may land mid-update: the last whole checkpoint stays as it is
            if self._metrics is not None:
                self._metrics.close()
        return TrainResult(self.run_dir.path, self.steps, self.elapsed, self.best_val, self.last_val,
                           self.chars_per_s, interrupted, self.tuner.describe() if self.tuner else "", self.stopped)

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
            if self._evaluation_due():
                self._evaluate_and_report(loss, lr)
                if self._out_of_patience():
                    return False

    def _out_of_patience(self) -> bool:
        """--patience N: N evaluations in a row without a better validation figure end the run (best
        is kept; the reason is logged, shown and stored, so --resume knows it)."""
        patience = self.config.patience
        out = bool(patience) and self.best_val is not None and self.stale >= patience
        if not self.cluster.agree(out):
            return False
        self.stopped = (f"no better validation figure in {self.stale} evaluations (best {self.best_val:.3f} bits/char)"
                        if self.cluster.main else "out of patience")
        self._log({"step": self.steps, "elapsed_s": round(self.elapsed, 3), "stopped": self.stopped})
        self._notice(f"stopping early at step {self.steps}: {self.stopped}")
        return True

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

    def _evaluate_and_report(self, loss: float | None = None, lr: float | None = None, finished: bool = False) -> None:
        """Evaluate and save, then log and emit the result; `loss` and `lr` are those of the step
        just taken (None for the closing evaluation, which follows no step of its own). Without
        validation text the scores are logged as null."""
        started = time.perf_counter()
        val_bpc, preview = self.evaluate(finished)
        self.last_eval_step, self.last_eval_cost = self.steps, time.perf_counter() - started
        self._schedule_evaluation()
        if self.tuner is not None:  # the next step runs with cold caches: not a fair thread trial
            self.tuner.disturbed()
        elapsed, rate = self.elapsed, self.chars_per_s
        record = {"step": self.steps, "elapsed_s": round(elapsed, 3),
                  "val_bpc": None if val_bpc is None else round(val_bpc, 5),
                  "val_loss": None if val_bpc is None else round(val_bpc / LOG2E, 5)}
        if val_bpc is not None and self.average is not None:  # which of the two is the model, and the other's figure
            record["averaged"] = self.use_average
            record["training_val_bpc"] = round(self.val_training, 5)
        if lr is not None:
            record["lr"] = lr
        self._log({**record, "chars_per_s": round(rate, 1)})
        self._emit(Event(kind=EventKind.EVAL, step=self.steps, max_steps=self.config.max_steps, elapsed_s=elapsed,
                         time_budget=self.config.time_budget, train_loss=loss, val_bpc=val_bpc, lr=lr,
                         chars_per_s=rate if lr is not None else None, text=preview,
                         weights_val_bpc=self.val_training if val_bpc is not None and self.use_average else None))

    def _describe(self) -> str:
        vocab = self.corpus.vocab
        folded = f" (the rarest read as {vocab.unknown_char})" if vocab.unknown_char is not None else ""
        return (f"{self.model.num_parameters:,} parameters, {len(vocab)} characters{folded}, "
                f"{len(self.train_ids):,} training / {len(self.val_ids):,} validation characters, device {self.device}")

    def _log(self, record: dict[str, Any]) -> None:
        """One record of the log (rank 0; runs/logs.py writes it as a line of strict JSON)."""
        if self._metrics is not None:
            self._metrics.write(record)

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _notice(self, text: str) -> None:
        self._emit(Event(kind=EventKind.NOTICE, step=self.steps, text=text))


def _resumed_lr_cap(info: RunInfo, config: TrainConfig) -> float | None:
    """The learning rate a resumed run may not exceed: that of the last update before the checkpoint
    (stored with the optimizer's groups), scaled if --lr changed the peak; None within warmup.

    After warmup the rate never rises: each step takes the lower of the schedule and the step
    before. An uninterrupted run is unchanged by that (its schedule only falls), and so is a resume
    with the same budget (bit-identical losses); an extended budget goes on at the rate the run had
    reached, holds it while the new, longer budget's schedule is above it, then follows that
    schedule's cosine to its floor at the new end. No jump back to the peak."""
    if info.step <= info.train_config.warmup_steps or not info.optimizer_groups:
        return None  # the last update was a warmup step (or there was none)
    last = info.optimizer_groups[0].get("lr")
    if isinstance(last, bool) or not isinstance(last, (int, float)) or not math.isfinite(last) or last <= 0:
        return None
    old_peak, peak = info.train_config.learning_rate, config.learning_rate
    return float(last) if old_peak == peak or old_peak <= 0 else float(last) * peak / old_peak


def _adamw(model: CharModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices only (not the embedding, biases or peepholes)."""
    decays = {n: p.dim() >= 2 and not n.startswith("embed") for n, p in model.named_parameters()}
    groups = [{"params": [p for n, p in model.named_parameters() if decays[n]], "weight_decay": config.weight_decay},
              {"params": [p for n, p in model.named_parameters() if not decays[n]], "weight_decay": 0.0}]
    try:  # one fused kernel for the whole update: ~4x faster than the per-tensor loop on CPU
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99))


def _resumed_layout(layout: StreamLayout, n_chars: int, where: Path) -> StreamLayout:
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
