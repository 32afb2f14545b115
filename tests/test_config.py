"""config.py: the configs say once what each setting accepts (config.Bounds, config.Choices): the Python
API refuses what the command line refuses, naming the field, and every option built from a field
accepts exactly what the field accepts. (A checkpoint's training metadata held to the same bounds:
tests/runs/test_runinfo.py.)"""

from __future__ import annotations

import math

import click
import pytest

from charlstm.cli import main
from charlstm.cli.params import Number, Seed
from charlstm.config import (
    MAX_FLOAT32,
    MAX_NUM_LAYERS,
    MAX_SAMPLE_CHARS,
    MAX_SAMPLES,
    MAX_SECONDS,
    MAX_SEED,
    MAX_STEPS,
    MAX_THREADS,
    MAX_VOCAB_SIZE,
    MAX_WIDTH,
    MIN_TEMPERATURE,
    Bounds,
    Choices,
    InspectConfig,
    ModelConfig,
    ReportConfig,
    SampleConfig,
    TrainConfig,
    WriteConfig,
    bounds,
    format_duration,
)
from charlstm.errors import CharlstmError, ConfigError, NeuronError
from conftest import refused, run_cli

#: The configs each command builds from its options (inspect and score take the sampling's --unknown).
CONFIGS = {"train": (TrainConfig, ModelConfig), "sample": (SampleConfig,), "write": (WriteConfig,),
           "inspect": (InspectConfig, SampleConfig), "score": (SampleConfig,), "report": (ReportConfig,)}
#: Options named like a field that are not built from it: --time, a duration (never negative) whose
#: type holds TrainConfig's bounds (tests/cli/test_bounds.py).
NOT_FIELDS = {("train", "time_budget")}


def _field_options():
    """(option, config class, field) for every option named like a field of its command's configs
    (the first of them that has it: inspect's --length is its own, not the sampling's)."""
    for name, classes in CONFIGS.items():
        for param in main.get_command(None, name).params:
            for cls in classes:
                if isinstance(param, click.Option) and param.name in cls.__dataclass_fields__ and \
                        "bounds" in cls.__dataclass_fields__[param.name].metadata and (name, param.name) not in NOT_FIELDS:
                    yield pytest.param(param, cls, param.name, id=f"{name}--{param.name}")
                    break


def _candidates(accepts: Bounds) -> list:
    """Values at, inside and just outside the edges of `accepts`, of its kind."""
    edges = [e for e in (accepts.low, accepts.high, accepts.floor) if e is not None] + [0, 1]
    if accepts.integer:
        return sorted({int(e) + d for e in edges for d in (-1, 0, 1)} | {MAX_SEED + 1})
    return sorted({e * f + d for e in edges for f in (1, 1 + 1e-9, 1 - 1e-9) for d in (0, 1e-9, -1e-9)}
                  | {-1.0, 0.5, 1e9, math.nan, math.inf})


@pytest.mark.parametrize("param, cls, name", list(_field_options()))
def test_each_option_accepts_exactly_what_its_field_accepts(param, cls, name):
    accepts = bounds(cls, name)
    ctx = click.Context(click.Command("x"))
    if isinstance(accepts, Choices):
        assert isinstance(param.type, click.Choice) and tuple(param.type.choices) == accepts.options
        return
    assert isinstance(param.type, Seed if (accepts.low, accepts.high) == (0, MAX_SEED) else
                      click.IntRange if accepts.integer else Number)
    for value in _candidates(accepts):
        try:
            param.type.convert(repr(value) if isinstance(value, float) else str(value), param, ctx)
            cli_accepts = True
        except click.BadParameter:
            cli_accepts = False
        assert cli_accepts == (accepts.problem(value) is None), (name, value, accepts.problem(value))


def test_every_model_option_of_train_is_built_from_model_config():
    train = {p.name: p for p in main.get_command(None, "train").params}
    for name in ("cell", "hidden_size", "num_layers", "embedding_size", "dropout", "forget_bias"):
        assert name in train, name
    assert train["hidden_size"].type.max == MAX_WIDTH == bounds(ModelConfig, "hidden_size").high


