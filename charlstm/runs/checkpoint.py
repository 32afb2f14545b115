"""One self-describing checkpoint file: tensors in safetensors, everything else as JSON metadata.

A checkpoint holds the model config, the vocabulary and the weights; a training checkpoint also
holds the optimizer moments, the recurrent state carried between batches, RNG states and the
training position, so a run resumes exactly. Files are written atomically (through
files.write_file: temp file, fsync, rename) and never unpickled: loading reads a JSON header and
raw tensors, nothing executes, and every size is checked against the file before anything is
allocated. Knows nothing of training, sampling or run folders beyond a path; the training metadata
is typed by runinfo.RunInfo. The names of a run's checkpoint files (LATEST, BEST) come from
files.py, and `resolve` from runs/folder.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ..config import ModelConfig
from ..data.vocab import Vocab
from ..errors import CheckpointError, one_line
from ..files import BEST, LATEST, regular_path, write_file
from ..model.network import CharModel
from .folder import DEFAULT_ROOT, resolve
from .runinfo import RunInfo

__all__ = ["BEST", "DEFAULT_ROOT", "FORMAT", "KIND", "LATEST", "Checkpoint", "load", "resolve", "save"]

FORMAT = 1
KIND = "charlstm-checkpoint"


@dataclass
class Checkpoint:
    """What a checkpoint file holds, loaded and validated."""

    config: ModelConfig
    vocab: Vocab
    model_state: dict[str, torch.Tensor]
    train: dict[str, Any] = field(default_factory=dict)          # JSON-able training metadata (RunInfo.to_dict())
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # extra tensors: optimizer, carried state, RNG
    path: Path | None = None

    def model(self, device: torch.device | str = "cpu") -> CharModel:
        model = CharModel(self.config)
        model.load_state_dict(self.model_state)
        return model.to(device).eval()

    def fingerprint(self) -> str:
        """A sha256 of the model itself — config, vocabulary and weights, not the training
        metadata — so a run and its export, or two copies of a file, have the same one."""
        digest = hashlib.sha256(json.dumps([self.config.to_dict(), self.vocab.chars, self.vocab.unknown_char],
                                           ensure_ascii=False).encode("utf-8"))
        for name, tensor in self.model_state.items():
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy())   # its bytes, not copied
        return digest.hexdigest()

    @property
    def run_info(self) -> RunInfo | None:
        """The training metadata, typed and validated (a CheckpointError naming the field if it is
        wrong); None for a checkpoint saved without any."""
        if not self.train:
            return None
        return RunInfo.from_dict(self.train, where=str(self.path) if self.path else "checkpoint")


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
    if checkpoint.vocab.unknown_char is not None:  # the symbol its rare characters were folded into
        meta["unknown"] = checkpoint.vocab.unknown_char
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in checkpoint.model_state.items()}
    tensors.update({k: v.detach().contiguous().cpu() for k, v in checkpoint.tensors.items()})
    payload = safetensors_bytes(tensors, metadata={"charlstm": json.dumps(meta, ensure_ascii=False)})
    return write_file(path, payload)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a checkpoint: a `Checkpoint`, or one one-line CheckpointError naming the
    file and the reason, never another exception.

    Costs what the file holds, whatever its header claims: safetensors refuses a header whose
    shapes and offsets do not cover exactly the file's bytes; the metadata is checked by type and
    against caps (config.MAX_*, MAX_METADATA_CHARS, MAX_TENSORS); the tensors the config implies (names, shapes,
    dtypes, by arithmetic: no model is built) are compared with the header before any is read.
    Tensors outside `model.*` (optim.*, state.*, rng.*: what training resumes from) are kept as read.
    """
    path = Path(path)
    try:
        with regular_path(path, CheckpointError, follow=True) as opened:
            return _read(path, opened, device)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None


def _read(path: Path, opened: str, device: str | torch.device) -> Checkpoint:
    """`load`'s work on the checked file, open as `opened`; messages name `path`."""
    handle = _safetensors_call(path, lambda: safe_open(opened, framework="pt", device=str(device)))
    with handle as f:
        header, names = _safetensors_call(path, lambda: (f.metadata() or {}, list(f.keys())))
        if len(names) > MAX_TENSORS:
            raise CheckpointError(f"{path}: {len(names):,} tensors, over the cap of {MAX_TENSORS:,}")
        meta = _metadata(path, header)
        config = _model_config(path, meta.get("config"))
        vocab = _vocab(path, meta.get("vocab"), config, meta.get("unknown"))
        train = {} if meta.get("train") is None else meta["train"]
        if not isinstance(train, dict):
            raise CheckpointError(f"{path}: training metadata is {_shown(train)}, not a JSON object")
        layout = _safetensors_call(path, lambda: {
            name[len("model."):]: (tuple(f.get_slice(name).get_shape()), f.get_slice(name).get_dtype())
            for name in names if name.startswith("model.")})
        expected = _check_layout(path, config, layout)
        tensors = _safetensors_call(path, lambda: {name: f.get_tensor(name) for name in names})
    model_state = {name: tensors["model." + name] for name in expected}   # in state_dict order
    for name, tensor in model_state.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values")
    extra = {k: v for k, v in tensors.items() if not k.startswith("model.")}
    return Checkpoint(config, vocab, model_state, train, extra, path)


# ------------------------------------------------------------------- validation before allocation

