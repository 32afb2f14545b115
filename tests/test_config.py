"""The configs say once what each setting accepts (config.Bounds, config.Choices): the Python API
refuses it, every option built from a field accepts exactly what the field accepts, and a
checkpoint's layout is held to the training config's own bounds."""

from __future__ import annotations

import math

import click
import pytest

from charlstm.cli import main
from charlstm.cli.params import Number, Seed
from charlstm.config import (
    MAX_SEED,
    MAX_WIDTH,
    MIN_TEMPERATURE,
    Bounds,
    Choices,
    ModelConfig,
    SampleConfig,
    TrainConfig,
    WriteConfig,
    bounds,
)
from charlstm.errors import CheckpointError, ConfigError

#: The configs each command builds from its options (inspect and score take the sampling's --unknown).
CONFIGS = {"train": (TrainConfig, ModelConfig), "sample": (SampleConfig,), "write": (WriteConfig,),
           "inspect": (SampleConfig,), "score": (SampleConfig,)}
#: Options named like a field that are not built from it: inspect's text length; --time, a duration
#: (never negative) that TrainConfig checks once parsed.
NOT_FIELDS = {("inspect", "length"), ("train", "time_budget")}


def _field_options():
    """(option, config class, field) for every option named like a field of its command's configs."""
    for name, classes in CONFIGS.items():
        for param in main.get_command(None, name).params:
            for cls in classes:
                if isinstance(param, click.Option) and param.name in cls.__dataclass_fields__ and \
                        "bounds" in cls.__dataclass_fields__[param.name].metadata and (name, param.name) not in NOT_FIELDS:
                    yield pytest.param(param, cls, param.name, id=f"{name}--{param.name}")


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


@pytest.mark.parametrize("values, message", [
    ({"vocab_size": 0}, "vocab_size must be positive, not 0"),
    ({"vocab_size": 10, "hidden_size": MAX_WIDTH + 1}, f"hidden_size {MAX_WIDTH + 1} is above the cap of {MAX_WIDTH}"),
    ({"vocab_size": 10, "dropout": 1.0}, "dropout must be a number in [0, 1), not 1"),
    ({"vocab_size": 10, "forget_bias": -1e4}, "forget_bias must be a number in [-1000, 1000], not -10000"),
    ({"vocab_size": 10, "cell": "lstm2"}, "cell must be one of lstm, gru, rnn, peephole, coupled, not 'lstm2'"),
    ({"vocab_size": 10 ** 400}, "vocab_size 1000"),
])
def test_model_config_refuses_each_field_by_its_bounds(values, message):
    with pytest.raises(ConfigError) as caught:
        ModelConfig(**values)
    assert message in str(caught.value)


@pytest.mark.parametrize("layout, message", [
    ({"n_chars": 100, "batch_size": 0, "seq_len": 4}, "'layout.batch_size' must be positive, not 0"),
    ({"n_chars": 100, "batch_size": 2, "seq_len": 2.0}, "'layout.seq_len' must be an integer, not float"),
    ({"n_chars": 100, "batch_size": 2, "seq_len": 4, "seed": -3}, "'layout.seed' must be an integer in [0, "),
    ({"n_chars": 100, "batch_size": 2, "seq_len": 4, "seed": MAX_SEED + 1}, "'layout.seed' must be"),
])
def test_a_checkpoint_layout_is_held_to_the_training_config_bounds(layout, message):
    from charlstm.runs.runinfo import _Checker, _layout

    with pytest.raises(CheckpointError) as caught:
        _layout(_Checker("x.safetensors"), layout)
    assert str(caught.value).startswith("x.safetensors: training metadata field ") and message in str(caught.value)
    assert _layout(_Checker("x"), {"n_chars": 100, "batch_size": 2, "seq_len": 4}).seed == 0
