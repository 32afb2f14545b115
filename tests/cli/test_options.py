"""cli/params.py: options accept only what they can mean, and say so while the command line is parsed: a
usage error (exit 2) naming the option and its range, before any corpus is read or any run folder made.
One type per kind of option (finite numbers, seeds, devices, encodings, durations), each built from
the config field it fills, so an option accepts exactly what its field accepts (tests/test_config.py)."""

from __future__ import annotations

import click
import pytest

from charlstm.cli import COMMANDS, main
from charlstm.cli.params import Duration, Encoding, NgramBaseline, Number, Seed, Threads, device_option, parse_duration
from charlstm.config import MAX_NUM_LAYERS, MAX_SEED, MAX_WIDTH, MIN_TEMPERATURE
from charlstm.probes.tasks import TASKS, task_parameters
from conftest import SMALL, refused, rewrite_checkpoint, run_cli


def assert_usage_error(result, option: str, *needles: str) -> None:
    """A Click usage error (exit 2) naming the option, its message the last line; every needle in it."""
    line = refused(result, option, *needles, code=2)
    assert len([l for l in result.output.splitlines() if l.strip()]) <= 3, result.output   # usage, a hint, the error
    assert line.startswith("Error: ")


def _commands():
    return [(name, main.get_command(None, name)) for name in COMMANDS]


# ------------------------------------------------------------------------------ numbers


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
    result = run_cli("train", corpus, "--out", str(out), "--max-steps", "1", option, value)
    assert_usage_error(result, option, "is not a finite number")
    assert not out.exists()


@pytest.mark.parametrize("command, option, value, shown", [
    ("train", "--lr", "0", "x>0"), ("train", "--dropout", "1", "0<=x<1"),
    ("train", "--val-fraction", "0.6", "0<=x<=0.5"), ("train", "--val-fraction", "1.5", "0<=x<=0.5"),
    ("train", "--weight-decay", "-1", "x>=0"), ("train", "--grad-clip", "-0.5", "x>0"),
    ("train", "--lr", "abc", "not a number"), ("train", "--ema-decay", "1", "0<=x<1"),
    ("train", "--seq-len", "0", "x>=1"), ("train", "--hidden-size", "-3", "1<=x<=65536"),
    ("train", "--time", "soon", "not a duration"), ("train", "--time", "five minutes", "not a duration"),
    ("sample", "--temperature", "-1", "x>=0"), ("sample", "--top-p", "1.5", "0<x<=1"),
    ("sample", "--top-p", "0", "0<x<=1"), ("sample", "--top-k", "0", "x>=1"),
])
def test_out_of_range_values_are_usage_errors_naming_the_range(tmp_path, corpus, trained_run, command, option, value,
                                                               shown):
    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()}
    args = ["train", corpus, "--out", tmp_path / "run"] if command == "train" else ["sample", trained_run]
    result = run_cli(*args, option, value)
    assert_usage_error(result, option, shown)
    assert result.stdout == "" and not (tmp_path / "run").exists()
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()} == before


def test_parse_duration():
    assert parse_duration("90") == 90 and parse_duration("5m") == 300 and parse_duration("1h30m") == 5400