#: The charlstm JSON in a header: a vocabulary of every Unicode scalar value takes ~7 M characters.
#: (safetensors itself caps the whole header at 100 MB.)
MAX_METADATA_CHARS = 16 << 20
#: Tensors in one file: a model at config.MAX_NUM_LAYERS, its optimizer moments and more, with room.
MAX_TENSORS = 1 << 16
#: What every model weight is stored as (safetensors' name for torch.float32).
WEIGHT_DTYPE = "F32"


def _safetensors_call(path: Path, action):
    """`action()`; whatever the library or the OS raises there becomes 'not a readable safetensors file'."""
    try:
        return action()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # SafetensorError, OSError, MemoryError, a Rust panic (a BaseException)
        reason = one_line(error, limit=160) or type(error).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


def _metadata(path: Path, header: dict) -> dict:
    """The charlstm JSON of a safetensors header, parsed within caps: an object of our kind and format."""
    text = header.get("charlstm")
    if text is None:
        raise CheckpointError(f"{path}: a safetensors file, but not a charlstm checkpoint (no charlstm metadata)")
    if len(text) > MAX_METADATA_CHARS:
        raise CheckpointError(f"{path}: checkpoint metadata is {len(text):,} characters, over the cap of "
                              f"{MAX_METADATA_CHARS:,}")
    try:
        meta = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON (nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, and integers of more digits than Python converts
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON ({one_line(error, limit=160)})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CheckpointError(f"{path}: not a charlstm checkpoint")
    found = meta.get("format")
    if type(found) is not int or found != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {_shown(found)}, this charlstm reads format {FORMAT}")
    return meta


def _model_config(path: Path, fields: Any) -> ModelConfig:
    """The ModelConfig of the metadata; ModelConfig itself checks types, ranges and caps."""
    if not isinstance(fields, dict):
        raise CheckpointError(f"{path}: invalid model config ({_shown(fields)}, not an object of fields)")
    try:
        return ModelConfig(**fields)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid model config ({one_line(error, limit=160)})") from None


def _vocab(path: Path, chars: Any, config: ModelConfig, unknown: Any = None) -> Vocab:
    """The vocabulary of the metadata: a list of `vocab_size` distinct characters, each a Unicode
    scalar value (a lone surrogate cannot be written out as text), and the one of them rare
    characters were read as, if any."""
    if unknown is not None and not (isinstance(unknown, str) and isinstance(chars, list) and unknown in chars):
        raise CheckpointError(f"{path}: invalid vocabulary (its unknown symbol {_shown(unknown)} is not one of its characters)")
    if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
        raise CheckpointError(f"{path}: invalid vocabulary (not a list of strings)")
    if len(chars) != config.vocab_size:
        raise CheckpointError(f"{path}: vocabulary has {len(chars)} characters but the model expects {config.vocab_size}")
    try:
        "".join(chars).encode("utf-8")
    except UnicodeEncodeError as error:
        raise CheckpointError(f"{path}: invalid vocabulary (U+{ord(error.object[error.start]):04X} is a lone "
                              "surrogate, not a character)") from None
    try:
        return Vocab(chars, unknown)
    except ValueError as error:  # entries that are not single characters, repeated characters
        raise CheckpointError(f"{path}: invalid vocabulary ({one_line(error, limit=160)})") from None


def _expected_tensors(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor of `CharModel(config).state_dict()`, in its order, by arithmetic
    alone: nothing is built or allocated. Per layer k, nn.LSTM / nn.GRU / nn.RNN and
    cells.ExplicitLSTM hold weight_ih_lk (G·H, E or H), weight_hh_lk (G·H, H), bias_ih_lk and
    bias_hh_lk (G·H,), and the peephole cell peephole_lk (3, H). Pinned to real models by tests."""
    V, E, H, G = config.vocab_size, config.embedding_size, config.hidden_size, config.kind.gates
    shapes = {"embed.weight": (V, E)}
    for k in range(config.num_layers):
        shapes.update({f"rnn.weight_ih_l{k}": (G * H, E if k == 0 else H), f"rnn.weight_hh_l{k}": (G * H, H),
                       f"rnn.bias_ih_l{k}": (G * H,), f"rnn.bias_hh_l{k}": (G * H,)})
        if config.kind.peepholes:
            shapes[f"rnn.peephole_l{k}"] = (3, H)
    shapes.update({"head.weight": (V, H), "head.bias": (V,)})
    return shapes


def _check_layout(path: Path, config: ModelConfig, found: dict[str, tuple[tuple[int, ...], str]]) -> dict:
    """Compare the model tensors a header declares (name → (shape, dtype)) with what the config
    needs; the expected name → shape on success."""
    expected = _expected_tensors(config)
    missing = [name for name in expected if name not in found]
    if missing:
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:3]}…)")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        shown = ", ".join(_shown("model." + name) for name in unexpected[:3])
        raise CheckpointError(f"{path}: weights do not match the config (unexpected tensors {shown})")
    for name, shape in expected.items():
        got_shape, got_dtype = found[name]
        if got_shape != shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {_shown(got_shape)}, config needs {shape}")
        if got_dtype != WEIGHT_DTYPE:
            raise CheckpointError(f"{path}: tensor {name} has dtype {_shown(got_dtype)}, charlstm weights are "
                                  f"{WEIGHT_DTYPE} (float32)")
    return expected


def _shown(value: Any) -> str:
    """A value from the file, fit for a message: scalars as repr, containers by their kind."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    return one_line(repr(value), limit=160)


