"""charlstm: train a character-level LSTM on your own text, sample from it, look inside its neurons.

The Python API mirrors the command line:

    import charlstm
    model, vocab = charlstm.load("checkpoints/shakespeare")
    print(charlstm.sample(model, vocab, prime="ROMEO:", length=200, seed=1))
    t = charlstm.trace(model, vocab, "To be, or not to be")
    t.values(layer=2, vector="cell", neuron=42)      # (T,) tensor
"""

from __future__ import annotations

from .checkpoint import CheckpointError
from .data import CorpusError, Vocab, read_corpus
from .model import CharModel, ModelConfig
from .neurons import NeuronError, Trace, find_neurons, score_text, trace, trace_many
from .sample import PrimeError, SampleConfig, generate, sample_text
from .train import TrainConfig, TrainingError, train

__version__ = "0.1.0"


def load(target=None, device: str | None = None) -> tuple[CharModel, Vocab]:
    """A trained model (in eval mode) and its vocabulary, from a checkpoint file or run directory
    (default: the most recent run under ./checkpoints)."""
    from . import checkpoint
    from .train import pick_device

    loaded = checkpoint.load(checkpoint.resolve(target))
    return loaded.model(pick_device(device)), loaded.vocab


def sample(model: CharModel, vocab: Vocab, prime: str = "", **options) -> str:
    """One sample as a string (the prime not repeated); options are SampleConfig fields."""
    options.setdefault("num_samples", 1)
    return sample_text(model, vocab, prime, SampleConfig(**options))[0]


__all__ = [
    "CharModel", "CheckpointError", "CorpusError", "ModelConfig", "NeuronError", "PrimeError", "SampleConfig",
    "TrainConfig", "Trace", "TrainingError", "Vocab", "generate", "load", "read_corpus", "sample", "sample_text",
    "find_neurons", "score_text", "trace", "trace_many", "train",
]
