"""The settings of each job as frozen dataclasses, and the table of cell kinds. Imports nothing heavy.

Every default is written here once; the command line reads its defaults from these classes, so
`charlstm train --help` can show them without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
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
    def memory(self) -> tuple[str, ...]:
        """The vector that carries the cell's memory from one character to the next (its cell state,
        else its hidden state): what the atlas maps unless told otherwise."""
        return ("cell",) if self.cell_state else ("hidden",)

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
#: The bytes one command's passes over a text may hold at once on top of the interpreter, the loaded
#: model and the text itself: a model in training with its copies, what a pass keeps per character,
#: one chunk's working memory (memory.py sizes every chunk to it and refuses what cannot fit).
MEMORY_BUDGET = 768 << 20
#: Seeds every command (and a stored recipe) may hold: what numpy's SeedSequence (no negatives),
#: torch.manual_seed and torch.Generator.manual_seed (64 bits at most) and random.Random all take,
#: and the range of the seeds charlstm draws itself (secrets.randbits(63)).
MAX_SEED = (1 << 63) - 1
#: The smallest temperature above 0. Below it sampling already picks the most likely character
#: (float32 logits differ by far more than 1000 · ulp), and 1 / T overflows float32 from about
#: 3e-39: a tinier temperature is refused with a pointer to 0 rather than silently changed.
MIN_TEMPERATURE = 1e-3


#: Caps on the work one setting can ask for, far above any real use: an absurd number is refused
#: before any work starts, by the command line and the Python API alike (each through a Bounds).
MAX_STEPS = 10**12                     # steps of a run, and every count of steps or evaluations in it
MAX_SECONDS = 3650 * 86400.0           # a time budget or a cadence in seconds: ten years
MAX_BATCH = 1 << 20                    # streams per batch (batch_size), characters per window (seq_len)
MAX_CORPUS_CHARS = 10**12              # characters of a corpus a setting counts (eval_chars, min_char_count)
#: The most characters one sample asks for (the Python API holds it as a string), and the most
#: samples one sampling asks for (the command line streams them batch after batch).
MAX_SAMPLE_CHARS = 10**7
MAX_SAMPLES = 10**9
#: The most characters `inspect --length` may ask for, and units or windows `--top` may list: a cap
#: on a number typed. Whether a text's trace fits is weighed against MEMORY_BUDGET (memory.trace).
MAX_TRACE_VALUES = 1 << 29
#: The most characters of text `charlstm inspect --window` shows around a peak.
MAX_WINDOW_CHARS = 1 << 20
#: The most CPU threads a command or the Python API pins.
MAX_THREADS = 1024
#: The largest magnitude --clamp pins a unit to (a hidden state lies in [-1, 1]; a cell state rarely passes a few dozen).
MAX_CLAMP = 1e6
#: The largest float32. A model's arithmetic runs in float32: a temperature, learning rate, weight
#: decay or gradient norm above it is infinite there.
MAX_FLOAT32 = 3.4028234663852886e38
#: The largest length parameter of a probe task (max_n, max_noise, max_gap, length): a line is made
#: whole, so its size is bounded by what a user can mean, not by the number typed.
MAX_PROBE_PARAMETER = 1_000_000
#: The most lines one probe corpus holds.
MAX_PROBE_LINES = 10**9
#: The longest one user's regular expression may run over one text, in seconds: a pattern that
#: backtracks without end (`(e+)+$`) is refused rather than left to run.
MAX_PATTERN_SECONDS = 2.0
#: The most features the atlas proposes from the text itself (counts, detected balances, distances
#: since a delimiter: inspection.proposals), on top of the named ones: each costs one column per character.
ATLAS_PROPOSED_FEATURES = 24
#: The unit-characters the atlas's ablations step in all (inspection.effects): units × the characters
#: each is held at its mean over, so that a model of many units is ablated over stretches of the text.
ATLAS_ABLATION_STEPS = 100_000


#: The models charlstm ships, by the name `train --init-from NAME` takes: name → its folder, relative
#: to the source checkout that holds the package (a wheel carries it at the same place inside the package).
SHIPPED_MODELS: Mapping[str, str] = MappingProxyType({
    "english": "examples/models/english",
    "austen": "examples/models/austen",
    "python-code": "examples/models/python-code",
})


#: Bits per nat: losses are computed and logged in nats, and shown in bits per character (× LOG2E).
LOG2E = 1.0 / math.log(2.0)
#: The largest N of `charlstm score --baseline ngram:N` (the paper's n-grams go up to 20).
MAX_NGRAM_ORDER = 20


class _Accepts:
    """What Bounds and Choices share: a check that raises the error `problem` describes."""

    def problem(self, value) -> tuple[type[Exception], str] | None:
        raise NotImplementedError

    def check(self, name: str, value) -> None:
        """TypeError for a value of the wrong type, ConfigError for one out of range; the message
        starts with the field's name."""
        found = self.problem(value)
        if found is not None:
            error, text = found
            raise error(f"{name} {text}")


