"""`charlstm inspect` (cli/neurons.py) through the real CLI on a really trained model: views, dumps
that round-trip to the trace, top windows, gate saturation, and every bad request as one line; on
long texts, values written as a stream in bounded memory and a view that cannot fit refused in one
line (peak memory measured in a real process)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from charlstm.runs import checkpoint as ckpt
from conftest import MEMORY_BOUND_MB, error_line, long_text, measured, read_peak, run_cli, unescape_text
from charlstm.inspection.tracing import trace

TEXT = "KING RICHARD III:\nNow is the winter of our discontent\n  Made glorious summer by this sun of York;"
VECTORS = ["input", "forget", "candidate", "output", "cell", "hidden"]


@pytest.fixture(scope="module")
def reference(trained_run):
    """The library's own trace of TEXT, to check what the CLI prints against."""
    loaded = ckpt.load(ckpt.resolve(trained_run))
    return trace(loaded.model(), loaded.vocab, TEXT)


def test_all_vectors_view_stacks_six_strips(trained_run):
    result = run_cli("inspect", trained_run, "--neuron", "7", "--all-vectors", "--text", TEXT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("layer 2 · neuron 7")
    # Each line of the text appears once per vector, the rows of one line one after another.
    rows = [line for line in lines if "│Now is the winter" in line]
    assert [row.split("│")[0].strip() for row in rows] == VECTORS
    assert sum("↵" in line for line in lines) >= 6
    assert sum(line.startswith("cell") and "min" in line for line in lines) == 1
    assert "gates:" in result.stdout and "tanh:" in result.stdout


def test_tsv_and_json_round_trip_to_the_trace(trained_run, reference):
    args = ["inspect", trained_run, "--neuron", "1,5", "--layer", "all", "--all-vectors", "--text", TEXT]
    tsv = run_cli(*args, "--format", "tsv")
    assert tsv.exit_code == 0, tsv.output
    header, *rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert header[:2] == ["position", "char"] and len(header) == 2 + 2 * 2 * 6
    assert header[2:8] == [f"L1.{v}[1]" for v in VECTORS] and header[-1] == "L2.hidden[5]"
    assert len(rows) == len(TEXT) and "".join(unescape_text(r[1]) for r in rows) == TEXT
    assert [int(r[0]) for r in rows] == list(range(len(TEXT)))

    js = run_cli(*args, "--format", "json")
    data = json.loads(js.stdout)
    assert data["text"] == TEXT and data["layers"] == [1, 2] and data["vectors"] == VECTORS and data["neurons"] == [1, 5]
    for k, name in enumerate(header[2:]):
        layer, vector, unit = int(name[1]), name[3 : name.index("[")], int(name[name.index("[") + 1 : -1])
        want = reference.values(layer, vector, unit)
        from_tsv = torch.tensor([float(r[2 + k]) for r in rows])
        from_json = torch.tensor(data["traces"][name])
        torch.testing.assert_close(from_tsv, want, rtol=1e-5, atol=1e-6, msg=name)
        torch.testing.assert_close(from_json, want, rtol=0, atol=1e-6, msg=name)


def test_top_windows(trained_run, reference):
    result = run_cli("inspect", trained_run, "--top", "2", "--neuron", "11", "--vector", "cell", "--text", TEXT,
                    "--window", "20", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    values = reference.values(2, "cell", 11)
    positive = [w for w in data["windows"] if w["kind"] == "positive"]
    negative = [w for w in data["windows"] if w["kind"] == "negative"]
    assert len(positive) == len(negative) == 2
    assert positive[0]["value"] == pytest.approx(values.max().item(), abs=1e-5)
    assert negative[0]["value"] == pytest.approx(values.min().item(), abs=1e-5)
    for w in data["windows"]:
        assert w["text"] == TEXT[w["start"] : w["end"]] and w["start"] <= w["peak"] < w["end"]
        assert w["value"] == pytest.approx(values[w["peak"]].item(), abs=1e-5)
    shown = run_cli("inspect", trained_run, "--top", "2", "--neuron", "11", "--text", TEXT, "--window", "20")
    assert shown.exit_code == 0 and "highest values" in shown.stdout and "lowest values" in shown.stdout
    tsv = run_cli("inspect", trained_run, "--top", "1", "--neuron", "11", "--text", TEXT, "--format", "tsv")
    assert tsv.stdout.splitlines()[0] == "kind\trank\tvalue\tpeak\tstart\tend\ttext"
    assert all(len(line.split("\t")) == 7 for line in tsv.stdout.splitlines())


def test_stats_over_the_tail_of_the_training_corpus(trained_run):
    result = run_cli("inspect", trained_run, "--stats", "--format", "json", "--length", "3000")
    assert result.exit_code == 0, result.output
    # The run recorded its corpus file: the text is its held-out tail (cut to start at a line).
    assert re.search(r"reading the last 2,9\d\d characters of the training corpus plays.txt \(all held out from "
                     r"training\)", result.stderr), result.stderr
    data = json.loads(result.stdout)
    assert 2900 <= data["characters"] <= 3000 and (data["low"], data["high"]) == (0.1, 0.9)
    assert [(g["layer"], g["gate"]) for g in data["gates"]] == [(layer, gate) for layer in (1, 2)
                                                                for gate in ("input", "forget", "output")]
    for gate in data["gates"]:
        assert len(gate["left"]) == len(gate["right"]) == 48
        assert all(0 <= l + r <= 1 + 1e-9 for l, r in zip(gate["left"], gate["right"]))
        assert gate["left_mean"] == pytest.approx(sum(gate["left"]) / 48, abs=1e-5)
    table = run_cli("inspect", trained_run, "--stats", "--layer", "2", "--text", TEXT)
    assert table.exit_code == 0 and "forget" in table.stdout and "mostly right" in table.stdout
    tsv = run_cli("inspect", trained_run, "--stats", "--text", TEXT, "--format", "tsv")
    assert len(tsv.stdout.splitlines()) == 1 + 2 * 3 * 48


@pytest.mark.parametrize("args, message", [
    (["--vector", "gates"], "Error: vector 'gates' not recorded for a lstm cell; choose from input, forget"),
    (["--neuron", "48"], "Error: neuron 48 out of range: layer 2 has neurons 0 to 47"),
    (["--layer", "3"], "Error: layer 3 out of range: this model has layers 1 to 2"),
    (["--find", "quotes"], "Error: unknown feature 'quotes'; valid names: double-quote"),
    (["--find", "regex:(unclosed"], "Error: feature 'regex:(unclosed': invalid regular expression"),
    (["--find-regex", "[a-"], "Error: invalid regular expression '[a-'"),
    (["--find", "uppercase", "--layer", "3"], "Error: layer 3 out of range: this model has layers 1 to 2"),
    (["--top", "3", "--neuron", "99"], "Error: neuron 99 out of range"),
    (["--find", "digit"], "Error: the feature is 0 at every character of this text"),
])
def test_bad_requests_are_one_line_errors(trained_run, args, message):
    result = run_cli("inspect", trained_run, "--text", TEXT, *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


@pytest.mark.parametrize("args, message", [
    (["--find", "uppercase", "--stats"], "--find and --stats cannot be combined"),
    (["--top", "3"], "--top lists the windows of one neuron: give --neuron K"),
    (["--find", "uppercase", "--vector", "cell,hidden"], "--find and --top look at one vector"),
    (["--find", "uppercase", "--find-regex", "x"], "not both"),
    (["--neuron", "a,b"], "give neurons like 42"),
    (["--html", "x.html", "--format", "tsv"], "--format does not apply"),
])
def test_usage_errors(trained_run, args, message):
    result = run_cli("inspect", trained_run, "--text", TEXT, *args)
    assert result.exit_code == 2 and message in result.stderr


# ------------------------------------------------------------------------------- long texts, memory


@pytest.mark.parametrize("fmt", ["tsv", "json"])
def test_a_long_text_s_values_are_written_as_a_stream(tiny_run, tmp_path, shakespeare_text, fmt):
    """Every character's value is written without the whole output or the whole trace in memory:
    six times the text costs a few bytes per character more (once, ~400), within the bound."""
    peaks = {}
    for chars in (200_000, 1_200_000):
        path = long_text(tmp_path / f"{chars}.txt", chars, shakespeare_text)
        out, peaks[chars] = read_peak("inspect", tiny_run, path, "--neuron", "1", "--format", fmt, cwd=tmp_path)
        if fmt == "tsv":
            lines = out.splitlines()
            assert lines[0] == "position\tchar\tL1.hidden[1]" and len(lines) == chars + 1
            assert lines[-1].startswith(f"{chars - 1}\t")
        else:
            data = json.loads(out)
            assert len(data["chars"]) == len(data["traces"]["L1.hidden[1]"]) == chars and len(data["text"]) == chars
    assert peaks[1_200_000] < MEMORY_BOUND_MB and peaks[1_200_000] - peaks[200_000] < 100, peaks


@pytest.mark.slow
@pytest.mark.parametrize("fmt, chars", [("tsv", 10_000_000), ("json", 10_000_000), ("text", 1_000_000)])
def test_megabytes_of_values_stay_within_the_bound(tiny_run, tmp_path, shakespeare_text, fmt, chars):
    """Ten megabytes of values as TSV and JSON, and a megabyte drawn in the terminal (a line at a time)."""
    path = long_text(tmp_path / "big.txt", chars, shakespeare_text)
    out, peak = read_peak("inspect", tiny_run, path, "--neuron", "1", "--format", fmt, cwd=tmp_path)
    assert peak < MEMORY_BOUND_MB and len(out) > chars


def test_find_over_a_text_too_long_to_rank_is_refused_in_one_line(tiny_run, tmp_path, shakespeare_text):
    """--find keeps every unit at every character: a text too long for that is refused in one line
    naming the most that fits, before the trace, within the bound."""
    path = long_text(tmp_path / "long.txt", 4_000_000, shakespeare_text)
    code, out, err, peak = measured("inspect", tiny_run, "--text-file", path, "--find", "whitespace", "--threads", "1",
                                    cwd=tmp_path, timeout=600)
    assert code == 1 and out == "" and peak < MEMORY_BOUND_MB
    assert re.fullmatch(r"Error: 4,000,000 characters is too long to rank units over: 1 layer\(s\) × 1 vector\(s\) × 8 "
                        r"units hold at most [\d,]+ characters in the memory budget of 768 MiB; give a shorter text or "
                        r"--length, or pick fewer layers and vectors", error_line(err))


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--stats"], ["--top", "3", "--neuron", "2"], ["--neuron", "0-7", "--format", "tsv"]])
def test_stats_top_and_all_units_of_a_long_text_stay_within_the_bound(tiny_run, tmp_path, shakespeare_text, args):
    path = long_text(tmp_path / "long.txt", 5_000_000, shakespeare_text)
    out, peak = read_peak("inspect", tiny_run, path, *args, cwd=tmp_path)
    assert peak < MEMORY_BOUND_MB and out


def test_a_page_of_a_model_with_a_huge_vocabulary_is_refused_or_drawn_within_the_bound(tmp_path):
    """A page keeps no logits (the browser computes the guesses under a hovered character): with 100,001
    characters in the vocabulary the default page of 20,000 characters is drawn, whole, within the bound."""
    import torch

    from charlstm.config import ModelConfig
    from charlstm.data.vocab import Vocab
    from charlstm.model.network import CharModel

    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 20_000)] + [chr(c) for c in range(0x20000, 0x20000 + 80_001)]
    config = ModelConfig(vocab_size=len(chars), hidden_size=8, embedding_size=4, num_layers=1)
    torch.manual_seed(0)
    model = ckpt.save(tmp_path / "wide.safetensors", ckpt.Checkpoint(config, Vocab(chars), CharModel(config).state_dict()))
    text = tmp_path / "text.txt"
    text.write_text("".join(chars[(7 * i) % len(chars)] for i in range(20_000)), encoding="utf-8")
    code, _, err, peak = measured("inspect", model, "--html", tmp_path / "page.html", "--text-file", text,
                                  "--threads", "1", cwd=tmp_path, timeout=600)
    assert code == 0, err[-2000:]
    assert peak < MEMORY_BOUND_MB and "20,000 characters" in err and "shows the first" not in err


def test_a_page_of_a_model_too_big_to_draw_is_refused_before_any_work(tmp_path):
    """Drawing a page holds the model's weights several times over (views.page.page_need): a model
    whose page cannot fit the memory budget is refused up front in one line, within the bound, and
    no page is written."""
    import torch

    from charlstm.config import ModelConfig
    from charlstm.data.vocab import Vocab
    from charlstm.model.network import CharModel

    config = ModelConfig(vocab_size=30, hidden_size=2048, embedding_size=4, num_layers=1)
    torch.manual_seed(0)
    vocab = Vocab([chr(c) for c in range(97, 127)])
    model = ckpt.save(tmp_path / "big.safetensors", ckpt.Checkpoint(config, vocab, CharModel(config).state_dict()))
    code, _, err, peak = measured("inspect", model, "--html", tmp_path / "page.html", "--text", "abc" * 100,
                                  "--threads", "1", cwd=tmp_path, timeout=600)
    assert code == 1 and peak < MEMORY_BOUND_MB and not (tmp_path / "page.html").exists()
    assert re.fullmatch(r"Error: a page of this model holds its [\d,]+ weights several times over while it is drawn: "
                        r"needs about [\d,]+ MiB, over the memory budget of 768 MiB; explore it with the terminal's "
                        r"views \(inspect --atlas, --find, --top\)", error_line(err)), err
