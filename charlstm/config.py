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


#: Caps on a model's size, far above anything charlstm trains: a config (a checkpoint's JSON builds
#: one too) can never ask for an unbounded allocation.
MAX_VOCAB_SIZE = 0x110000 - 0x800      # every Unicode scalar value (code points minus surrogates)
MAX_WIDTH = 1 << 16                    # embedding_size and hidden_size
MAX_NUM_LAYERS = 1024
#: The largest initial forget-gate bias a model may ask for (a sigmoid is 1 to float precision long before).
MAX_FORGET_BIAS = 1000.0
MAX_PARAMETERS = 2_000_000_000         # 8 GB of float32 weights
#: Seeds every command (and a stored recipe) may hold: what numpy's SeedSequence (no negatives),
#: torch.manual_seed and torch.Generator.manual_seed (64 bits at most) and random.Random all take,
#: and the range of the seeds charlstm draws itself (secrets.randbits(63)).
MAX_SEED = (1 << 63) - 1
#: The smallest temperature above 0. Below it sampling already picks the most likely character
#: (float32 logits differ by far more than 1000 · ulp), and 1 / T overflows float32 from about
#: 3e-39: a tinier temperature is refused with a pointer to 0 rather than silently changed.
MIN_TEMPERATURE = 1e-3


