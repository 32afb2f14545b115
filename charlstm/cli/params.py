"""Click parameter parsing shared by the commands: the options that set a config field, with types
built from what the field accepts (field_option); finite numbers, seeds, threads, encodings,
devices, durations, escapes, layer / vector / neuron lists (parsed by `inspection.selection`), unit
edits.

Torch-free: these run while the command line is parsed.
"""

from __future__ import annotations

import math
import re

import click

from ..config import (
    MAX_CLAMP,
    MAX_NGRAM_ORDER,
    MAX_SEED,
    MAX_THREADS,
    Bounds,
    Choices,
    bounds,
    format_duration,
)
from ..errors import CharlstmError, CorpusError, NeuronError
from ..inspection import selection

#: The seeds every --seed takes, as help texts and messages say it.
SEEDS = f"0 to 2**{MAX_SEED.bit_length()} - 1"


#: The highest top of a range that --help shows; a higher one is a cap far above any use (10**12
#: steps, the largest float32), which the refusal of a value past it names instead.
SHOWN_TOP = 100_000


class _Capped:
    """What Number and Integer share: Click's range in --help without a top past SHOWN_TOP, and a
    value past such a top refused as above the cap."""

    def _describe_range(self) -> str:
        if self.max is None or self.max <= SHOWN_TOP:
            return super()._describe_range()
        if self.min is None:
            return "any"
        return f"x{'>' if self.min_open else '>='}{self.min}"

    def _check_cap(self, number, param, ctx) -> None:
        if self.max is not None and self.max > SHOWN_TOP and number > self.max:
            top = f"{self.max:,}" if isinstance(self.max, int) else f"{self.max:g}"
            self.fail(f"{number:g} is above the cap of {top}" if isinstance(number, float) else
                      f"{number} is above the cap of {top}", param, ctx)


