"""Issue 15, classes 4 and 6: options accept only what they can mean, and the process's own streams
(closed stdin / stdout / stderr, an ASCII-only PYTHONIOENCODING, file names with line breaks) give one
line and a non-zero exit, never a traceback.

Option checks run while the command line is parsed: a usage error (exit 2) before any corpus is read
or any run directory is made. Stream cases run in a subprocess, where a closed descriptor is real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from charlstm.cli import COMMANDS, main
from charlstm.errors import one_line
from charlstm.config import MAX_SEED, MIN_TEMPERATURE
from charlstm.cli.params import Encoding, Number, Seed, device_option
from charlstm.config import MAX_NUM_LAYERS, MAX_WIDTH, ModelConfig, SampleConfig, TrainConfig
from charlstm.errors import CharlstmError, ConfigError, CorpusError

#: A model that trains in a second or two.
SMALL = ["--hidden-size", "16", "--num-layers", "1", "--embedding-size", "8", "--batch-size", "4", "--seq-len", "16",
         "--preview", "0"]


def invoke(*args: str, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def cli(*args: str, shell_redirect: str = "", env: dict | None = None, cwd=None, timeout: int = 180):
    """Run `charlstm ARGS` in a fresh interpreter, optionally under a shell redirection such as `<&-`."""
    command = [sys.executable, "-m", "charlstm.cli", *args]
    if shell_redirect:
        command = ["sh", "-c", f'exec "$@" {shell_redirect}', "sh", *command]
    return subprocess.run(command, capture_output=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(done, code: int = 1, *needles: str) -> str:
    """The process ended with `code` and its stderr ends in one line `Error: …` holding every needle;
    any line before it is a `charlstm: …` notice."""
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == code, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), err[-2000:]
    assert all(line.startswith("charlstm: ") for line in lines[:-1]), err[-2000:]
    lines = lines[-1:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def assert_usage_error(result, option: str, *needles: str) -> None:
    """A Click usage error (exit 2) naming the option, raised as an error and not an exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert option in result.output, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare_text) -> Path:
    path = tmp_path_factory.mktemp("text") / "plays.txt"
    path.write_text(shakespeare_text[:6000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chinese_run(tmp_path_factory, chinese_text) -> Path:
    """A tiny model whose vocabulary is Chinese: nearly every character it writes is outside ASCII."""
    work = tmp_path_factory.mktemp("zh")
    (work / "poems.txt").write_text(chinese_text, encoding="utf-8")
    result = invoke("train", str(work / "poems.txt"), "--out", str(work / "run"), "--max-steps", "2",
                    "--eval-every", "2", *SMALL)
    assert result.exit_code == 0, result.output
    return work / "run"


# ------------------------------------------------------------------------------------------------
# Class 4: one type per kind of option


def _commands():
    return [(name, main.get_command(None, name)) for name in COMMANDS]


def test_every_option_uses_the_shared_checks():
    """Every float option is a finite Number, every --seed a Seed, every --device goes through
    pick_device and every --encoding through check_encoding: a new option cannot slip past."""
    seen = {"float": 0, "seed": 0, "device": 0, "encoding": 0}
    for name, command in _commands():
        for param in command.params:
            if isinstance(param.type, click.types.FloatParamType):
                assert isinstance(param.type, Number), f"{name} {param.opts}: a float option without Number"
                seen["float"] += 1
            if "--seed" in param.opts:
                assert isinstance(param.type, Seed), f"{name} --seed"
                seen["seed"] += 1
            if "--device" in param.opts:
                assert param.callback is device_option, f"{name} --device"
                seen["device"] += 1
            if "--encoding" in param.opts:
                assert isinstance(param.type, Encoding), f"{name} --encoding"
                seen["encoding"] += 1
    assert seen == {"float": 13, "seed": 6, "device": 6, "encoding": 2}, seen


TRAIN_FLOATS = ["--lr", "--dropout", "--forget-bias", "--weight-decay", "--grad-clip", "--val-fraction", "--lr-decay",
                "--eval-seconds", "--ema-decay", "--short-windows"]


@pytest.mark.parametrize("option", TRAIN_FLOATS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_train_refuses_non_finite_floats_before_anything_is_written(tmp_path, corpus, option, value):
    out = tmp_path / "run"
    result = invoke("train", str(corpus), "--out", str(out), "--max-steps", "1", option, value)
    assert_usage_error(result, option, "is not a finite number")
    assert not out.exists()


@pytest.mark.parametrize("option, value, shown", [
    ("--lr", "0", "x>0"), ("--dropout", "1", "0<=x<1"), ("--val-fraction", "0.6", "0<=x<=0.5"),
    ("--weight-decay", "-1", "x>=0"), ("--grad-clip", "-0.5", "x>0"), ("--lr", "abc", "not a number"),
    ("--ema-decay", "1", "0<=x<1"),
])
def test_float_ranges_are_named_in_the_message(tmp_path, corpus, option, value, shown):
    result = invoke("train", str(corpus), "--out", str(tmp_path / "run"), option, value)
    assert_usage_error(result, option, shown)


@pytest.mark.parametrize("option", ["--temperature", "--top-p"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_sample_refuses_non_finite_floats(trained_run, option, value):
    result = invoke("sample", str(trained_run), "--length", "5", option, value)
    assert_usage_error(result, option, "is not a finite number")
    assert result.stdout == ""


def test_clamp_value_must_be_finite(trained_run):
    result = invoke("sample", str(trained_run), "--length", "5", "--clamp", "1:2=nan")
    assert_usage_error(result, "--clamp", "finite")


@pytest.mark.parametrize("value", ["1e-45", "1e-300", "0.0009", "5e-324"])
def test_a_temperature_too_small_to_mean_anything_is_refused_with_a_pointer_to_zero(trained_run, value):
    result = invoke("sample", str(trained_run), "--length", "5", "--temperature", value)
    assert_usage_error(result, "--temperature", "smallest temperature", "give 0")


@pytest.mark.parametrize("value", [str(MIN_TEMPERATURE), "0", "1e6"])
def test_temperatures_at_the_edges_sample(trained_run, value):
    result = invoke("sample", str(trained_run), "--length", "20", "--temperature", value, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.rstrip("\n")) == 20


@pytest.mark.parametrize("value", ["-1", str(MAX_SEED + 1), "99999999999999999999999", "1.5", "x"])
@pytest.mark.parametrize("command", ["sample", "inspect", "corpus", "train"])
def test_seeds_outside_the_documented_range_are_usage_errors(tmp_path, trained_run, corpus, command, value):
    args = {"sample": ["sample", str(trained_run), "--length", "5"],
            "inspect": ["inspect", str(trained_run), "--length", "5"],
            "corpus": ["corpus", "counter", "--out", str(tmp_path / "c.txt"), "--count", "3"],
            "train": ["train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "1"]}[command]
    result = invoke(*args, "--seed", value)
    assert_usage_error(result, "--seed")
    if value.lstrip("-").isdigit():
        assert "0 to 2**63 - 1" in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "c.txt").exists()


def test_the_largest_seed_trains_across_epoch_boundaries(tmp_path, shakespeare_text):
    """The seed reaches numpy (each epoch's stream offsets), torch.manual_seed and the preview sampler."""
    text = tmp_path / "small.txt"
    text.write_text(shakespeare_text[:1500], encoding="utf-8")
    out = tmp_path / "run"
    result = invoke("train", str(text), "--out", str(out), "--max-steps", "60", "--eval-every", "30",
                    "--seed", str(MAX_SEED), *SMALL[:-2], "--preview", "10")
    assert result.exit_code == 0, result.output
    assert (out / "latest.safetensors").is_file()


def test_the_largest_seed_samples_the_same_text_twice(tmp_path, trained_run):
    runs = [invoke("sample", str(trained_run), "--length", "30", "--seed", str(MAX_SEED)) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    assert runs[0].stdout == runs[1].stdout
    made = invoke("corpus", "counter", "--out", str(tmp_path / "c.txt"), "--count", "3", "--seed", str(MAX_SEED))
    assert made.exit_code == 0 and len((tmp_path / "c.txt").read_text().splitlines()) == 3


_NO_CUDA = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize("device, needle", [
    ("foo", "unknown device 'foo'"), ("meta", "not meta"), ("xla", "not xla"), ("cuda:x", "unknown device"),
    pytest.param("cuda", "use --device cpu", marks=_NO_CUDA), pytest.param("cuda:7", "use --device cpu", marks=_NO_CUDA),
])
@pytest.mark.parametrize("command", ["train", "sample", "inspect", "score"])
def test_devices_charlstm_cannot_run_on_are_usage_errors(tmp_path, trained_run, corpus, command, device, needle):
    args = {"train": ["train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "1"],
            "sample": ["sample", str(trained_run), "--length", "5"],
            "inspect": ["inspect", str(trained_run), "--length", "5"],
            "score": ["score", str(trained_run), "--text", "to be"]}[command]
    result = invoke(*args, "--device", device)
    assert_usage_error(result, "--device", needle)
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()  # refused before the corpus is prepared


def test_pick_device_is_the_one_check():
    from charlstm.runtime import pick_device

    assert pick_device("cpu").type == "cpu" and pick_device(None).type in ("cpu", "cuda")
    for bad in ("foo", "meta", "cuda:-1", "xla"):
        with pytest.raises(ConfigError):
            pick_device(bad)


@pytest.mark.parametrize("encoding, needle", [
    ("base64", "not a text encoding"), ("rot13", "not a text encoding"), ("hex", "not a text encoding"),
    ("zlib", "not a text encoding"), ("bz2_codec", "not a text encoding"), ("uu", "not a text encoding"),
    ("no-such-codec", "unknown encoding"),
])
@pytest.mark.parametrize("command", ["train", "prepare"])
def test_encodings_that_do_not_make_text_are_usage_errors(tmp_path, corpus, command, encoding, needle):
    out = tmp_path / "run"
    result = invoke(command, str(corpus), "--out", str(out), "--encoding", encoding)
    assert_usage_error(result, "--encoding", needle)
    assert not out.exists()


def test_the_library_reader_refuses_bytes_to_bytes_codecs_too(corpus):
    from charlstm.data.reading import read_corpus

    with pytest.raises(CorpusError, match="not a text encoding"):
        read_corpus([corpus], encoding="base64")
    assert read_corpus([corpus], encoding="latin-1").startswith("First Citizen")


def test_a_text_encoding_prepares(tmp_path):
    text = tmp_path / "latin.txt"
    text.write_bytes("Café crème, à la façon de Molière.\n".encode("latin-1") * 50)
    result = invoke("prepare", str(text), "--out", str(tmp_path / "run"), "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert "distinct" in result.stderr


@pytest.mark.parametrize("option, value, cap", [
    ("--hidden-size", str(MAX_WIDTH + 1), MAX_WIDTH), ("--embedding-size", "70000", MAX_WIDTH),
    ("--num-layers", str(MAX_NUM_LAYERS + 1), MAX_NUM_LAYERS),
])
def test_size_options_are_capped_at_parse_time(tmp_path, corpus, option, value, cap):
    result = invoke("train", str(corpus), "--out", str(tmp_path / "run"), option, value)
    assert_usage_error(result, option, f"1<=x<={cap}")
    assert not (tmp_path / "run").exists()


def test_a_model_over_the_parameter_cap_is_one_line(tmp_path, corpus):
    result = invoke("train", str(corpus), "--out", str(tmp_path / "run"), "--hidden-size", "60000",
                    "--num-layers", "1000")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "over the cap" in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_config_errors_are_charlstm_errors_and_value_errors():
    with pytest.raises(ConfigError) as caught:
        ModelConfig(vocab_size=10, hidden_size=MAX_WIDTH + 1)
    assert isinstance(caught.value, CharlstmError) and isinstance(caught.value, ValueError)
    with pytest.raises(ConfigError):
        ModelConfig(vocab_size=10, dropout=float("nan"))


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


def test_option_ranges_come_from_the_configs():
    """The command line's types are built from the same Bounds: the option and the field agree at the edges."""
    commands = dict(_commands())
    checked = 0
    for command_name, cls in (("train", TrainConfig), ("sample", SampleConfig)):
        for param in commands[command_name].params:
            field = param.name
            if field not in cls.__dataclass_fields__ or "bounds" not in cls.__dataclass_fields__[field].metadata:
                continue
            bounds = cls.__dataclass_fields__[field].metadata["bounds"]
            if not isinstance(param.type, (click.IntRange, Number)) or isinstance(param.type, Seed):
                continue  # --time is a duration (parse_duration: never negative); --seed is a Seed
            if bounds.low is not None:
                assert param.type.min == bounds.low and param.type.min_open == bounds.low_open, (command_name, field)
                assert param.type.max == bounds.high and param.type.max_open == bounds.high_open, (command_name, field)
                checked += 1
    assert checked >= 18, checked


def test_a_checkpoint_whose_recipe_is_out_of_range_is_a_checkpoint_error():
    from charlstm.errors import CheckpointError
    from charlstm.runs.runinfo import _Checker, _train_config

    with pytest.raises(CheckpointError, match="decay_fraction"):
        _train_config(_Checker("x.safetensors"), {"decay_fraction": 7.0})


# ------------------------------------------------------------------------------------------------
# Class 6: the process's own streams, in real subprocesses


def test_train_from_a_closed_stdin_is_one_line(tmp_path):
    done = cli("train", "-", "--out", str(tmp_path / "run"), "--max-steps", "1", *SMALL, shell_redirect="<&-")
    assert_one_line_error(done, 1, "standard input is closed")
    assert not (tmp_path / "run" / "latest.safetensors").exists()


def test_sample_to_a_closed_stdout_is_one_line(trained_run):
    done = cli("sample", str(trained_run), "--length", "5", shell_redirect=">&-")
    assert_one_line_error(done, 1, "standard output is closed")


@pytest.mark.parametrize("args", [["inspect", "--length", "5"], ["score", "--text", "to be or not"]])
def test_results_to_a_closed_stdout_are_one_line(trained_run, args):
    done = cli(args[0], str(trained_run), *args[1:], shell_redirect=">&-")
    assert_one_line_error(done, 1, "standard output is closed")


def test_help_and_version_to_a_closed_stdout_are_one_line():
    assert_one_line_error(cli("--version", shell_redirect=">&-"), 1, "standard output is closed")
    assert_one_line_error(cli("sample", "--help", shell_redirect=">&-"), 1, "standard output is closed")


def test_training_needs_no_stdout_and_no_stderr(tmp_path, corpus):
    """train writes its results into the run, not stdout: with stdout (or stderr) closed it trains, and
    no run file lands on descriptor 1 or 2 to receive what a library prints there."""
    for redirect, name in ((">&-", "a"), ("2>&-", "b"), (">&- 2>&-", "c")):
        out = tmp_path / name
        done = cli("train", str(corpus), "--out", str(out), "--max-steps", "2", "--eval-every", "2", *SMALL,
                   shell_redirect=redirect)
        assert done.returncode == 0, (redirect, done.stderr.decode()[-1500:])
        assert (out / "latest.safetensors").is_file() and (out / "best.safetensors").is_file()
        loaded = invoke("sample", str(out), "--length", "5")
        assert loaded.exit_code == 0, (redirect, loaded.output)


def test_an_ascii_only_pythonioencoding_with_a_chinese_model_names_the_variable(chinese_run):
    done = cli("sample", str(chinese_run), "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "ascii"})
    assert_one_line_error(done, 1, "PYTHONIOENCODING=ascii", "set PYTHONIOENCODING=utf-8", "U+")


def test_an_ascii_only_pythonioencoding_still_samples_ascii_text(trained_run):
    done = cli("sample", str(trained_run), "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert len(done.stdout.decode("ascii").rstrip("\n")) == 20


def test_a_chinese_model_samples_under_utf8(chinese_run):
    done = cli("sample", str(chinese_run), "--length", "20", "--seed", "1", env={"PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert any(ord(c) > 0x2E80 for c in done.stdout.decode("utf-8"))


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("args", [["train", "/proc/self/mem", "--out", "{tmp}/run"],
                                  ["prepare", "/proc/self/mem", "--out", "{tmp}/run"]])
def test_a_read_error_names_the_file(tmp_path, args):
    done = cli(*[a.format(tmp=tmp_path) for a in args])
    assert_one_line_error(done, 1, "/proc/self/mem", "cannot read")


def test_one_line_escapes_what_is_not_printable():
    assert one_line("plain: ok") == "plain: ok"
    assert one_line("we\nird/x.txt: no such file") == "we\\nird/x.txt: no such file"
    assert one_line("a\rb\tc\x1b[31md\udcff\u2028") == "a\\rb\\tc\\x1b[31md\\udcff\\u2028"
    assert one_line("床前明月光") == "床前明月光"


def test_a_file_name_with_a_line_break_stays_on_one_line(tmp_path):
    folder = tmp_path / "we\nird"
    folder.mkdir()
    (folder / "bin.txt").write_bytes(b"text\x00more")
    assert_one_line_error(cli("train", str(folder / "missing.txt")), 1, "we\\nird/missing.txt", "no such file")
    assert_one_line_error(cli("train", str(folder / "bin.txt"), "--out", str(tmp_path / "run")), 1, "we\\nird", "NUL")
    assert not list(tmp_path.glob("run/*.safetensors"))


@pytest.mark.parametrize("name", ["we\nird", "car\rriage", "esc\x1b[2Jape", "tab\tbed", "bell\x07"])
def test_file_names_with_control_characters_stay_on_one_line(tmp_path, name):
    """Every message passes through one_line in the error mapping: domain errors and usage errors."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "bin.txt").write_bytes(b"text\x00more")
    escaped = one_line(name)
    for args in (["train", str(folder / "missing.txt")], ["train", str(folder / "bin.txt"), "--out", str(tmp_path / "r")],
                 ["sample", str(folder)], ["prepare", str(folder / "bin.txt"), "--out", str(tmp_path / "r")]):
        result = invoke(*args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, repr(result.exception))
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and escaped in lines[0], (args, result.stderr)
        assert not any(c in lines[0] for c in "\r\t\x1b\x07"), lines[0]
    assert not list(tmp_path.glob("r/*.safetensors"))


def test_a_usage_error_quoting_a_path_stays_one_line(tmp_path, trained_run):
    done = cli("inspect", str(trained_run), "--text-file", str(tmp_path / "no\nsuch.txt"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err, err
    error_lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and "no\\nsuch.txt" in error_lines[0], err
