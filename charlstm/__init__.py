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

__version__ = "0.1.0"

#: public name → module that defines it
_EXPORTS = {
    "CharModel": "model.network", "ModelConfig": "config", "SampleConfig": "config", "TrainConfig": "config",
    "CharlstmError": "errors", "CheckpointError": "errors", "CorpusError": "errors", "NeuronError": "errors",
    "PrimeError": "errors", "TrainingError": "errors", "UnknownCharactersError": "errors",
    "Vocab": "data.vocab", "read_corpus": "data.reading",
    "Trace": "inspection.tracing", "trace": "inspection.tracing", "trace_many": "inspection.tracing",
    "train": "training.loop", "find_neurons": "inspection.analysis", "score_text": "scoring.bits",
    "generate": "generation.sampling", "sample_text": "generation.sampling",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'charlstm' has no attribute {name!r}")


def load(target=None, device: str | None = None, threads: int | None = None):
    """A trained model (in eval mode) and its vocabulary, from a checkpoint file or run directory
    (default: the most recent run under ./checkpoints), on `device` (default: CUDA if present, else
    the CPU) with `threads` CPU threads (default: chosen by timing, as the commands do)."""
    from .runtime import load_model

    loaded, model, _ = load_model(target, device, threads)
    return model, loaded.vocab


def sample(model, vocab, prime: str = "", **options) -> str:
    """One sample as a string (the prime not repeated); options are SampleConfig fields."""
    from .config import SampleConfig
    from .generation.sampling import sample_text

    options.setdefault("num_samples", 1)
    return sample_text(model, vocab, prime, SampleConfig(**options))[0]


__all__ = [*_EXPORTS, "load", "sample"]
