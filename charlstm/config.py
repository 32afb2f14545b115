"""The settings of each job as frozen dataclasses, and the table of cell kinds. Imports nothing heavy.

Every default is written here once; the command line reads its defaults from these classes, so
`charlstm train --help` can show them without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from .errors import ConfigError


@dataclass(frozen=True)
class CellKind:
    """What the rest of charlstm needs to know about one recurrent cell."""

    name: str
    fused: bool                    # run by PyTorch's nn.LSTM / nn.GRU / nn.RNN; else cells.ExplicitLSTM
    gates: int                     # G: blocks of H rows in each layer's weight matrices
    vectors: tuple[str, ...]       # what a trace records, in the order the step computes them
    cell_state: bool               # carries c next to h
    forget_block: int | None = None  # which of the G blocks is the forget gate
    peepholes: bool = False        # has per-layer peephole weights (3, H)
    blocks: tuple[str, ...] = ()   # what each of the G blocks of a layer's weight rows computes, in order
    hidden_bias_block: int | None = None  # the block whose hidden bias stays inside the recurrent term

    def __post_init__(self) -> None:
        assert len(self.blocks) == self.gates, f"{self.name}: {len(self.blocks)} block names for {self.gates} gates"

    @property
    def lstm_like(self) -> bool:
        return self.cell_state

    @property
    def coupled(self) -> bool:
        """An LSTM-like cell without an input block: its input gate is 1 − forget."""
        return self.cell_state and "input" not in self.blocks


_LSTM = ("input", "forget", "candidate", "output", "cell", "hidden")
_LSTM_BLOCKS = ("input", "forget", "candidate", "output")

#: Every cell `--cell` accepts: the fused three, then the explicit LSTM variants of cells.py.
CELL_KINDS: Mapping[str, CellKind] = MappingProxyType({k.name: k for k in (
    # nn.LSTM packs gates as (i, f, g, o)
    CellKind("lstm", fused=True, gates=4, vectors=_LSTM, cell_state=True, forget_block=1, blocks=_LSTM_BLOCKS),
    # nn.GRU packs (r, z, n); the candidate sees r ⊙ (W_hn h + b_hn), so b_hn stays with the hidden side
    CellKind("gru", fused=True, gates=3, vectors=("reset", "update", "candidate", "hidden"), cell_state=False,
             blocks=("reset", "update", "candidate"), hidden_bias_block=2),
    CellKind("rnn", fused=True, gates=1, vectors=("hidden",), cell_state=False, blocks=("hidden",)),
    # peepholes add, for each gate, what the cell state contributes through its peephole weights
    CellKind("peephole", fused=False, gates=4, cell_state=True, forget_block=1, peepholes=True, blocks=_LSTM_BLOCKS,
             vectors=(*_LSTM, "peep_input", "peep_forget", "peep_output")),
    # coupled input and forget gates: (f, g, o) with input = 1 − forget
    CellKind("coupled", fused=False, gates=3, vectors=_LSTM, cell_state=True, forget_block=0,
             blocks=("forget", "candidate", "output")),
)})
CELLS = tuple(CELL_KINDS)
#: Vectors bounded in 0..1 (gates); the rest are signed.
GATE_VECTORS = frozenset({"input", "forget", "output", "reset", "update"})
#: Every vector name any cell records.
ALL_VECTORS = tuple(dict.fromkeys(v for kind in CELL_KINDS.values() for v in kind.vectors))


#: Caps on a model's size, far above anything charlstm trains: a config (a checkpoint's JSON builds
#: one too) can never ask for an unbounded allocation.
MAX_VOCAB_SIZE = 0x110000 - 0x800      # every Unicode scalar value (code points minus surrogates)
MAX_WIDTH = 1 << 16                    # embedding_size and hidden_size
MAX_NUM_LAYERS = 1024
MAX_PARAMETERS = 2_000_000_000         # 8 GB of float32 weights
#: Seeds every command (and a stored recipe) may hold: what numpy's SeedSequence (no negatives),
#: torch.manual_seed and torch.Generator.manual_seed (64 bits at most) and random.Random all take,
#: and the range of the seeds charlstm draws itself (secrets.randbits(63)).
MAX_SEED = (1 << 63) - 1


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a character model; stored in every checkpoint."""

    vocab_size: int
    cell: str = "lstm"          # lstm | gru | rnn | peephole | coupled
    embedding_size: int = 64    # E: width of a character's learned vector
    hidden_size: int = 256      # H: units per layer
    num_layers: int = 2         # L
    dropout: float = 0.0        # between layers and before the head, training only
    forget_bias: float = 0.0    # LSTM-like cells: initial forget-gate bias (0: PyTorch's own init)

    def __post_init__(self) -> None:
        """Refuse wrong types (TypeError: sizes are ints, not floats, bools or strings; rates are
        numbers) and values out of range or above the caps (ConfigError, a ValueError)."""
        if not isinstance(self.cell, str) or self.cell not in CELL_KINDS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r:.40}")
        caps = {"vocab_size": MAX_VOCAB_SIZE, "embedding_size": MAX_WIDTH, "hidden_size": MAX_WIDTH,
                "num_layers": MAX_NUM_LAYERS}
        for name, value in ((name, getattr(self, name)) for name in caps):
            if type(value) is not int:  # JSON-able exact ints only: no bool, float, str or numpy scalar
                raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
        if min(self.vocab_size, self.embedding_size, self.hidden_size, self.num_layers) < 1:
            raise ConfigError("vocab_size, embedding_size, hidden_size and num_layers must be positive")
        for name, cap in caps.items():
            if getattr(self, name) > cap:
                raise ConfigError(f"{name} {getattr(self, name)} is above the cap of {cap}")
        for name, value in (("dropout", self.dropout), ("forget_bias", self.forget_bias)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be finite, not {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout must be in [0, 1)")
        G, E, H, L, V = self.kind.gates, self.embedding_size, self.hidden_size, self.num_layers, self.vocab_size
        at_most = L * G * H * (max(E, H) + H + 5) + V * (E + H + 1)  # ≥ the parameter count of every cell kind
        if at_most > MAX_PARAMETERS:
            raise ConfigError(f"a model this size may hold up to {at_most:,} parameters, over the cap of "
                             f"{MAX_PARAMETERS:,}: make hidden_size, num_layers or embedding_size smaller")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def kind(self) -> CellKind:
        return CELL_KINDS[self.cell]

    @property
    def vectors(self) -> tuple[str, ...]:
        return self.kind.vectors

    @property
    def has_cell_state(self) -> bool:
        return self.kind.cell_state

    @property
    def explicit(self) -> bool:
        """True when the recurrent layers are cells.ExplicitLSTM rather than a fused PyTorch module."""
        return not self.kind.fused


@dataclass(frozen=True)
class TrainConfig:
    """How to train."""

    batch_size: int = 64              # B parallel streams
    seq_len: int = 100                # T characters per BPTT window
    learning_rate: float = 5e-3       # held after warmup until the decay (benchmarks/README.md: how chosen)
    min_lr_ratio: float = 0.1         # cosine decays to learning_rate * this …
    decay_fraction: float = 0.2       # … over this last fraction of the budget (steps or time)
    warmup_steps: int = 0
    weight_decay: float = 0.01        # AdamW, on matrices only
    grad_clip: float = 5.0            # max global gradient norm
    max_steps: int | None = None      # budget in steps …
    time_budget: float | None = 300.0  # … and/or in wall-clock seconds, evaluation included
    eval_every: int = 200             # steps between validations (and checkpoints) …
    eval_seconds: float | None = 60.0  # … and seconds between them (the first after half); 0/None: steps only
    patience: int | None = None       # stop after this many evaluations without a better validation figure
    eval_chars: int = 250_000         # validation characters scored per evaluation (a prefix)
    val_fraction: float = 0.05
    log_every: int = 10               # steps between metrics.jsonl lines
    preview_chars: int = 200          # sample shown at each evaluation; 0 for none
    seed: int = 1337
    min_char_count: int | None = None  # characters seen fewer times read as one unknown symbol; None: data.rare_threshold

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        if values and "decay_fraction" not in values:  # saved before the field existed: cosine from the start
            values = {**values, "decay_fraction": 1.0}
        return cls(**{k: v for k, v in values.items() if k in known})


UNKNOWN_POLICIES = ("error", "skip", "replace")


@dataclass(frozen=True)
class SampleConfig:
    """How to generate."""

    length: int = 1000                  # characters to generate per sample (the prime not counted)
    temperature: float = 0.8            # 0 = always the most likely character
    top_k: int | None = None            # keep only the k most likely characters
    top_p: float | None = None          # keep the smallest set whose probability reaches p
    num_samples: int = 1                # generated together as one batch
    seed: int | None = None             # same seed, same text
    stop: tuple[str, ...] = field(default_factory=tuple)  # end a sample when one appears (not emitted)
    unknown: str = "error"              # characters the model never saw: error | skip | replace


def config_from(cls, params: Mapping):
    """A config of `cls` from parsed command-line parameters, matched by field name (options are
    named like the fields they set)."""
    return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})