@pytest.mark.parametrize("values, error, message", [
    ({"length": 0}, ConfigError, "length must be an integer in [1, 1000], not 0"),
    ({"length": 1001}, ConfigError, "length must be"),
    ({"num_samples": 10}, ConfigError, "num_samples must be an integer in [1, 9], not 10"),
    ({"top": 0}, ConfigError, "top must be"),
    ({"temperature": MIN_TEMPERATURE / 2}, ConfigError, "below the smallest"),
    ({"temperature": -1.0}, ConfigError, "temperature must be"),
    ({"temperature": math.nan}, ConfigError, "temperature must be finite"),
    ({"seed": -1}, ConfigError, "seed must be"),
    ({"seed": 1.5}, TypeError, "seed must be an integer, not float"),
    ({"unknown": "ignore"}, ConfigError, "unknown must be one of error, skip, replace, not 'ignore'"),
    ({"length": True}, TypeError, "length must be an integer, not bool"),
])
def test_write_config_refuses_what_write_refuses(values, error, message):
    with pytest.raises(error) as caught:
        WriteConfig(**values)
    assert message in str(caught.value)


def test_write_config_takes_its_edges():
    WriteConfig(length=1000, num_samples=9, top=1, temperature=0, seed=MAX_SEED, unknown="replace")
    WriteConfig(length=1, num_samples=1, top=9, temperature=MIN_TEMPERATURE, seed=None)


@pytest.mark.parametrize("values, error, message", [
    ({"vocab_size": 0}, ConfigError, "vocab_size must be positive, not 0"),
    ({"vocab_size": 10, "hidden_size": MAX_WIDTH + 1}, ConfigError,
     f"hidden_size {MAX_WIDTH + 1} is above the cap of {MAX_WIDTH}"),
    ({"vocab_size": 10, "num_layers": MAX_NUM_LAYERS + 1}, ConfigError,
     f"num_layers {MAX_NUM_LAYERS + 1} is above the cap of {MAX_NUM_LAYERS}"),
    ({"vocab_size": 4, "hidden_size": 30_000, "num_layers": 3}, ConfigError,
     "parameters, over the cap of 2,000,000,000"),
    ({"vocab_size": 10, "dropout": 1.0}, ConfigError, "dropout must be a number in [0, 1), not 1"),
    ({"vocab_size": 10, "dropout": float("nan")}, ConfigError, "dropout must be finite, not nan"),
    ({"vocab_size": 10, "forget_bias": -1e4}, ConfigError, "forget_bias must be a number in [-1000, 1000], not -10000"),
    ({"vocab_size": 10, "forget_bias": float("-inf")}, ConfigError, "forget_bias must be finite, not -inf"),
    ({"vocab_size": 10, "cell": "lstm2"}, ConfigError,
     "cell must be one of lstm, gru, rnn, peephole, coupled, not 'lstm2'"),
    ({"vocab_size": 10 ** 400}, ConfigError, "vocab_size 1000"),
    ({"vocab_size": 4, "hidden_size": 8.0}, TypeError, "hidden_size must be an integer, not float"),
    ({"vocab_size": 4, "num_layers": True}, TypeError, "num_layers must be an integer, not bool"),
    ({"vocab_size": 4, "dropout": None}, TypeError, "dropout must be a number, not NoneType"),
])
def test_model_config_refuses_each_field_by_its_bounds(values, error, message):
    """A refused value is a ConfigError (a CharlstmError and a ValueError), a value of the wrong type a
    TypeError, each naming the field."""
    with pytest.raises(error) as caught:
        ModelConfig(**values)
    assert message in str(caught.value)
    if error is ConfigError:
        assert isinstance(caught.value, CharlstmError) and isinstance(caught.value, ValueError)


def test_the_options_checked_above_are_all_the_bounded_ones():
    """Every option of train and sample that fills a bounded field is among those checked edge by edge
    (test_each_option_accepts_exactly_what_its_field_accepts): the filter above cannot skip them."""
    checked = {(param.name, cls) for param, cls, _ in (p.values for p in _field_options())}
    for command_name, cls in (("train", TrainConfig), ("sample", SampleConfig)):
        for param in main.get_command(None, command_name).params:
            if param.name in cls.__dataclass_fields__ and "bounds" in cls.__dataclass_fields__[param.name].metadata \
                    and (command_name, param.name) not in NOT_FIELDS:
                assert (param.name, cls) in checked, (command_name, param.name)
    assert len([1 for name, cls in checked if cls in (TrainConfig, SampleConfig)]) >= 18


