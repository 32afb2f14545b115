"""charlstm: train a character-level LSTM on your own text, sample from it, look inside its neurons.

The Python API mirrors the command line:

    import charlstm
    model, vocab = charlstm.load("checkpoints/shakespeare")
    print(charlstm.sample(model, vocab, prime="ROMEO:", length=200, seed=1))
    t = charlstm.trace(model, vocab, "To be, or not to be")
    t.values(layer=2, vector="cell", neuron=42)      # (T,) tensor

Names are imported on first use, so `import charlstm` (and `charlstm --help`) does not load torch.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

#: public name → module that defines it
_EXPORTS = {
    "CharModel": "model", "ModelConfig": "config", "SampleConfig": "config", "TrainConfig": "config",
    "CharlstmError": "errors", "CheckpointError": "errors", "CorpusError": "errors", "NeuronError": "errors",
    "PrimeError": "errors", "TrainingError": "errors", "UnknownCharactersError": "errors",
    "Vocab": "data", "read_corpus": "data",
    "Trace": "trace", "trace": "trace", "trace_many": "trace", "train": "train",
    "find_neurons": "analysis", "score_text": "score",
    "generate": "sample", "sample_text": "sample",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'charlstm' has no attribute {name!r}")


def load(target=None, device: str | None = None):
    """A trained model (in eval mode) and its vocabulary, from a checkpoint file or run directory
    (default: the most recent run under ./checkpoints)."""
    from . import checkpoint
    from .model import pick_device

    loaded = checkpoint.load(checkpoint.resolve(target))
    return loaded.model(pick_device(device)), loaded.vocab


def sample(model, vocab, prime: str = "", **options) -> str:
    """One sample as a string (the prime not repeated); options are SampleConfig fields."""
    from .config import SampleConfig
    from .sample import sample_text

    options.setdefault("num_samples", 1)
    return sample_text(model, vocab, prime, SampleConfig(**options))[0]


class _Package(types.ModuleType):
    """Importing the submodules charlstm.sample, .trace and .train must not replace the functions of
    the same names (Python binds a submodule as an attribute of its package): `charlstm.trace` is
    the function; its module is `from charlstm.trace import ...` or sys.modules["charlstm.trace"]."""

    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


_FUNCTIONS = ("load", "sample", "trace", "train")
sys.modules[__name__].__class__ = _Package

__all__ = [*_EXPORTS, *_FUNCTIONS]
