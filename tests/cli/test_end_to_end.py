"""The real command line end to end, as a user meets it: train → sample → inspect on real text (the
session's `trained_run` trains through `charlstm train`), on Chinese with emoji and CRLF, and from
standard input with a stop string."""

from __future__ import annotations

import json

from conftest import TINY, run_cli


def test_end_to_end_train_sample_inspect(trained_run):
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    vals = [m["val_bpc"] for m in metrics if "val_bpc" in m]
    assert len(vals) == 3 and vals[-1] < vals[0]

    sample = run_cli("sample", trained_run, "--length", "200", "--seed", "5", "--prime", "KING")
    assert sample.exit_code == 0, sample.output
    assert sample.stdout.startswith("KING") and len(sample.stdout) == len("KING") + 200 + 1
    assert "chars/s" in sample.stderr and "chars/s" not in sample.stdout
    again = run_cli("sample", trained_run, "--length", "200", "--seed", "5", "--prime", "KING")
    assert again.stdout == sample.stdout

    tsv = run_cli("inspect", trained_run, "--neuron", "3,7", "--layer", "1", "--text", "To be,\n\tor", "--format",
                  "tsv", "--unknown", "replace")
    assert tsv.exit_code == 0, tsv.output
    rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert rows[0] == ["position", "char", "L1.hidden[3]", "L1.hidden[7]"]
    assert [r[1] for r in rows[1:]] == list("To be,") + ["\\n", " ", "o", "r"]
    assert all(-1.0 <= float(v) <= 1.0 for r in rows[1:] for v in r[2:])

    shown = run_cli("inspect", trained_run, "--neuron", "5", "--vector", "cell", "--text", "Exit ROMEO")
    assert shown.exit_code == 0, shown.output
    assert "Exit ROMEO" in shown.stdout and "min" in shown.stdout and "legend" in shown.stdout
    unseen = run_cli("inspect", trained_run, "--text", "[Exit]")
    assert unseen.exit_code == 1 and "the text has characters this model never saw: '[', ']'" in unseen.stderr


def test_chinese_emoji_and_crlf_corpus(tmp_path, chinese_text):
    text = chinese_text[:6000].replace("\n", "\r\n") + "完 😀🎉\r\n"
    corpus = tmp_path / "poems.txt"
    corpus.write_bytes(text.encode("utf-8"))
    out = tmp_path / "run"
    result = run_cli("train", corpus, "--out", out, "--max-steps", "30", "--eval-every", "15", *TINY)
    assert result.exit_code == 0, result.output
    sample = run_cli("sample", out, "--length", "100", "--seed", "3", "--prime", "春风😀")
    assert sample.exit_code == 0, sample.output
    generated = sample.stdout_bytes.decode("utf-8")  # .stdout would fold the \r\n the model writes
    assert generated.startswith("春风😀") and len(generated) == 3 + 100 + 1
    inspect = run_cli("inspect", out, "--neuron", "0", "--text", "春风\r\n😀", "--format", "tsv")
    assert inspect.exit_code == 0, inspect.output
    assert [line.split("\t")[1] for line in inspect.stdout.splitlines()[1:]] == ["春", "风", "\\r", "\\n", "😀"]


def test_stdin_corpus_and_stop_string(tmp_path, shakespeare_text):
    out = tmp_path / "run"
    result = run_cli("train", "-", "--out", out, "--max-steps", "20", "--eval-every", "20", *TINY,
                    input=shakespeare_text[:10000])
    assert result.exit_code == 0, result.output
    lines = run_cli("sample", out, "--num-samples", "4", "--stop", "\\n", "--length", "300", "--seed", "2")
    assert lines.exit_code == 0
    assert len(lines.stdout.rstrip("\n").split("\n")) == 4
