"""The real command line, end to end: train → sample → inspect, and every bad input as one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm.runs import checkpoint as ckpt
from charlstm.cli import main
from charlstm.cli.params import parse_duration
from conftest import TINY, assert_no_traceback


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_end_to_end_train_sample_inspect(trained_run):
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    vals = [m["val_bpc"] for m in metrics if "val_bpc" in m]
    assert len(vals) == 3 and vals[-1] < vals[0]

    sample = invoke("sample", trained_run, "--length", "200", "--seed", "5", "--prime", "KING")
    assert sample.exit_code == 0, sample.output
    assert sample.stdout.startswith("KING") and len(sample.stdout) == len("KING") + 200 + 1
    assert "chars/s" in sample.stderr and "chars/s" not in sample.stdout
    again = invoke("sample", trained_run, "--length", "200", "--seed", "5", "--prime", "KING")
    assert again.stdout == sample.stdout

    tsv = invoke("inspect", trained_run, "--neuron", "3,7", "--layer", "1", "--text", "To be,\n\tor", "--format", "tsv",
                 "--unknown", "replace")
    assert tsv.exit_code == 0, tsv.output
    rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert rows[0] == ["position", "char", "L1.hidden[3]", "L1.hidden[7]"]
    assert [r[1] for r in rows[1:]] == list("To be,") + ["\\n", " ", "o", "r"]
    assert all(-1.0 <= float(v) <= 1.0 for r in rows[1:] for v in r[2:])

    shown = invoke("inspect", trained_run, "--neuron", "5", "--vector", "cell", "--text", "Exit ROMEO")
    assert shown.exit_code == 0, shown.output
    assert "Exit ROMEO" in shown.stdout and "min" in shown.stdout and "legend" in shown.stdout
    unseen = invoke("inspect", trained_run, "--text", "[Exit]")
    assert unseen.exit_code == 1 and "the text has characters this model never saw: '[', ']'" in unseen.stderr


def test_inspect_colours_follow_the_sign(trained_run):
    data = json.loads(invoke("inspect", trained_run, "--neuron", "2", "--vector", "cell", "--text", "Hello there",
                             "--format", "json").stdout)
    values = data["traces"]["L2.cell[2]"]
    assert data["chars"] == list("Hello there") and len(values) == 11
    from rich.console import Console
    from charlstm.views.traces import strip
    from charlstm.views.colours import value_rgb

    console = Console(force_terminal=True, color_system="truecolor", width=200)
    with console.capture() as cap:
        console.print(strip("ab", [-1.0, 1.0], gate=False, scale=1.0))
    with console.capture() as markup:
        console.print(strip("[bold]x[/bold] [Exit]", [0.0] * 21, gate=True))
    assert re.sub(r"\x1b\[[0-9;]*m", "", markup.get()).strip() == "[bold]x[/bold] [Exit]"
    red, blue = value_rgb(-1.0, False), value_rgb(1.0, False)
    assert f"48;2;{red[0]};{red[1]};{red[2]}" in cap.get() and f"48;2;{blue[0]};{blue[1]};{blue[2]}" in cap.get()
    assert red[0] > red[2] and blue[2] > blue[0]


def test_sample_defaults_to_the_most_recent_run(tmp_path, shakespeare_text, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.txt").write_text(shakespeare_text[:8000], encoding="utf-8")
    result = invoke("train", "tiny.txt", "--max-steps", "5", "--eval-every", "5", *TINY)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "checkpoints" / "tiny" / "best.safetensors").is_file()
    second = invoke("train", "tiny.txt", "--max-steps", "5", "--eval-every", "5", *TINY)
    assert second.exit_code == 0 and (tmp_path / "checkpoints" / "tiny-2" / "latest.safetensors").is_file()
    sample = invoke("sample", "--length", "30", "--seed", "1")
    assert sample.exit_code == 0 and "tiny-2" in sample.stderr


def test_chinese_emoji_and_crlf_corpus(tmp_path, chinese_text):
    text = chinese_text[:6000].replace("\n", "\r\n") + "完 😀🎉\r\n"
    corpus = tmp_path / "poems.txt"
    corpus.write_bytes(text.encode("utf-8"))
    out = tmp_path / "run"
    result = invoke("train", corpus, "--out", out, "--max-steps", "30", "--eval-every", "15", *TINY)
    assert result.exit_code == 0, result.output
    sample = invoke("sample", out, "--length", "100", "--seed", "3", "--prime", "春风😀")
    assert sample.exit_code == 0, sample.output
    generated = sample.stdout_bytes.decode("utf-8")  # .stdout would fold the \r\n the model writes
    assert generated.startswith("春风😀") and len(generated) == 3 + 100 + 1
    inspect = invoke("inspect", out, "--neuron", "0", "--text", "春风\r\n😀", "--format", "tsv")
    assert inspect.exit_code == 0, inspect.output
    assert [line.split("\t")[1] for line in inspect.stdout.splitlines()[1:]] == ["春", "风", "\\r", "\\n", "😀"]


def test_stdin_corpus_and_stop_string(tmp_path, shakespeare_text):
    out = tmp_path / "run"
    result = invoke("train", "-", "--out", out, "--max-steps", "20", "--eval-every", "20", *TINY,
                    input=shakespeare_text[:10000])
    assert result.exit_code == 0, result.output
    lines = invoke("sample", out, "--num-samples", "4", "--stop", "\\n", "--length", "300", "--seed", "2")
    assert lines.exit_code == 0
    assert len(lines.stdout.rstrip("\n").split("\n")) == 4


@pytest.mark.parametrize("setup, args, message", [
    (None, ["train", "missing.txt"], "missing.txt: no such file or directory"),
    (("empty.txt", b""), ["train", "empty.txt"], "corpus is empty"),
    (("latin.txt", "naïve café".encode("latin-1")), ["train", "latin.txt"], "not valid utf-8 at byte offset 2"),
    (("blob.bin", bytes(range(256)) * 4), ["train", "blob.bin"], "binary"),
    (("bad.safetensors", b"garbage" * 20), ["sample", "bad.safetensors"], "not a readable safetensors"),
    (None, ["sample", "nowhere"], "no such checkpoint file or run directory"),
    (None, ["train", "x.txt", "--time", "five minutes"], "not a duration"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, monkeypatch, setup, args, message):
    monkeypatch.chdir(tmp_path)
    if setup:
        (tmp_path / setup[0]).write_bytes(setup[1])
    result = invoke(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert_no_traceback(result)
    assert len([l for l in result.stderr.splitlines() if l.startswith("Error")]) == 1


def test_model_level_errors(trained_run):
    prime = invoke("sample", trained_run, "--prime", "Hello 世界")
    assert prime.exit_code == 1 and "never saw: '世', '界'" in prime.stderr
    assert_no_traceback(prime)
    neuron = invoke("inspect", trained_run, "--neuron", "48", "--text", "abc")
    assert neuron.exit_code == 1 and "neuron 48 out of range: layer 2 has neurons 0 to 47" in neuron.stderr
    layer = invoke("inspect", trained_run, "--layer", "3", "--text", "abc")
    assert layer.exit_code == 1 and "layers 1 to 2" in layer.stderr
    skip = invoke("sample", trained_run, "--prime", "Hello 世界", "--unknown", "skip", "--length", "5")
    assert skip.exit_code == 0 and skip.stdout.startswith("Hello ")


def test_parse_duration():
    assert parse_duration("90") == 90 and parse_duration("5m") == 300 and parse_duration("1h30m") == 5400


def test_ctrl_c_saves_and_resume_finishes(tmp_path, shakespeare_text):
    """A real process, a real SIGINT: exit 130, latest saved, and --resume carries on to the end."""
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "charlstm", "train", str(corpus), "--out", str(out), "--max-steps", "100000",
           "--eval-every", "100000", *TINY]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    # the hint names charlstm the way it was run here (python -m charlstm), so it works when pasted
    assert "-m charlstm train --resume --out" in stderr and "Traceback" not in stderr
    step = ckpt.load(out / "latest.safetensors").train["step"]
    assert step > 0
    resumed = invoke("train", "--resume", "--out", out, "--max-steps", str(step + 10))
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.load(out / "latest.safetensors").train["step"] == step + 10


def test_hints_name_charlstm_the_way_it_was_run(monkeypatch, tmp_path):
    import shutil

    from charlstm.cli.common import invocation

    fake = tmp_path / "venv" / "bin" / "charlstm"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(fake), "train"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert invocation() == str(fake)                       # not on PATH: the path as typed
    monkeypatch.setenv("PATH", str(fake.parent))
    assert shutil.which("charlstm") == str(fake) and invocation() == "charlstm"
    monkeypatch.setattr(sys, "argv", ["/x/charlstm/__main__.py"])
    assert invocation().endswith(" -m charlstm")
