"""One self-describing checkpoint file: tensors in safetensors, everything else as JSON metadata.

A checkpoint holds the model config, the vocabulary and the weights; a training checkpoint also
holds the optimizer moments, the recurrent state carried between batches, RNG states and the
training position, so a run resumes exactly. Files are written atomically (temp file, fsync,
rename) and never unpickled: loading reads a JSON header and raw tensors, nothing executes.
Knows nothing of training or sampling.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .data import Vocab
from .config import ModelConfig
from .errors import CheckpointError
from .model import CharModel

FORMAT = 1
KIND = "charlstm-checkpoint"
LATEST, BEST = "latest.safetensors", "best.safetensors"
DEFAULT_ROOT = Path("checkpoints")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, loaded and validated."""

    config: ModelConfig
    vocab: Vocab
    model_state: dict[str, torch.Tensor]
    train: dict[str, Any] = field(default_factory=dict)          # JSON-able training metadata
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # extra tensors: optimizer, carried state, RNG
    path: Path | None = None

    def model(self, device: torch.device | str = "cpu") -> CharModel:
        model = CharModel(self.config)
        model.load_state_dict(self.model_state)
        return model.to(device).eval()


def save(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write a checkpoint atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    meta = {
        "kind": KIND,
        "format": FORMAT,
        "config": checkpoint.config.to_dict(),
        "vocab": checkpoint.vocab.chars,
        "train": checkpoint.train,
    }
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in checkpoint.model_state.items()}
    tensors.update({k: v.detach().contiguous().cpu() for k, v in checkpoint.tensors.items()})
    payload = safetensors_bytes(tensors, metadata={"charlstm": json.dumps(meta, ensure_ascii=False)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a checkpoint; every problem becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None
    if "charlstm" not in header:
        raise CheckpointError(f"{path}: a safetensors file, but not a charlstm checkpoint (no charlstm metadata)")
    try:
        meta = json.loads(header["charlstm"])
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CheckpointError(f"{path}: not a charlstm checkpoint")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')}, this charlstm reads format {FORMAT}")
    try:
        config = ModelConfig(**meta["config"])
        vocab = Vocab(meta["vocab"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid model config or vocabulary ({error})") from None
    if len(vocab) != config.vocab_size:
        raise CheckpointError(f"{path}: vocabulary has {len(vocab)} characters but the model expects {config.vocab_size}")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    extra = {k: v for k, v in tensors.items() if not k.startswith("model.")}
    expected = CharModel(config).state_dict()
    if set(expected) != set(model_state):
        missing = sorted(set(expected) - set(model_state))
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:3]}…)" if missing
                              else f"{path}: weights do not match the config (unexpected tensors)")
    for name, tensor in expected.items():
        got = model_state[name]
        if got.shape != tensor.shape or got.dtype != tensor.dtype:
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(got.shape)}, config needs {tuple(tensor.shape)}")
        if not torch.isfinite(got).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values")
    return Checkpoint(config, vocab, model_state, meta.get("train") or {}, extra, path)


def resolve(target: str | os.PathLike | None, root: str | os.PathLike = DEFAULT_ROOT, prefer: str = BEST) -> Path:
    """The checkpoint file a user means: a file as given, a run directory's best (else latest)
    checkpoint, or with no target the most recently written run under `root`."""
    if target is None:
        root = Path(root)
        runs = [p for p in root.glob("*/" + LATEST)] + [p for p in root.glob("*/" + BEST)] if root.is_dir() else []
        if not runs:
            raise CheckpointError(f"no trained model found under {root}/; run `charlstm train` first or name a checkpoint")
        target = max(runs, key=lambda p: p.stat().st_mtime).parent
    path = Path(target)
    if path.is_dir():
        for name in (prefer, BEST, LATEST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no {BEST} or {LATEST} in this directory")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path