@pytest.mark.parametrize("cls, name, value, error", [
    (TrainConfig, "batch_size", 0, ConfigError), (TrainConfig, "batch_size", -3, ConfigError),
    (TrainConfig, "batch_size", 2.5, TypeError), (TrainConfig, "batch_size", True, TypeError),
    (TrainConfig, "seq_len", "100", TypeError), (TrainConfig, "learning_rate", 0.0, ConfigError),
    (TrainConfig, "learning_rate", float("nan"), ConfigError), (TrainConfig, "decay_fraction", 1.5, ConfigError),
    (TrainConfig, "min_lr_ratio", -0.1, ConfigError), (TrainConfig, "grad_clip", float("inf"), ConfigError),
    (TrainConfig, "val_fraction", 0.6, ConfigError), (TrainConfig, "max_steps", 0, ConfigError),
    (TrainConfig, "time_budget", -1.0, ConfigError), (TrainConfig, "seed", -1, ConfigError),
    (TrainConfig, "seed", MAX_SEED + 1, ConfigError), (TrainConfig, "eval_chars", 0, ConfigError),
    (TrainConfig, "log_every", None, TypeError),
    (SampleConfig, "length", -1, ConfigError), (SampleConfig, "temperature", -0.5, ConfigError),
    (SampleConfig, "temperature", MIN_TEMPERATURE / 2, ConfigError), (SampleConfig, "top_k", 0, ConfigError),
    (SampleConfig, "top_p", 0.0, ConfigError), (SampleConfig, "top_p", 1.01, ConfigError),
    (SampleConfig, "num_samples", 0, ConfigError), (SampleConfig, "seed", MAX_SEED + 1, ConfigError),
    (SampleConfig, "stop", "\n", ConfigError), (SampleConfig, "stop", ("a", 3), ConfigError),
    (SampleConfig, "unknown", "ignore", ConfigError),
])
def test_the_python_api_refuses_what_the_command_line_refuses(cls, name, value, error):
    """TrainConfig and SampleConfig check their fields themselves, naming the field: a library
    caller gets the same refusal as a user of the command line, not a failure deep in training."""
    with pytest.raises(error, match=name):
        cls(**{name: value})


def test_config_bounds_accept_the_edges_and_none_where_optional():
    TrainConfig(batch_size=1, decay_fraction=0.0, min_lr_ratio=1.0, val_fraction=0.5, seed=MAX_SEED, max_steps=None,
                time_budget=None, eval_seconds=None, patience=None, min_char_count=None, warmup_steps=0)
    SampleConfig(length=0, temperature=0.0, top_p=1.0, top_k=1, seed=0)
    assert SampleConfig(stop=["\n", ""]).stop == ("\n", "")


#: (command line, Python API call, the field named, the cap as each says it): an absurd number each
#: entry point of the API takes, and the option that sets the same field.
ABSURD_CALLS = [
    (["sample", "--length", "1" + "0" * 12], lambda c, m, v, run, out: c.sample(m, v, length=10**12), "length",
     f"{MAX_SAMPLE_CHARS:,}", str(MAX_SAMPLE_CHARS)),
    (["sample", "--num-samples", "1" + "0" * 12], lambda c, m, v, run, out: c.sample(m, v, num_samples=10**12),
     "num_samples", f"{MAX_SAMPLES:,}", str(MAX_SAMPLES)),
    (["sample", "--top-k", "1" + "0" * 12], lambda c, m, v, run, out: c.sample(m, v, top_k=10**12), "top_k",
     f"{MAX_VOCAB_SIZE:,}", str(MAX_VOCAB_SIZE)),
    (["sample", "--temperature", "1e39"], lambda c, m, v, run, out: c.sample(m, v, temperature=1e39), "temperature",
     f"{MAX_FLOAT32:g}", f"{MAX_FLOAT32:g}"),
    (["sample", "--threads", "100000"], lambda c, m, v, run, out: c.load(run, threads=100_000), "threads",
     str(MAX_THREADS), str(MAX_THREADS)),
    (["train", "--max-steps", "1" + "0" * 13],
     lambda c, m, v, run, out: c.train("abc" * 100, out, config=c.TrainConfig(max_steps=10**13)), "max_steps",
     f"{MAX_STEPS:,}", str(MAX_STEPS)),
    (["train", "--time", "1" + "0" * 12],
     lambda c, m, v, run, out: c.train("abc" * 100, out, config=c.TrainConfig(time_budget=1e12)), "time_budget",
     format_duration(MAX_SECONDS), f"{MAX_SECONDS:g}"),
    (["train", "--preview", "1" + "0" * 9],
     lambda c, m, v, run, out: c.train("abc" * 100, out, config=c.TrainConfig(preview_chars=10**9)), "preview_chars",
     f"{MAX_SAMPLE_CHARS:,}", str(MAX_SAMPLE_CHARS)),
    (["train", "--threads", "100000"], lambda c, m, v, run, out: c.train("abc" * 100, out, threads=100_000), "threads",
     str(MAX_THREADS), str(MAX_THREADS)),
]