@dataclass(frozen=True)
class Bounds:
    """The values one setting accepts: an int or a finite number, in a range, or None when optional.
    Held as field metadata by TrainConfig and SampleConfig; their __post_init__ checks every field
    against it (so the Python API refuses what the command line refuses), and the command line
    builds each option's type from it (cli/params.bounded), so the two never disagree."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False

    def describe(self) -> str:
        """'an integer from 1', 'a number in (0, 1]' …"""
        what = "an integer" if self.integer else "a number"
        low, high = self._show(self.low), self._show(self.high)
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'above' if self.low_open else 'from'} {low}"
        if self.high is not None:
            return f"{what} {'below' if self.high_open else 'up to'} {high}"
        return "a finite number" if not self.integer else what

    def _show(self, value) -> str:
        """An integer bound or value exactly (seeds reach 2**63 - 1), a number in its shortest form."""
        if value is None:
            return ""
        return str(int(value)) if self.integer else f"{value:g}"

    def check(self, name: str, value) -> None:
        """TypeError for a value of the wrong type (a bool, a string, a float for an integer);
        ConfigError for NaN, ±inf or a value out of range. The message names the field."""
        if value is None:
            if self.optional:
                return
            raise TypeError(f"{name} must be {self.describe()}, not None")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.integer and not isinstance(value, int)):
            raise TypeError(f"{name} must be {self.describe()}, not {type(value).__name__}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, not {value}")
        low, high = self.low, self.high
        if ((low is not None and (value < low or (self.low_open and value == low)))
                or (high is not None and (value > high or (self.high_open and value == high)))):
            raise ConfigError(f"{name} must be {self.describe()}, not {self._show(value)}")


def bounded(default, low=None, high=None, *, low_open=False, high_open=False, integer=None, optional=None):
    """A dataclass field with Bounds; `integer` and `optional` default from the default value."""
    kind = Bounds(low, high, low_open, high_open,
                  integer=isinstance(default, int) if integer is None else integer,
                  optional=default is None if optional is None else optional)
    return field(default=default, metadata={"bounds": kind})


def bounds(cls, name: str) -> Bounds:
    """The Bounds of field `name` of a config class."""
    return next(f for f in fields(cls) if f.name == name).metadata["bounds"]


def check_bounds(config) -> None:
    """Check every bounded field of a config dataclass instance (see Bounds.check)."""
    for f in fields(config):
        if "bounds" in f.metadata:
            f.metadata["bounds"].check(f.name, getattr(config, f.name))


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
        if abs(self.forget_bias) > MAX_FORGET_BIAS:
            raise ConfigError(f"forget_bias {self.forget_bias:g} is outside ±{MAX_FORGET_BIAS:g}")
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

    batch_size: int = bounded(64, 1)              # B parallel streams
    seq_len: int = bounded(100, 1)                # T characters per BPTT window …
    short_windows: float = bounded(1 / 3, 0, 1)   # … half of it over this first fraction of the budget (benchmarks/README.md); 0: none
    learning_rate: float = bounded(5e-3, 0, low_open=True)  # held after warmup until the decay (benchmarks/README.md: how chosen)
    min_lr_ratio: float = bounded(0.1, 0, 1)      # cosine decays to learning_rate * this …
    decay_fraction: float = bounded(0.5, 0, 1)    # … over this last fraction of the budget (steps or time; benchmarks/README.md)
    warmup_steps: int = bounded(0, 0)
    weight_decay: float = bounded(0.01, 0)        # AdamW, on matrices only
    grad_clip: float = bounded(5.0, 0, low_open=True)  # max global gradient norm
    ema_decay: float = bounded(0.995, 0, 1, high_open=True)  # the moving average of the weights that is evaluated and saved (average.py); 0: none
    max_steps: int | None = bounded(None, 1, integer=True)        # budget in steps …
    time_budget: float | None = bounded(300.0, 0, optional=True)  # … and/or in wall-clock seconds, evaluation included
    eval_every: int = bounded(200, 1)             # steps between validations (and checkpoints) …
    eval_seconds: float | None = bounded(60.0, 0, optional=True)  # … and seconds between them (the first after half); 0/None: steps only
    patience: int | None = bounded(None, 1, integer=True)  # stop after this many evaluations without a better validation figure
    eval_chars: int = bounded(250_000, 1)         # validation characters scored per evaluation (a prefix)
    val_fraction: float = bounded(0.05, 0, 0.5)
    log_every: int = bounded(10, 1)               # steps between metrics.jsonl lines
    preview_chars: int = bounded(200, 0)          # sample shown at each evaluation; 0 for none
    seed: int = bounded(1337, 0, MAX_SEED)
    min_char_count: int | None = bounded(None, 1, integer=True)  # characters seen fewer times read as one unknown symbol; None: data.rare_threshold

    def __post_init__(self) -> None:
        """Refuse what the command line refuses: wrong types (TypeError), NaN, ±inf and values out
        of range (ConfigError), each naming the field (Bounds)."""
        check_bounds(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        if values and "decay_fraction" not in values:  # saved before the field existed: cosine from the start
            values = {**values, "decay_fraction": 1.0}
        if values and "ema_decay" not in values:  # saved before the field existed: no average
            values = {**values, "ema_decay": 0.0}
        if values and "short_windows" not in values:  # saved before the field existed: whole windows
            values = {**values, "short_windows": 0.0}
        return cls(**{k: v for k, v in values.items() if k in known})


UNKNOWN_POLICIES = ("error", "skip", "replace")


@dataclass(frozen=True)
class SampleConfig:
    """How to generate."""

    length: int = bounded(1000, 0)                # characters to generate per sample (the prime not counted)
    temperature: float = bounded(0.8, 0)          # 0 = always the most likely character
    top_k: int | None = bounded(None, 1, integer=True)  # keep only the k most likely characters
    top_p: float | None = bounded(None, 0, 1, low_open=True)  # keep the smallest set whose probability reaches p
    num_samples: int = bounded(1, 1)              # generated together as one batch
    seed: int | None = bounded(None, 0, MAX_SEED, integer=True)  # same seed, same text
    stop: tuple[str, ...] = field(default_factory=tuple)  # end a sample when one appears (not emitted)
    unknown: str = "error"              # characters the model never saw: error | skip | replace

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (see TrainConfig.__post_init__); a temperature
        between 0 and MIN_TEMPERATURE, stops that are not a sequence of strings (a list is kept as a
        tuple; empty strings stop nothing), and an unknown policy that is not one of UNKNOWN_POLICIES
        are ConfigErrors too."""
        check_bounds(self)
        if 0 < self.temperature < MIN_TEMPERATURE:
            raise ConfigError(f"temperature {self.temperature:g} is below the smallest, {MIN_TEMPERATURE:g}; give 0 "
                              "to pick the most likely character every time")
        if isinstance(self.stop, str) or not isinstance(self.stop, (tuple, list)) or not all(
                isinstance(s, str) for s in self.stop):
            raise ConfigError("stop must be a tuple or list of strings, e.g. stop=('\\n',)")
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, not {self.unknown!r:.40}")


def config_from(cls, params: Mapping):
    """A config of `cls` from parsed command-line parameters, matched by field name (options are
    named like the fields they set)."""
    return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})