class Number(_Capped, click.FloatRange):
    """A finite float, optionally in a range: the type of every float option of every command.

    NaN passes every comparison and so every `click.FloatRange`; this refuses NaN and ±inf first,
    then the range, and names the range in the message (`'nan' is not a finite number (0<=x<1)`).
    With a `floor` (a temperature's), the values between 0 and it are refused too, saying `floor_hint`."""

    name = "number"

    def __init__(self, *args, floor: float | None = None, floor_hint: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.floor, self.floor_hint = floor, floor_hint

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number{self._range_note()}", param, ctx)
        self._check_cap(number, param, ctx)
        number = super().convert(number, param, ctx)
        if self.floor is not None and 0 < number < self.floor:
            self.fail(f"{number:g} is below the smallest {param.name if param else 'value'}, {self.floor:g}; "
                      f"{self.floor_hint}", param, ctx)
        return number

    def _range_note(self) -> str:
        return "" if self.min is None and self.max is None else f" (give {self._describe_range()})"

    def get_metavar(self, param, ctx=None) -> str:
        return "FLOAT"


class Integer(_Capped, click.IntRange):
    """An integer in a range, shown in --help as INTEGER with its range after the description."""

    def convert(self, value, param, ctx):
        number = click.INT.convert(value, param, ctx)
        self._check_cap(number, param, ctx)
        return super().convert(number, param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "INTEGER"


def field_type(cls, name: str) -> click.ParamType:
    """The option type of config field `name` of `cls`, built from what the field accepts
    (config.Bounds or Choices), so an option accepts exactly what the config accepts: a Choice, a
    Seed for the seed range, an Integer for other integers, a Number otherwise."""
    accepts = bounds(cls, name)
    if isinstance(accepts, Choices):
        return click.Choice(accepts.options)
    assert isinstance(accepts, Bounds), (cls, name)
    low, high, open_ = accepts.low, accepts.high, {"min_open": accepts.low_open, "max_open": accepts.high_open}
    if accepts.integer and (low, high) == (0, MAX_SEED):
        return Seed()
    if accepts.integer:
        return Integer(low, high, **open_)
    return Number(low, high, **open_, floor=accepts.floor, floor_hint=accepts.floor_hint)


def field_option(cls, name: str, *aliases: str, help: str, **kwargs):
    """The option that sets config field `name` of `cls`: named like it (`--hidden-size` for
    hidden_size, with `aliases`), its type built from the field (field_type), its default the
    field's, shown in --help, unless `default` is given."""
    kwargs.setdefault("default", getattr(cls, name))
    kwargs.setdefault("show_default", True)
    return click.option("--" + name.replace("_", "-"), *aliases, name, type=field_type(cls, name), help=help, **kwargs)


class Seed(click.IntRange):
    """An integer seed in 0 … MAX_SEED, the range every random generator charlstm seeds accepts."""

    name = "seed"

    def __init__(self) -> None:
        super().__init__(0, MAX_SEED)

    def convert(self, value, param, ctx):
        try:
            seed = int(value) if not isinstance(value, str) else int(value.strip(), 10)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not an integer", param, ctx)
        if not 0 <= seed <= MAX_SEED:
            self.fail(f"{value} is not a seed: give an integer from {SEEDS} ({MAX_SEED})", param, ctx)
        return seed

    def get_metavar(self, param, ctx=None) -> str:
        return "INTEGER"

    def _describe_range(self) -> str:  # what --help shows after the default
        return SEEDS


class Threads(click.ParamType):
    """`auto` (None: chosen by timing, runtime.ThreadTuner) or a thread count from 1."""

    name = "threads"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        try:
            count = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a thread count: give auto or a whole number from 1", param, ctx)
        if not 1 <= count <= MAX_THREADS:
            self.fail(f"{value} is not a thread count: give auto or a whole number from 1 to {MAX_THREADS}", param, ctx)
        return count

    def get_metavar(self, param, ctx=None) -> str:
        return "auto|N"


def threads_option(command):
    """--threads for the commands that run a model: auto times the model's forward under every core
    and one thread and keeps the faster (runtime.choose_threads); N pins it."""
    return click.option("--threads", type=Threads(), default="auto", show_default=True,
                        help="CPU threads: auto times every core against one on a short text first; N pins "
                             "it.")(command)


class NgramBaseline(click.ParamType):
    """`ngram:N` → N, the order of the n-gram baseline of `charlstm score` (1 … MAX_NGRAM_ORDER)."""

    name = "baseline"
    MAX_ORDER = MAX_NGRAM_ORDER

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*ngram\s*:\s*(\d+)\s*", str(value), flags=re.IGNORECASE)
        if not match:
            self.fail(f"{value!r} is not a baseline: give ngram:N with N from 1 to {self.MAX_ORDER}, e.g. ngram:5",
                      param, ctx)
        order = int(match.group(1))
        if not 1 <= order <= self.MAX_ORDER:
            self.fail(f"{value!r}: the n-gram order must be from 1 to {self.MAX_ORDER}", param, ctx)
        return order

    def get_metavar(self, param, ctx=None) -> str:
        return "ngram:N"


class Encoding(click.ParamType):
    """A text encoding Python knows (utf-8, latin-1, utf-16 …), as its name typed; bytes-to-bytes
    codecs (base64, rot13, hex, zlib …) are refused. The check is `data.check_encoding`."""

    name = "encoding"

    def convert(self, value, param, ctx):
        from ..data.reading import check_encoding  # numpy: only when the option is used

        try:
            check_encoding(value)
        except CorpusError as error:
            self.fail(str(error), param, ctx)
        return value


#: The help of every --device.
DEVICE_HELP = "cpu, cuda, cuda:1, mps … [default: cuda if present, else cpu]"


def device_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A Click callback for --device: `runtime.pick_device` checks the name (known to PyTorch, one
    charlstm can run on, present on this machine) while the command line is parsed, so a bad device
    is a usage error before any corpus is read or model loaded. Loads torch only when given."""
    if value is None:
        return None
    from ..runtime import pick_device

    try:
        pick_device(value)
    except CharlstmError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def parse_duration(value: str | None) -> float | None:
    """'90' or '90s' → 90; '5m' → 300; '1h30m' → 5400."""
    if value is None:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", text).strip():
        raise click.BadParameter(f"{value!r} is not a duration like 90s, 5m or 1h30m", param_hint="--time")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)


class Duration(click.ParamType):
    """A span of time as --time takes it (90, 90s, 5m, 1h30m; `parse_duration`) in seconds, in
    the range of config field `name` of `cls`."""

    name = "duration"

    def __init__(self, cls, name: str) -> None:
        self.accepts = bounds(cls, name)

    def convert(self, value, param, ctx):
        seconds = value if isinstance(value, float) else parse_duration(str(value))
        if self.accepts.problem(seconds) is not None:  # a duration is never negative: it is too long
            self.fail(f"{value!r} is longer than the cap of {format_duration(self.accepts.high)}", param, ctx)
        return seconds

    def get_metavar(self, param, ctx=None) -> str:
        return "TIME"


def unescape(text: str) -> str:
    """Let `--stop '\\n'` mean a line break, as users type it in a shell."""
    return re.sub(r"\\([nrt\\])", lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m.group(1)], text)


def unescape_all(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A Click callback: `unescape` every value of a repeatable option."""
    return tuple(unescape(v) for v in value)


def number_list(what: str):
    """A Click callback: the option's '42', '3,42,100', '0-15' or 'all' as a selection.NumberSpec
    (None when not given), a bad spec shown as a usage error of the option."""
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        return None if value is None else _as_usage_error(param, selection.parse_numbers, value, what)

    return parse


def vector_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """A Click callback: 'cell,hidden' or 'all' as names (None when not given), checked later
    against the model by selection.pick_vectors."""
    return None if value is None else _as_usage_error(param, selection.parse_vectors, value)


def _as_usage_error(param: click.Parameter, parse, *args):
    try:
        return parse(*args)
    except NeuronError as error:
        raise click.BadParameter(str(error), param_hint=param.opts[0]) from None


def edit_vector(config) -> str:
    """What --clamp and --ablate pin: the cell state of an LSTM-like cell, else the hidden state."""
    return "cell" if config.has_cell_state else "hidden"


def parse_edits(clamps: tuple[str, ...], ablations: tuple[str, ...], config) -> dict[tuple[int, int], float]:
    """`--clamp 1:42=0.9` and `--ablate 2:7` as Stepper edits: 0-based (layer, unit) → value."""
    edits: dict[tuple[int, int], float] = {}
    for option, specs in (("--clamp", clamps), ("--ablate", ablations)):
        for spec in specs:
            pattern = r"\s*(\d+)\s*:\s*(\d+)\s*=\s*(\S+)\s*" if option == "--clamp" else r"\s*(\d+)\s*:\s*(\d+)\s*"
            match = re.fullmatch(pattern, spec)
            usage = "LAYER:NEURON=VALUE, e.g. 1:42=0.9" if option == "--clamp" else "LAYER:NEURON, e.g. 2:7"
            if not match:
                raise click.BadParameter(f"{spec!r}: give {usage}", param_hint=option)
            layer, unit = int(match.group(1)), int(match.group(2))
            try:
                value = float(match.group(3)) if option == "--clamp" else 0.0
            except ValueError:
                raise click.BadParameter(f"{spec!r}: {match.group(3)!r} is not a number", param_hint=option) from None
            if not abs(value) <= MAX_CLAMP:  # NaN fails this too
                raise click.BadParameter(f"{spec!r}: the value must be a finite number within ±{MAX_CLAMP:g}",
                                         param_hint=option)
            selection.check_neuron(config, layer, edit_vector(config), unit)
            if (layer - 1, unit) in edits:
                raise click.BadParameter(f"unit {layer}:{unit} is pinned twice; give it once", param_hint=option)
            edits[(layer - 1, unit)] = value
    return edits
