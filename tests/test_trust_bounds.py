"""Issue 15, class 5: work and memory grow with what the user asked for, never with a number typed
or what a file holds, and every limit is one clear line (exit 1).

Real CLI on the tiny model trained by conftest's `trained_run`; memory is measured on real
processes (peak RSS of a child, or VmHWM of a running one)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

import importlib

from charlstm.data import corpus, reading
from charlstm.inspection import selection
from charlstm.probes import tasks
from charlstm.config import SampleConfig
from charlstm.errors import CorpusError, NeuronError

from conftest import run_cli

sample = importlib.import_module("charlstm.generation.sampling")

#: Runs a command and prints the peak RSS (KB) of it alone: the parent's RUSAGE_CHILDREN sees only it.
MEASURE = ("import resource, subprocess, sys\n"
           "r = subprocess.run(sys.argv[1:])\n"
           "print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(r.returncode)\n")


def charlstm(*args: str) -> list[str]:
    return [sys.executable, "-m", "charlstm", *map(str, args)]


def measured(args: list[str], cwd: Path, timeout: float = 120, **kwargs) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr without the measurement, peak RSS in MB) of one real process."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    lines = done.stderr.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith("maxrss "))
    return done.returncode, done.stdout, "\n".join(l for l in lines if not l.startswith("maxrss ")), peak // 1024


def one_error_line(stderr: str) -> str:
    """The one `Error:` line a refused command ends with (a progress bar may come before it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), stderr
    assert sum(line.startswith("Error") for line in lines) == 1 and "Traceback" not in stderr, stderr
    return lines[-1]


# ------------------------------------------------------------------------ numbers typed: spans


@pytest.mark.parametrize("option, spec, message", [
    ("--neuron", "0-999999999", "Error: neuron 999999999 out of range: layer 2 has neurons 0 to 47"),
    ("--neuron", "3,5-99999999999999999999", "Error: neuron 99999999999999999999 out of range"),
    ("--layer", "1-100000000", "Error: layer 100000000 out of range: this model has layers 1 to 2"),
])
def test_huge_spans_are_refused_by_their_end_before_any_list_is_built(trained_run, option, spec, message):
    started = time.perf_counter()
    result = run_cli("inspect", str(trained_run), option, spec, "--text", "To be")
    assert result.exit_code == 1 and result.stderr.strip().startswith(message), result.stderr
    assert time.perf_counter() - started < 30