@dataclass(frozen=True)
class Bounds(_Accepts):
    """The values one setting accepts: an int or a finite number, in a range, or None when optional.
    Held as field metadata by every config; their __post_init__ checks every field against it (so
    the Python API refuses what the command line refuses), and the command line builds each
    option's type from it (cli/params.field_type), so the two never disagree.

    `cap` marks a `high` that guards memory rather than meaning (a model's sizes): a value above
    it is "above the cap". `floor` refuses the values between 0 and it (a temperature), saying
    `floor_hint`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False
    cap: bool = False
    floor: float | None = None
    floor_hint: str = ""

    def describe(self) -> str:
        """'positive', 'an integer from 0', 'a number in (0, 1]' … (a cap is not described)."""
        what = "an integer" if self.integer else "a number"
        low, high = self._show(self.low), self._show(None if self.cap else self.high)
        positive = (self.integer and self.low == 1 and not self.low_open) or (self.low == 0 and self.low_open)
        if positive and not high:
            return "positive"
        if low and high:
            return f"{what} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if low:
            return f"{what} {'above' if self.low_open else 'from'} {low}"
        if high:
            return f"{what} {'below' if self.high_open else 'up to'} {high}"
        return what

    def _show(self, value) -> str:
        """An integer bound or value exactly (seeds reach 2**63 - 1), a number in its shortest form."""
        if value is None:
            return ""
        return str(int(value)) if self.integer else f"{value:g}"

    def problem(self, value) -> tuple[type[Exception], str] | None:
        """(TypeError, …) for a value of the wrong type (a bool, a string, None where not optional,
        a float for an integer); (ConfigError, …) for NaN, ±inf or a value out of range; None when
        `value` is accepted. The text follows the field's name."""
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return TypeError, f"must be {'an integer' if self.integer else 'a number'}, not {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return ConfigError, f"must be finite, not {value}"
        low, high = self.low, self.high
        if ((low is not None and (value < low or (self.low_open and value == low)))
                or (high is not None and not self.cap and (value > high or (self.high_open and value == high)))):
            return ConfigError, f"must be {self.describe()}, not {self._show(value)}"
        if self.cap and value > high:
            return ConfigError, f"{self._show(value)} is above the cap of {self._show(high)}"
        if self.floor is not None and 0 < value < self.floor:
            return ConfigError, f"{value:g} is below the smallest, {self.floor:g}; {self.floor_hint}"
        return None


@dataclass(frozen=True)
class Choices(_Accepts):
    """The values a setting that names one of a few options accepts (a cell kind, a policy)."""

    options: tuple[str, ...]

    def problem(self, value) -> tuple[type[Exception], str] | None:
        if isinstance(value, str) and value in self.options:
            return None
        return ConfigError, f"must be one of {', '.join(self.options)}, not {value!r:.40}"


def bounded(default=MISSING, low=None, high=None, *, low_open=False, high_open=False, integer=None, optional=None,
            cap=False, floor=None, floor_hint=""):
    """A dataclass field with Bounds; `integer` and `optional` default from the default value."""
    kind = Bounds(low, high, low_open, high_open,
                  integer=isinstance(default, int) if integer is None else integer,
                  optional=default is None if optional is None else optional,
                  cap=cap, floor=floor, floor_hint=floor_hint)
    return field(default=default, metadata={"bounds": kind})


