"""Training loop. Knows batches, loss and checkpoints; nothing of the command line or the terminal.

Truncated BPTT over B contiguous streams with the hidden state carried from batch to batch,
AdamW, linear warmup then cosine decay, gradient-norm clipping, periodic validation in bits per
character with a short sample preview, best/latest checkpoints, a wall-clock budget, exact
resume, a clean stop on request (Ctrl-C, SIGTERM) and a NaN guard. Progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .distributed import Cluster
from .data import Corpus, StreamLayout, eval_streams, fit_layout, split, stream_batch
from .config import ModelConfig, TrainConfig
from .errors import CorpusError, TrainingError
from .model import CharModel, State, pick_device
from .config import SampleConfig
from .sample import sample_text

LOG2E = 1.0 / math.log(2.0)


@dataclass
class Event:
    """What the loop reports to its callback."""

    kind: str                        # "start" | "step" | "eval" | "notice"
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
    """Validation bits per character: the text as contiguous streams, state carried chunk to chunk."""
    if max_chars:
        val_ids = val_ids[: max_chars + 1]
    streams = torch.as_tensor(eval_streams(val_ids, num_streams).astype(np.int64), device=device)  # (S, L)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    chunk = max(seq_len, 256)
    for start in range(0, streams.shape[1] - 1, chunk):
        x = streams[:, start : start + chunk]
        y = streams[:, start + 1 : start + chunk + 1]
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
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
    and previews to `out_dir`. `source` (JSON-able: where the corpus came from) is stored with the run.

    model_config's vocab_size is filled in from the corpus. With resume=True the model, optimizer,
    carried state, RNG and position come from out_dir/latest.safetensors, and the run goes on as if
    it had never stopped; `config` then only changes the budget and cadence.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainingError(f"{out}: cannot create the run directory ({error.strerror})") from None
    cluster = Cluster.from_env(pick_device(device))
    corpus = data if isinstance(data, Corpus) else Corpus.from_text(data)
    with _run_lock(out) if cluster.main else contextlib.nullcontext():
        return _train(corpus, out, model_config, config, resume, source, on_event, stop, cluster)


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """One training process per run directory. The kernel drops the lock when its holder dies, so
    a crashed run never blocks the next one."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no lock
        yield
        return
    handle = open(out / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            raise _busy(out, handle.read().strip()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def refuse_if_busy(out: Path) -> None:
    """A TrainingError naming the process that holds `out`'s lock, if one does: a run that has just
    started has no checkpoint yet, and that, not "nothing to resume", is what to tell the user."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no lock
        return
    try:
        handle = open(out / ".lock", "r")
    except OSError:
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when the handle closes
        except OSError:
            raise _busy(out, handle.read().strip()) from None


def _busy(out: Path, holder: str) -> TrainingError:
    return TrainingError(f"{out} is being trained by another process (pid {holder or 'unknown'}); "
                         f"wait for it to finish or pass another --out")


def _train(corpus: Corpus, out: Path, model_config, config, resume, source, on_event, stop,
           cluster: Cluster) -> TrainResult:
    if cluster.main:
        for stale in out.glob(".*.safetensors.*.tmp"):  # half-written by a process killed mid-save
            stale.unlink(missing_ok=True)
    emit = (on_event or (lambda event: None)) if cluster.main else (lambda event: None)
    stop = stop or StopRequest()
    dev = cluster.device
    vocab, ids, fingerprint = corpus.vocab, corpus.ids, corpus.fingerprint

    if resume and not (out / ckpt.LATEST).is_file():
        emit(Event("notice", 0, text=f"{out} has no checkpoint yet: starting from scratch"))
        resume = False
    if resume:
        latest = out / ckpt.LATEST
        saved = ckpt.load(latest)
        if saved.vocab != vocab:
            extra, lost = set(vocab.chars) - set(saved.vocab.chars), set(saved.vocab.chars) - set(vocab.chars)
            raise TrainingError(f"{latest}: the corpus has a different character set than the run "
                                f"(new: {sorted(extra)[:8]}, missing: {sorted(lost)[:8]}); resume with the same corpus")
        if saved.train.get("corpus_fingerprint") not in (None, fingerprint):
            raise TrainingError(f"{latest}: the corpus differs from the one this run was trained on "
                                f"({saved.train.get('corpus_chars')} characters then, {len(ids)} now); resume with the same corpus")
        model_config = saved.config
    else:
        base = model_config or ModelConfig(vocab_size=len(vocab))
        model_config = replace(base, vocab_size=len(vocab))

    torch.manual_seed(config.seed)
    model = CharModel(model_config).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("embed"))]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # one fused kernel for the whole update: ~4x faster than the per-tensor loop on CPU
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99), fused=True)
    except (RuntimeError, TypeError, ValueError):
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.99))

    train_ids, val_ids = split(ids, config.val_fraction)
    # B streams per rank; under torchrun the ranks share one global layout, each taking its rows.
    layout = _global_layout(len(train_ids), config, cluster.world)
    step, elapsed_before, best_val, last_val = 0, 0.0, None, None
    state: State | None = None

    if resume:
        model.load_state_dict(saved.model_state)
        optimizer.load_state_dict(_optimizer_from_tensors(saved.tensors, saved.train["optimizer_groups"]))
        step = int(saved.train["step"])
        elapsed_before = float(saved.train.get("elapsed_s", 0.0))
        best_val, last_val = saved.train.get("best_val_bpc"), saved.train.get("last_val_bpc")
        layout = StreamLayout(**saved.train["layout"])
        rows = cluster.rows(layout.batch_size // cluster.world)
        if "state.0" in saved.tensors:
            state = tuple(saved.tensors[f"state.{i}"][:, rows].to(dev) for i in range(len(model.init_state(1))))
        if "rng.torch" in saved.tensors:
            torch.set_rng_state(saved.tensors["rng.torch"])
        if cluster.main:  # rank 0 alone owns the log
            _truncate_metrics(out / "metrics.jsonl", step)
    elif (out / ckpt.LATEST).exists():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it or --out to start another")

    per_rank = layout.batch_size // cluster.world
    rows = cluster.rows(per_rank)
    if per_rank != config.batch_size and not resume:
        emit(Event("notice", step, text=f"corpus is short ({len(train_ids)} training characters): "
                                        f"using batch size {per_rank}"))
    metrics = open(out / "metrics.jsonl", "a" if resume else "w", encoding="utf-8") if cluster.main else None
    if not resume and cluster.main:
        (out / "samples.txt").unlink(missing_ok=True)
    chars_per_step = layout.batch_size * layout.seq_len                      # all ranks together
    net = cluster.wrap(model)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")  # cuDNN LSTM in bf16

    def progress_of(step: int, elapsed: float) -> float:
        parts = []
        if config.max_steps:
            parts.append(step / config.max_steps)
        if config.time_budget:
            parts.append(elapsed / config.time_budget)
        return max(parts) if parts else 0.0

    def save(*names: str) -> None:
        """Every rank takes part (the carried state is gathered from all); rank 0 writes."""
        full_state = cluster.gather_rows(state)
        if not cluster.main:
            return
        for name in names:
            try:
                _save(name, full_state)
            except OSError as error:
                raise TrainingError(f"could not write {out / name} ({error.strerror or error}); "
                                    f"the previous checkpoint there is intact") from None

    def _save(name: str, full_state) -> Path:
        opt_tensors, groups = _optimizer_to_tensors(optimizer)
        extra = dict(opt_tensors)
        if full_state is not None:
            extra.update({f"state.{i}": s for i, s in enumerate(full_state)})
        extra["rng.torch"] = torch.get_rng_state()
        meta = {
            "step": step,
            "elapsed_s": round(elapsed_before + (time.perf_counter() - t0), 3),
            "best_val_bpc": best_val,
            "last_val_bpc": last_val,
            "train_config": config.to_dict(),
            "layout": asdict(layout),
            "optimizer_groups": groups,
            "corpus": source or {},
            "corpus_chars": int(len(ids)),
            "corpus_fingerprint": fingerprint,
            "torch": torch.__version__,
        }
        return ckpt.save(out / name, ckpt.Checkpoint(model_config, vocab, model.state_dict(), meta, extra))

    def log(record: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()

    def run_eval() -> tuple[float, str]:
        nonlocal best_val, last_val
        if not cluster.main:  # rank 0 evaluates; the others only help gather the state to save
            save()
            return float("nan"), ""
        val_bpc = evaluate(model, val_ids, layout.seq_len, dev, config.eval_chars) if len(val_ids) > 1 else float("nan")
        last_val = val_bpc
        improved = best_val is None or (val_bpc == val_bpc and val_bpc < best_val)
        if improved and val_bpc == val_bpc:
            best_val = val_bpc
        preview = ""
        if config.preview_chars:
            preview = sample_text(model, vocab, "", SampleConfig(length=config.preview_chars, temperature=0.8, seed=step))[0]
            with open(out / "samples.txt", "a", encoding="utf-8") as f:
                f.write(f"--- step {step}, val {val_bpc:.3f} bpc ---\n{preview}\n\n")
        if improved:
            save(ckpt.LATEST, ckpt.BEST)
        else:
            save(ckpt.LATEST)
        return val_bpc, preview

    model.train()
    t0 = time.perf_counter()
    if not resume:
        save(ckpt.LATEST)  # from the first moment there is something to --resume
    emit(Event("start", step, config.max_steps, elapsed_before, config.time_budget,
               text=f"{model.num_parameters:,} parameters, {len(vocab)} characters, {len(train_ids):,} training / "
                    f"{len(val_ids):,} validation characters, device {dev}"))
    window_loss, window_steps = 0.0, 0
    train_time, train_chars = 0.0, 0
    last_eval_cost = 0.0
    interrupted, last_eval_step = False, -1
    try:
        while True:
            elapsed = elapsed_before + time.perf_counter() - t0
            done = (config.max_steps is not None and step >= config.max_steps) or (
                config.time_budget is not None and elapsed + last_eval_cost >= config.time_budget)
            if cluster.agree(stop.is_set()):  # every rank stops on the same step
                interrupted = True
                break
            if cluster.agree(done):
                break
            t_step = time.perf_counter()
            _, k = layout.position(step)
            if k == 0:  # a new epoch starts the streams at a new offset: the carried state is stale
                state = None
            x, y = _batch(train_ids, layout, step, dev)
            x, y = x[rows], y[rows]                                           # this rank's streams
            lr = learning_rate(config, step, progress_of(step, elapsed))
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                logits, new_state = net(x, state)                             # (B, T, V)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            loss_value = cluster.mean(loss)                                   # the global batch's loss
            if not math.isfinite(loss_value):
                raise TrainingError(f"loss became {loss_value} at step {step} (try a lower --lr); "
                                    f"the last good checkpoint is {out / ckpt.LATEST}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            state = tuple(s.detach() for s in new_state)                      # a BPTT boundary
            step += 1
            window_loss += loss_value
            window_steps += 1
            train_time += time.perf_counter() - t_step
            train_chars += chars_per_step
            rate = train_chars / max(train_time, 1e-9)
            elapsed = elapsed_before + time.perf_counter() - t0
            if step % config.log_every == 0:
                log({"step": step, "elapsed_s": round(elapsed, 3), "train_loss": round(window_loss / window_steps, 5),
                     "lr": lr, "chars_per_s": round(rate, 1)})
                window_loss, window_steps = 0.0, 0
            emit(Event("step", step, config.max_steps, elapsed, config.time_budget, loss_value, last_val, lr, rate))
            if step % config.eval_every == 0:
                t_eval = time.perf_counter()
                val_bpc, preview = run_eval()
                last_eval_step = step
                last_eval_cost = time.perf_counter() - t_eval
                elapsed = elapsed_before + time.perf_counter() - t0
                log({"step": step, "elapsed_s": round(elapsed, 3), "val_bpc": round(val_bpc, 5),
                     "val_loss": round(val_bpc / LOG2E, 5), "lr": lr, "chars_per_s": round(rate, 1)})
                emit(Event("eval", step, config.max_steps, elapsed, config.time_budget, loss_value, val_bpc, lr, rate,
                           text=preview))
    except KeyboardInterrupt:  # a second Ctrl-C may land mid-update: keep the last whole checkpoint instead
        if metrics is not None:
            metrics.close()
        raise
    try:
        if interrupted:
            save(ckpt.LATEST)
        elif last_eval_step != step:  # the same decision on every rank
            val_bpc, preview = run_eval()
            elapsed = elapsed_before + time.perf_counter() - t0
            log({"step": step, "elapsed_s": round(elapsed, 3), "val_bpc": round(val_bpc, 5),
                 "val_loss": round(val_bpc / LOG2E, 5), "chars_per_s": round(train_chars / max(train_time, 1e-9), 1)})
            emit(Event("eval", step, config.max_steps, elapsed, config.time_budget, None, val_bpc, None, None,
                       text=preview))
    finally:
        if metrics is not None:
            metrics.close()
    return TrainResult(out, step, elapsed_before + time.perf_counter() - t0, best_val, last_val,
                       train_chars / max(train_time, 1e-9), interrupted)


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


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop log lines from steps after the checkpoint: they will be run again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and _line_step(line) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a kill: drop it