def test_checking_a_span_costs_nothing_whatever_its_size():
    from charlstm.config import ModelConfig

    config = ModelConfig(vocab_size=10, hidden_size=48, num_layers=2)
    tracemalloc.start()
    started = time.perf_counter()
    for spec, kind in (("0-999999999999", "units"), ("1-100000000000", "layers")):
        with pytest.raises(NeuronError, match="out of range"):
            numbers = selection.parse_numbers(spec, kind)
            selection.pick(config, numbers if kind == "layers" else [1], ["hidden"], numbers if kind == "units" else [0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20 and time.perf_counter() - started < 1.0
    # inside the range a span is listed as before, in order, without repeats
    assert selection.pick(config, [2, 1, 2], ["hidden"], selection.parse_numbers("5-7,6,0", "units")).units == (5, 6, 7, 0)


def test_a_trace_too_big_for_memory_is_one_error_naming_what_fits():
    selection.check_trace_size(20_000, 2, 6, 512)                      # the default analysis length: fine
    with pytest.raises(NeuronError, match=r"1,000,000,000 characters is too long to trace: 2 layer\(s\) × 1 vector\(s\) "
                                          r"× 48 units hold at most 5,592,405 characters"):
        selection.check_trace_size(10**9, 2, 1, 48)


# ------------------------------------------------------------------------ one bounded reader


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_a_prime_file_that_is_not_a_regular_file_is_refused_without_reading(trained_run, tmp_path, source):
    if source == "fifo":
        source = tmp_path / "prime.fifo"
        os.mkfifo(source)                                           # nobody writes: opening it must not block
    done = subprocess.run(charlstm("sample", trained_run, "--prime-file", source, "--length", "5"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert one_error_line(done.stderr) == f"Error: {source}: not a regular file"


def test_a_file_larger_than_the_text_cap_is_refused_from_its_size(trained_run, tmp_path):
    big = tmp_path / "big-prime.txt"
    with open(big, "wb") as f:                                      # sparse: nothing is written, and nothing must be read
        f.truncate(reading.MAX_TEXT_BYTES + 1)
    started = time.perf_counter()
    for args in (["sample", str(trained_run), "--prime-file", str(big)],
                 ["score", str(trained_run), "--text-file", str(big)],
                 ["inspect", str(trained_run), "--text-file", str(big)]):
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == (f"Error: {big}: more than 64 MiB, the most charlstm reads as one text "
                                         "(a corpus file named to train is streamed and may be any size)")
    assert time.perf_counter() - started < 60


def test_endless_standard_input_is_read_only_up_to_the_cap(trained_run, tmp_path):
    yes = subprocess.Popen(["yes", "To be, or not to be"], stdout=subprocess.PIPE)
    try:
        code, out, err, peak = measured(charlstm("score", trained_run, "--text-file", "-"), tmp_path, stdin=yes.stdout)
    finally:
        yes.kill()
        yes.wait()
    assert code == 1 and out == ""
    assert one_error_line(err).startswith("Error: <stdin>: more than 64 MiB, the most charlstm reads as one text")
    assert peak < 1500, f"{peak} MB to refuse 64 MiB of input"


def test_read_text_file_honours_its_limit_and_reads_regular_files_only(tmp_path):
    path = tmp_path / "ten.txt"
    path.write_text("0123456789", encoding="utf-8")
    assert reading.read_text_file(path, limit=10) == "0123456789"
    with pytest.raises(CorpusError, match="ten.txt: more than"):
        reading.read_text_file(path, limit=9)
    with pytest.raises(CorpusError, match="not a regular file"):
        reading.read_text_file(tmp_path)


# ------------------------------------------------------------------------ binary content anywhere


def test_text_with_a_huge_nul_tail_is_refused_in_the_first_pass(tmp_path, shakespeare_text):
    path = tmp_path / "tail.txt"
    text = (shakespeare_text * 2)[:120_000]
    path.write_text(text, encoding="ascii")
    with open(path, "r+b") as f:                                    # 1 GB of NULs after 120 KB of text, sparse
        f.truncate(120_000 + (1 << 30))
    done = subprocess.run(charlstm("prepare", path, "--out", tmp_path / "run"), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert one_error_line(done.stderr) == f"Error: {path}: looks like a binary file (NUL byte at offset 120000); give a text file"
    with pytest.raises(CorpusError, match=r"NUL byte at offset 120000"):
        corpus.prepare([path])


def test_a_nul_deep_in_a_file_is_found_in_every_reader_at_its_exact_offset(tmp_path, trained_run):
    offset = reading.CHUNK_BYTES + 12_345                              # past the first piece read, past any head check
    path = tmp_path / "late.txt"
    path.write_bytes(b"a" * offset + b"\x00" + b"b" * 10)
    message = f"{path}: looks like a binary file (NUL byte at offset {offset}); give a text file"
    for read in (lambda: corpus.prepare([path]), lambda: reading.read_corpus([path]), lambda: reading.read_text_file(path)):
        with pytest.raises(CorpusError) as caught:
            read()
        assert str(caught.value) == message
    small = tmp_path / "late-small.txt"
    small.write_bytes(b"To be, or not to be" * 5000 + b"\x00tail")  # 95 KB: past the old 64 KB head check
    result = run_cli("score", str(trained_run), "--text-file", str(small))
    assert result.exit_code == 1 and "looks like a binary file (NUL byte at offset 95000)" in result.stderr


def test_a_nul_is_binary_in_single_byte_encodings_too(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9 ".encode("latin-1") * 100 + b"\x00")
    with pytest.raises(CorpusError, match=r"NUL character at character 500"):
        reading.read_corpus([path], encoding="latin-1")
    wide = tmp_path / "wide.txt"                                    # UTF-16 text holds NUL bytes, and is text
    wide.write_bytes("wide text\n".encode("utf-16"))
    assert reading.read_corpus([wide], encoding="utf-16") == "wide text\n"


# ------------------------------------------------------------------------ many samples, long samples


def _api_output(run: Path, prime: str, config: SampleConfig) -> str:
    import charlstm

    model, vocab = charlstm.load(run)
    separator = "\n" if config.stop else "\n\n"
    return separator.join((prime + s).rstrip("\n") for s in sample.sample_text(model, vocab, prime, config)) + "\n"


def test_many_samples_run_in_batches_identical_to_the_api_and_prefix_stable(trained_run):
    n = sample.SAMPLE_BATCH + 44                                    # a full batch, then a partial one
    many = run_cli("sample", str(trained_run), "--num-samples", str(n), "--length", "12", "--seed", "4", "--prime", "A")
    assert many.exit_code == 0, many.output
    assert many.stdout == _api_output(trained_run, "A", SampleConfig(length=12, num_samples=n, seed=4))
    first = run_cli("sample", str(trained_run), "--num-samples", str(sample.SAMPLE_BATCH), "--length", "12", "--seed", "4",
                    "--prime", "A")
    # the first batch is exactly what fewer samples give: the random stream changes only beyond it
    assert many.stdout.startswith(first.stdout[:-1])


def test_samples_too_long_to_hold_side_by_side_stream_one_by_one(trained_run, monkeypatch):
    monkeypatch.setattr(sample, "BATCH_CHARS", 0)                   # every sample is a batch of one, streamed
    for args, prime, config in [
        (["--length", "40", "--seed", "9"], "", SampleConfig(length=40, num_samples=3, seed=9)),
        (["--length", "40", "--seed", "9", "--stop", "\\n"], "", SampleConfig(length=40, num_samples=3, seed=9, stop=("\n",))),
        (["--length", "0", "--prime", "To be\n\n"], "To be\n\n", SampleConfig(length=0, num_samples=3)),
        (["--length", "6", "--seed", "3", "--prime", "To be\n\n"], "To be\n\n", SampleConfig(length=6, num_samples=3, seed=3)),
    ]:
        assert sample.batch_size(config) == 1
        result = run_cli("sample", str(trained_run), "--num-samples", "3", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == _api_output(trained_run, prime, config)


def test_a_billion_samples_stream_in_bounded_memory(trained_run, tmp_path):
    """Before: per-sample lists and a state for every sample were allocated up front (7 GB, then a
    traceback) and nothing was printed. Now batches stream: read well past the first batch, then stop."""
    proc = subprocess.Popen(charlstm("sample", trained_run, "--num-samples", "1000000000", "--length", "10",
                                     "--seed", "1"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got, deadline = b"", time.monotonic() + 240
        while got.count(b"\n\n") < 3 * sample.SAMPLE_BATCH and time.monotonic() < deadline:
            chunk = proc.stdout.read1(1 << 16)
            if not chunk:
                break
            got += chunk
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_mb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) // 1024
    finally:
        proc.kill()
        proc.wait()
    assert got.count(b"\n\n") >= 3 * sample.SAMPLE_BATCH, (got[-300:], proc.stderr.read()[-2000:])
    assert peak_mb < 1000, f"{peak_mb} MB for batches of {sample.SAMPLE_BATCH}"


# ------------------------------------------------------------------------ corpus streamed to its file


def test_a_big_corpus_is_streamed_to_its_file_in_flat_memory(tmp_path):
    out = tmp_path / "counter.txt"
    n, count = 100_000, 500                                         # 100 MB of text in lines of 200,001 characters
    code, _, err, peak = measured(charlstm("corpus", "counter", "--count", count, "--min-n", n, "--max-n", n,
                                           "--out", out), tmp_path)
    assert code == 0, err
    assert f"[{count} counter lines, {count * (2 * n + 2):,} characters" in err
    assert out.stat().st_size == count * (2 * n + 2)
    with open(out, "rb") as f:
        assert f.readline() == b"a" * n + b"X" + b"b" * n + b"\n"
    assert peak < 100, f"{peak} MB to write a 100 MB corpus"       # before: the whole text, three times over


def test_streamed_corpus_lines_are_the_library_lines(tmp_path):
    for task in tasks.TASKS:
        assert list(tasks.iter_lines(task, 300, 5)) == tasks.generate(task, 300, 5)
    result = run_cli("corpus", "selective-counter", "--count", "2000", "--seed", "3", "--out", "-")
    assert result.stdout == "".join(line + "\n" for line in tasks.generate("selective-counter", 2000, 3))
    run_cli("corpus", "copy", "--count", "1000", "--seed", "2", "--length", "5", "--out", str(tmp_path / "c.txt"))
    assert (tmp_path / "c.txt").read_text() == "".join(l + "\n" for l in tasks.generate("copy", 1000, 2, length=5))


def test_a_line_length_beyond_reason_is_one_usage_error_before_any_work(tmp_path):
    out = tmp_path / "never.txt"
    done = subprocess.run(charlstm("corpus", "counter", "--max-n", "99999999999", "--out", out), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Error: --max-n is at most 1,000,000, got --max-n=99999999999" in done.stderr
    assert not out.exists()