@pytest.mark.parametrize("option", ["--temperature", "--top-p"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_sample_refuses_non_finite_floats(trained_run, option, value):
    result = run_cli("sample", trained_run, "--length", "5", option, value)
    assert_usage_error(result, option, "is not a finite number")
    assert result.stdout == ""


@pytest.mark.parametrize("value", ["1e-45", "1e-300", "0.0009", "5e-324"])
def test_a_temperature_too_small_to_mean_anything_is_refused_with_a_pointer_to_zero(trained_run, value):
    result = run_cli("sample", trained_run, "--length", "5", "--temperature", value)
    assert_usage_error(result, "--temperature", "smallest temperature", "give 0")


@pytest.mark.parametrize("value", [str(MIN_TEMPERATURE), "0", "1e6"])
def test_temperatures_at_the_edges_sample(trained_run, value):
    result = run_cli("sample", trained_run, "--length", "20", "--temperature", value, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.rstrip("\n")) == 20


@pytest.mark.parametrize("option, value, cap", [
    ("--hidden-size", str(MAX_WIDTH + 1), MAX_WIDTH), ("--embedding-size", "70000", MAX_WIDTH),
    ("--num-layers", str(MAX_NUM_LAYERS + 1), MAX_NUM_LAYERS),
])
def test_size_options_are_capped_at_parse_time(tmp_path, corpus, option, value, cap):
    result = run_cli("train", corpus, "--out", str(tmp_path / "run"), option, value)
    assert_usage_error(result, option, f"1<=x<={cap}")
    assert not (tmp_path / "run").exists()


def test_a_model_over_the_parameter_cap_is_one_line(tmp_path, corpus):
    result = run_cli("train", corpus, "--out", str(tmp_path / "run"), "--hidden-size", "60000",
                    "--num-layers", "1000")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "over the cap" in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_an_absurd_forget_bias_is_refused_as_an_option_and_in_a_checkpoint(small_run, corpus, tmp_path):
    big = run_cli("train", corpus, "--out", tmp_path / "other", "--max-steps", "3", "--forget-bias", "1e39", *SMALL)
    assert_usage_error(big, "--forget-bias")
    assert not (tmp_path / "other").exists()
    assert "None" not in run_cli("train", "--help").output.split("--forget-bias")[1].split("--batch-size")[0]
    rewrite_checkpoint(small_run / "best.safetensors", lambda m, t: m["config"].update(forget_bias=1e308))
    refused(run_cli("sample", small_run / "best.safetensors", "--length", "5"), "forget_bias")
    refused(run_cli("export", small_run / "best.safetensors", "--out", tmp_path / "exported"), "forget_bias")
    assert not (tmp_path / "exported").exists()


# ------------------------------------------------------------------------------ upper bounds

#: The option types that take a number, and a value of each far past any bound, above and below.
ABSURD = {click.types.IntParamType: ("1" + "0" * 30, "-1" + "0" * 30),
          click.types.FloatParamType: ("1e300", "-1e300"),
          Threads: ("1" + "0" * 30, "-1"), Duration: ("1" + "0" * 30 + "h", "1" + "0" * 400),
          NgramBaseline: ("ngram:1" + "0" * 30, "ngram:-1")}
#: The option types that take no number.
NOT_NUMBERS = (click.types.StringParamType, click.Path, click.Choice, click.types.BoolParamType, Encoding)
#: What each command needs to reach its options (none of it is read: every refusal comes first).
NEEDS = {"train": ["missing.txt"], "prepare": ["missing.txt"], "report": ["--out", "never.html"],
         "export": ["--out", "never"]}


def _needs(name: str, param) -> list[str]:
    """NEEDS, and for `corpus` the task that takes the option (another would refuse it for that)."""
    if name != "corpus":
        return NEEDS.get(name, [])
    task = next((t for t in TASKS if param.name in task_parameters(t)), "counter")
    return [task, "--out", "never.txt"]


def _numeric_options():
    """(command, option, value) for every option of every command that takes a number, each with
    each absurd value of its type; an option of a type not known here fails the listing."""
    for name, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag:
                continue
            kinds = [kind for kind in ABSURD if isinstance(param.type, kind)]
            if not kinds:
                assert isinstance(param.type, NOT_NUMBERS), f"{name} {param.opts[0]}: a type this test does not know"
                continue
            for value in ABSURD[kinds[0]]:
                yield pytest.param(name, param, value, id=f"{name}{param.opts[0]}={value[:12]}")


@pytest.mark.parametrize("name, param, value", list(_numeric_options()))
def test_every_number_any_command_takes_is_bounded_while_parsing(tmp_path, monkeypatch, name, param, value):
    """Each option that takes a number (listed from the commands themselves, so a new one without a
    bound fails here) refuses an absurd value as a usage error naming it, before any work or file."""
    monkeypatch.chdir(tmp_path)
    result = run_cli(name, *_needs(name, param), param.opts[0], value)
    line = refused(result, code=2)
    assert any(opt in line for opt in param.opts), line
    assert list(tmp_path.iterdir()) == []


def test_the_numbers_listed_are_every_one():
    listed = {(name, param.name) for name, param, _ in (p.values for p in _numeric_options())}
    assert {("report", "novelty_length"), ("train", "time_budget"), ("train", "max_steps"), ("sample", "length"),
            ("inspect", "window"), ("corpus", "count"), ("score", "baseline"), ("write", "temperature")} <= listed
    assert len(listed) == 55, sorted(listed)


# ------------------------------------------------------------------------------ seeds


@pytest.mark.parametrize("value", ["-1", str(MAX_SEED + 1), "99999999999999999999999", "1.5", "x"])
@pytest.mark.parametrize("command", ["sample", "inspect", "corpus", "train"])
def test_seeds_outside_the_documented_range_are_usage_errors(tmp_path, trained_run, corpus, command, value):
    args = {"sample": ["sample", trained_run, "--length", "5"],
            "inspect": ["inspect", trained_run, "--length", "5"],
            "corpus": ["corpus", "counter", "--out", str(tmp_path / "c.txt"), "--count", "3"],
            "train": ["train", corpus, "--out", str(tmp_path / "run"), "--max-steps", "1"]}[command]
    result = run_cli(*args, "--seed", value)
    assert_usage_error(result, "--seed")
    if value.lstrip("-").isdigit():
        assert "0 to 2**63 - 1" in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "c.txt").exists()


def test_the_largest_seed_trains_across_epoch_boundaries(tmp_path, shakespeare_text):
    """The seed reaches numpy (each epoch's stream offsets), torch.manual_seed and the preview sampler."""
    text = tmp_path / "small.txt"
    text.write_text(shakespeare_text[:1500], encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("train", text, "--out", out, "--max-steps", "60", "--eval-every", "30",
                    "--seed", str(MAX_SEED), *SMALL[:-2], "--num-layers", "1", "--preview", "10")
    assert result.exit_code == 0, result.output
    assert (out / "latest.safetensors").is_file()


def test_the_largest_seed_samples_the_same_text_twice(tmp_path, trained_run):
    runs = [run_cli("sample", trained_run, "--length", "30", "--seed", str(MAX_SEED)) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    assert runs[0].stdout == runs[1].stdout
    made = run_cli("corpus", "counter", "--out", str(tmp_path / "c.txt"), "--count", "3", "--seed", str(MAX_SEED))
    assert made.exit_code == 0 and len((tmp_path / "c.txt").read_text().splitlines()) == 3


# ------------------------------------------------------------------------------ devices and encodings


_NO_CUDA = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize("device, needle", [
    ("foo", "unknown device 'foo'"), ("meta", "not meta"), ("xla", "not xla"), ("cuda:x", "unknown device"),
    pytest.param("cuda", "use --device cpu", marks=_NO_CUDA), pytest.param("cuda:7", "use --device cpu", marks=_NO_CUDA),
])
@pytest.mark.parametrize("command", ["train", "sample", "inspect", "score"])
def test_devices_charlstm_cannot_run_on_are_usage_errors(tmp_path, trained_run, corpus, command, device, needle):
    args = {"train": ["train", corpus, "--out", str(tmp_path / "run"), "--max-steps", "1"],
            "sample": ["sample", trained_run, "--length", "5"],
            "inspect": ["inspect", trained_run, "--length", "5"],
            "score": ["score", trained_run, "--text", "to be"]}[command]
    result = run_cli(*args, "--device", device)
    assert_usage_error(result, "--device", needle)
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()  # refused before the corpus is prepared


@pytest.mark.parametrize("encoding, needle", [
    ("base64", "not a text encoding"), ("rot13", "not a text encoding"), ("hex", "not a text encoding"),
    ("zlib", "not a text encoding"), ("bz2_codec", "not a text encoding"), ("uu", "not a text encoding"),
    ("no-such-codec", "unknown encoding"),
])
@pytest.mark.parametrize("command", ["train", "prepare"])
def test_encodings_that_do_not_make_text_are_usage_errors(tmp_path, corpus, command, encoding, needle):
    out = tmp_path / "run"
    result = run_cli(command, corpus, "--out", str(out), "--encoding", encoding)
    assert_usage_error(result, "--encoding", needle)
    assert not out.exists()


def test_a_text_encoding_prepares(tmp_path):
    text = tmp_path / "latin.txt"
    text.write_bytes("Café crème, à la façon de Molière.\n".encode("latin-1") * 50)
    result = run_cli("prepare", str(text), "--out", str(tmp_path / "run"), "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert "distinct" in result.stderr