def one_of(default: str, options) -> str:
    """A dataclass field that accepts one of `options` (Choices)."""
    return field(default=default, metadata={"bounds": Choices(tuple(options))})


def same_as(cls, name: str, default=MISSING):
    """A dataclass field that accepts what field `name` of `cls` accepts, with its default unless given."""
    return field(default=getattr(cls, name) if default is MISSING else default,
                 metadata=_field(cls, name).metadata)


def _field(cls, name: str):
    return next(f for f in fields(cls) if f.name == name)


def bounds(cls, name: str) -> Bounds | Choices:
    """What field `name` of a config class accepts."""
    return _field(cls, name).metadata["bounds"]


def check_bounds(config) -> None:
    """Check every field of a config dataclass instance that says what it accepts (Bounds.check)."""
    for f in fields(config):
        if "bounds" in f.metadata:
            f.metadata["bounds"].check(f.name, getattr(config, f.name))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a character model; stored in every checkpoint."""

    vocab_size: int = bounded(low=1, high=MAX_VOCAB_SIZE, cap=True, integer=True)
    cell: str = one_of("lstm", CELLS)
    embedding_size: int = bounded(64, 1, MAX_WIDTH, cap=True)   # E: width of a character's learned vector
    hidden_size: int = bounded(256, 1, MAX_WIDTH, cap=True)     # H: units per layer
    num_layers: int = bounded(2, 1, MAX_NUM_LAYERS, cap=True)   # L
    dropout: float = bounded(0.0, 0, 1, high_open=True)        # between layers and before the head, training only
    # LSTM-like cells: initial forget-gate bias (0: PyTorch's own init)
    forget_bias: float = bounded(0.0, -MAX_FORGET_BIAS, MAX_FORGET_BIAS)

    def __post_init__(self) -> None:
        """Refuse what the command line refuses, each naming the field (Bounds): wrong types
        (TypeError: sizes are ints, not floats, bools or strings; rates are numbers), NaN, ±inf and
        values out of range or above the caps (ConfigError, a ValueError); then a model that may
        hold more than MAX_PARAMETERS parameters."""
        check_bounds(self)
        at_most = self.parameter_bound
        if at_most > MAX_PARAMETERS:
            raise ConfigError(f"a model this size may hold up to {at_most:,} parameters, over the cap of "
                             f"{MAX_PARAMETERS:,}: make hidden_size, num_layers or embedding_size smaller")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def parameter_bound(self) -> int:
        """At least the parameter count of a model of this config, whatever its cell kind."""
        G, E, H, L, V = self.kind.gates, self.embedding_size, self.hidden_size, self.num_layers, self.vocab_size
        return L * G * H * (max(E, H) + H + 5) + V * (E + H + 1)

    @property
    def parameter_count(self) -> int:
        """The parameters of a model of this config: the embedding (V, E); per layer G·H rows of
        input and recurrent weights and two biases (and a peephole cell's (3, H)); the head (V, H + 1)."""
        G, E, H, L, V = self.kind.gates, self.embedding_size, self.hidden_size, self.num_layers, self.vocab_size
        layers = G * H * (E + H + 2) + (L - 1) * G * H * (2 * H + 2) + (3 * H * L if self.kind.peepholes else 0)
        return V * E + layers + V * (H + 1)

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

    batch_size: int = bounded(64, 1, MAX_BATCH, cap=True)   # B parallel streams
    seq_len: int = bounded(100, 1, MAX_BATCH, cap=True)     # T characters per BPTT window …
    short_windows: float = bounded(1 / 3, 0, 1)   # … half of it over this first fraction of the budget (benchmarks/README.md); 0: none
    learning_rate: float = bounded(5e-3, 0, MAX_FLOAT32, low_open=True, cap=True)  # held after warmup until the decay (benchmarks/README.md: how chosen)
    min_lr_ratio: float = bounded(0.1, 0, 1)      # cosine decays to learning_rate * this …
    decay_fraction: float = bounded(0.5, 0, 1)    # … over this last fraction of the budget (steps or time; benchmarks/README.md)
    warmup_steps: int = bounded(0, 0, MAX_STEPS, cap=True)
    weight_decay: float = bounded(0.01, 0, MAX_FLOAT32, cap=True)  # AdamW, on matrices only
    grad_clip: float = bounded(5.0, 0, MAX_FLOAT32, low_open=True, cap=True)  # max global gradient norm
    ema_decay: float = bounded(0.995, 0, 1, high_open=True)  # the moving average of the weights that is evaluated and saved (model/average.py); 0: none
    max_steps: int | None = bounded(None, 1, MAX_STEPS, integer=True, cap=True)  # budget in steps …
    time_budget: float | None = bounded(300.0, 0, MAX_SECONDS, optional=True, cap=True)  # … and/or in wall-clock seconds, evaluation included
    eval_every: int = bounded(200, 1, MAX_STEPS, cap=True)  # steps between validations (and checkpoints) …
    eval_seconds: float | None = bounded(60.0, 0, MAX_SECONDS, optional=True, cap=True)  # … and seconds between them (the first after half); 0/None: steps only
    patience: int | None = bounded(None, 1, MAX_STEPS, integer=True, cap=True)  # stop after this many evaluations without a better validation figure
    eval_chars: int = bounded(250_000, 1, MAX_CORPUS_CHARS, cap=True)  # validation characters scored per evaluation (a prefix)
    val_fraction: float = bounded(0.05, 0, 0.5)
    log_every: int = bounded(10, 1, MAX_STEPS, cap=True)  # steps between metrics.jsonl lines
    preview_chars: int = bounded(200, 0, MAX_SAMPLE_CHARS, cap=True)  # sample shown at each evaluation; 0 for none
    seed: int = bounded(1337, 0, MAX_SEED)
    min_char_count: int | None = bounded(None, 1, MAX_CORPUS_CHARS, integer=True, cap=True)  # characters seen fewer times read as one unknown symbol; None: data.vocab.rare_threshold

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


#: The recipe of a run started from a trained model (`train --init-from`) where the user typed
#: nothing: TrainConfig field → value. It reads already, so it takes no short windows, and twice the
#: peak rate of training from scratch for a base up to FINE_TUNING_WIDTH units wide; a wider base's
#: rate is training/fit.scaled_rate(that, FINE_TUNING_WIDTH, its hidden size). How both were chosen:
#: benchmarks/README.md, "Starting from a model that already reads".
FINE_TUNING: Mapping[str, object] = MappingProxyType({
    "learning_rate": 2 * TrainConfig.learning_rate,
    "short_windows": 0.0,
})
FINE_TUNING_WIDTH = 128


UNKNOWN_POLICIES = ("error", "skip", "replace")


@dataclass(frozen=True)
class SampleConfig:
    """How to generate."""

    length: int = bounded(1000, 0, MAX_SAMPLE_CHARS, cap=True)  # characters to generate per sample (the prime not counted)
    temperature: float = bounded(0.8, 0, MAX_FLOAT32, cap=True, floor=MIN_TEMPERATURE,  # 0 = always the most likely character
                                 floor_hint="give 0 to pick the most likely character every time")
    top_k: int | None = bounded(None, 1, MAX_VOCAB_SIZE, integer=True, cap=True)  # keep only the k most likely characters
    top_p: float | None = bounded(None, 0, 1, low_open=True)  # keep the smallest set whose probability reaches p
    num_samples: int = bounded(1, 1, MAX_SAMPLES, cap=True)  # generated together as one batch
    seed: int | None = bounded(None, 0, MAX_SEED, integer=True)  # same seed, same text
    stop: tuple[str, ...] = field(default_factory=tuple)  # end a sample when one appears (not emitted)
    unknown: str = one_of("error", UNKNOWN_POLICIES)  # characters the model never saw

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (see TrainConfig.__post_init__), a temperature
        between 0 and MIN_TEMPERATURE and an unknown policy that is not one of UNKNOWN_POLICIES
        among them; stops that are not a sequence of strings (a list is kept as a tuple; empty
        strings stop nothing) are ConfigErrors too."""
        check_bounds(self)
        if isinstance(self.stop, str) or not isinstance(self.stop, (tuple, list)) or not all(
                isinstance(s, str) for s in self.stop):
            raise ConfigError("stop must be a tuple or list of strings, e.g. stop=('\\n',)")
        object.__setattr__(self, "stop", tuple(self.stop))


#: The most characters the co-writer's text holds, prime, typing and pastes together: a prime or a
#: paste that would take it beyond is refused whole, in one line.
MAX_WRITE_CHARS = 1 << 22


@dataclass(frozen=True)
class WriteConfig:
    """How `charlstm write` suggests."""

    temperature: float = same_as(SampleConfig, "temperature")  # continuations are sampled at it (0 = most likely)
    length: int = bounded(40, 1, 1000)            # characters per continuation
    num_samples: int = bounded(4, 1, 9)           # continuations shown
    top: int = bounded(9, 1, 9)                   # next characters shown (taken with Alt+1 … Alt+9)
    seed: int | None = same_as(SampleConfig, "seed")      # same seed and keys, same suggestions
    unknown: str = same_as(SampleConfig, "unknown")       # typed or primed characters the model never saw

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (see TrainConfig.__post_init__)."""
        check_bounds(self)


@dataclass(frozen=True)
class InspectConfig:
    """What `charlstm inspect` reads when no text is given, and how much its views show."""

    length: int | None = bounded(None, 1, MAX_TRACE_VALUES, integer=True, cap=True)  # characters read (None: each view's own)
    seed: int = bounded(0, 0, MAX_SEED)           # of a fresh sample
    top: int | None = bounded(None, 1, MAX_TRACE_VALUES, integer=True, cap=True)  # units --find lists, windows --top shows
    window: int = bounded(60, 8, MAX_WINDOW_CHARS, cap=True)  # characters of text around each window --find and --top show

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (see TrainConfig.__post_init__)."""
        check_bounds(self)


@dataclass(frozen=True)
class ReportConfig:
    """The fresh sample `charlstm report` checks against each run's corpus for memorisation."""

    novelty_length: int = bounded(2000, 0, MAX_SAMPLE_CHARS, cap=True)  # its characters; 0: no check
    seed: int = bounded(0, 0, MAX_SEED)

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (see TrainConfig.__post_init__)."""
        check_bounds(self)


#: The largest figure in bits per character a chart draws: a blind guess among every Unicode
#: character costs log2(MAX_VOCAB_SIZE), about 20.1 bits; a figure fifty times that says only that
#: training went wrong.
MAX_BPC = 1000.0
#: The most characters per second a run's log can mean.
MAX_CHARS_PER_S = 1e12
#: What each figure of a run's log (metrics.jsonl) that a chart draws can hold. A value outside it
#: (negative, past a cap, not a number) is from a torn, edited or foreign log, or a run gone wrong:
#: the report leaves it out of its charts and says how many it left out.
LOG_FIGURES: Mapping[str, Bounds] = MappingProxyType({
    "step": Bounds(0, MAX_STEPS, integer=True),
    "elapsed_s": Bounds(0, MAX_SECONDS),
    "train_loss": Bounds(0, MAX_BPC / LOG2E),     # nats
    "val_bpc": Bounds(0, MAX_BPC),
    "chars_per_s": Bounds(0, MAX_CHARS_PER_S),
})
#: The number of threads a caller pins (None: chosen by timing).
THREAD_COUNT = Bounds(1, MAX_THREADS, integer=True, optional=True)


def config_from(cls, params: Mapping):
    """A config of `cls` from parsed command-line parameters, matched by field name (options are
    named like the fields they set)."""
    return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})


def format_duration(seconds: float) -> str:
    """A span of seconds as a person reads it, in the units `--time` takes (cli/params.parse_duration
    reads them): 90 → '1m30s', 7200 → '2h', 12.25 → '12.2s'. The one wording of a duration, for
    training's messages, the Done line and the report."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