@pytest.mark.parametrize("argv, call, field, cli_cap, api_cap", ABSURD_CALLS,
                         ids=[f"{argv[0]}{argv[1]}" for argv, *_ in ABSURD_CALLS])
def test_every_entry_point_of_the_python_api_refuses_what_the_command_line_refuses(
        model_vocab, trained_run, tmp_path, argv, call, field, cli_cap, api_cap):
    """charlstm.sample, load and train refuse an absurd number as ConfigError naming the field and the
    cap that the command line's refusal of the same number names (its caps come from the same field's
    Bounds); nothing is run or written first."""
    import charlstm

    model, vocab = model_vocab
    with pytest.raises(ConfigError, match=field) as caught:
        call(charlstm, model, vocab, trained_run, tmp_path / "run")
    assert api_cap in str(caught.value) and not (tmp_path / "run").exists()
    target = tmp_path / "missing.txt" if argv[0] == "train" else trained_run
    refused(run_cli(argv[0], target, *argv[1:]), argv[1], cli_cap, code=2)


def test_a_text_too_long_to_trace_is_refused_by_the_api_as_by_inspect(model_vocab, trained_run):
    """charlstm.trace weighs what the trace keeps against the memory budget before it makes a buffer,
    and `inspect` weighs what its view keeps the same way (tracing.check_trace): one error, a
    NeuronError and a MemoryBudgetError, in the same words, naming the most characters that fit."""
    import re

    import charlstm
    from charlstm.errors import MemoryBudgetError
    from charlstm.inspection.analysis import find_need
    from charlstm.inspection.tracing import check_trace

    model, vocab = model_vocab
    config = model.config

    def most(**request) -> int:
        """The most characters a trace of `request` holds, as its refusal of a billion says."""
        with pytest.raises(NeuronError) as refusal:
            check_trace(config, 10**9, **request)
        return int(re.search(r"hold at most ([\d,]+) characters", str(refusal.value)).group(1).replace(",", ""))

    too_long = most(vectors=len(config.vectors), layers=config.num_layers, logits=True) + 1
    with pytest.raises(NeuronError, match=f"^{too_long:,} characters is too long to trace") as caught:
        charlstm.trace(model, vocab, vocab.chars[0] * too_long)
    assert isinstance(caught.value, MemoryBudgetError)
    ranked = dict(vectors=1, layers=config.num_layers, kept=find_need(config.num_layers * config.hidden_size),
                  what="rank units over")
    too_long = most(**ranked) + 1
    with pytest.raises(NeuronError) as expected:
        check_trace(config, too_long, **ranked)
    refused(run_cli("inspect", trained_run, "--length", too_long, "--find", "whitespace"), str(expected.value))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole", "coupled"])
def test_the_parameter_count_is_the_model_s(cell):
    from charlstm.config import ModelConfig
    from charlstm.model.network import CharModel

    for embedding, hidden, layers in ((8, 16, 1), (64, 32, 3), (16, 16, 2)):
        config = ModelConfig(vocab_size=37, cell=cell, embedding_size=embedding, hidden_size=hidden, num_layers=layers)
        assert config.parameter_count == CharModel(config).num_parameters <= config.parameter_bound
