"""generation/sampling.py: sampling from a really trained tiny model: seeds, stop strings, top-k / top-p,
primes and the unknown-character policy; many samples run in batches identical to the API and stream
in bounded memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import charlstm
from charlstm.errors import PrimeError
from charlstm.config import SampleConfig
from charlstm.generation import sampling
from charlstm.generation.sampling import _StopFilter, batches, batches_from, next_ids, prepare_prime, sample_text
from conftest import error_line, run_cli, start_charlstm


def test_same_seed_same_text(model_vocab):
    model, vocab = model_vocab
    a = sample_text(model, vocab, "ROMEO:", SampleConfig(length=120, seed=7))
    b = sample_text(model, vocab, "ROMEO:", SampleConfig(length=120, seed=7))
    c = sample_text(model, vocab, "ROMEO:", SampleConfig(length=120, seed=8))
    assert a == b and a != c and len(a[0]) == 120
    assert set(a[0]) <= set(vocab.chars)


def test_batch_of_samples_are_distinct(model_vocab):
    model, vocab = model_vocab
    samples = sample_text(model, vocab, "", SampleConfig(length=80, num_samples=6, seed=1))
    assert len(samples) == 6 and len(set(samples)) == 6 and all(len(s) == 80 for s in samples)


def test_zero_temperature_is_argmax_and_top_k_one_agrees(model_vocab):
    model, vocab = model_vocab
    greedy = sample_text(model, vocab, "First", SampleConfig(length=60, temperature=0))
    top1 = sample_text(model, vocab, "First", SampleConfig(length=60, temperature=1.0, top_k=1, seed=3))
    tiny_p = sample_text(model, vocab, "First", SampleConfig(length=60, temperature=1.0, top_p=1e-6, seed=4))
    assert greedy == top1 == tiny_p


def test_top_k_and_top_p_restrict_the_choice():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    picks_k = {next_ids(logits, SampleConfig(temperature=1.0, top_k=2), gen).item() for _ in range(300)}
    picks_p = {next_ids(logits, SampleConfig(temperature=1.0, top_p=0.7), gen).item() for _ in range(300)}
    picks_all = {next_ids(logits, SampleConfig(temperature=1.0), gen).item() for _ in range(300)}
    assert picks_k == {0, 1} and picks_p == {0, 1} and picks_all == {0, 1, 2, 3}


def test_stop_string_ends_a_sample_and_is_not_emitted(model_vocab):
    model, vocab = model_vocab
    free = sample_text(model, vocab, "", SampleConfig(length=400, seed=11))[0]
    assert "\n" in free
    stopped = sample_text(model, vocab, "", SampleConfig(length=400, seed=11, stop=("\n",)))[0]
    assert stopped == free[: free.index("\n")]


def test_stop_filter_holds_back_partial_matches():
    f = _StopFilter(["END"])
    out = "".join(f.push(c) for c in "abEcdENxEND tail")
    assert out == "abEcdENx" and f.done
    g = _StopFilter(["ab", "b!"])
    assert "".join(g.push(c) for c in "xxb!") == "xx" and g.done


def test_prime_with_unseen_characters(model_vocab):
    _, vocab = model_vocab
    with pytest.raises(PrimeError, match=r"'世', '😀'"):
        prepare_prime(vocab, "To 世 be 😀", "error")
    assert prepare_prime(vocab, "To 世 be", "skip") == "To  be"
    assert prepare_prime(vocab, "To 世 be", "replace") == "To   be"


def test_an_unseen_prime_is_one_line_unless_a_policy_admits_it(trained_run):
    refused = run_cli("sample", trained_run, "--prime", "Hello 世界")
    assert refused.exit_code == 1 and "never saw: '世', '界'" in error_line(refused.stderr)
    assert len([line for line in refused.output.splitlines() if line.strip()]) <= 3
    skip = run_cli("sample", trained_run, "--prime", "Hello 世界", "--unknown", "skip", "--length", "5")
    assert skip.exit_code == 0 and skip.stdout.startswith("Hello ")


def test_sampling_from_an_admitted_prime_is_sampling_under_the_policy(model_vocab):
    """The command line admits its prime once and samples from it (batches_from): the same samples
    as the sampler admitting the raw prime itself."""
    model, vocab = model_vocab
    for policy in ("skip", "replace"):
        config = SampleConfig(length=30, seed=4, num_samples=2, unknown=policy)
        raw = [step for _, steps in batches(model, vocab, "To 世 be", config) for step in steps]
        admitted = [step for _, steps in batches_from(model, vocab, vocab.admit("To 世 be", policy), config)
                    for step in steps]
        assert raw == admitted and len(raw) == 30


def test_python_api_mirrors_cli(trained_run, model_vocab):
    """charlstm.sample and `charlstm sample` give the same text for the same checkpoint, prime and seed."""
    model, vocab = model_vocab
    text = charlstm.sample(model, vocab, prime="KING", length=50, seed=2)
    assert len(text) == 50
    cli = run_cli("sample", str(trained_run), "--prime", "KING", "--length", "50", "--seed", "2")
    assert cli.exit_code == 0, cli.output
    assert cli.stdout == "KING" + text + "\n"   # the CLI echoes the prime, the API does not
    hot = charlstm.sample(model, vocab, prime="KING", length=50, seed=2, temperature=1.5, top_k=5)
    cli_hot = run_cli("sample", str(trained_run), "--prime", "KING", "--length", "50", "--seed", "2",
                      "--temperature", "1.5", "--top-k", "5")
    assert hot != text and cli_hot.stdout == "KING" + hot + "\n"
    t = charlstm.trace(model, vocab, "KING:\nNo.")
    assert t.values(2, "cell", 5).shape == (9,)


# ------------------------------------------------------------------------ many samples, long samples


def _api_output(run: Path, prime: str, config: SampleConfig) -> str:
    model, vocab = charlstm.load(run)
    separator = "\n" if config.stop else "\n\n"
    return separator.join((prime + s).rstrip("\n") for s in sampling.sample_text(model, vocab, prime, config)) + "\n"


def test_many_samples_run_in_batches_identical_to_the_api_and_prefix_stable(trained_run):
    n = sampling.SAMPLE_BATCH + 44                                    # a full batch, then a partial one
    many = run_cli("sample", trained_run, "--num-samples", str(n), "--length", "12", "--seed", "4", "--prime", "A")
    assert many.exit_code == 0, many.output
    assert many.stdout == _api_output(trained_run, "A", SampleConfig(length=12, num_samples=n, seed=4))
    first = run_cli("sample", trained_run, "--num-samples", str(sampling.SAMPLE_BATCH), "--length", "12", "--seed", "4",
                    "--prime", "A")
    # the first batch is exactly what fewer samples give: the random stream changes only beyond it
    assert many.stdout.startswith(first.stdout[:-1])


def test_samples_too_long_to_hold_side_by_side_stream_one_by_one(trained_run, monkeypatch):
    monkeypatch.setattr(sampling, "BATCH_CHARS", 0)                   # every sample is a batch of one, streamed
    for args, prime, config in [
        (["--length", "40", "--seed", "9"], "", SampleConfig(length=40, num_samples=3, seed=9)),
        (["--length", "40", "--seed", "9", "--stop", "\\n"], "", SampleConfig(length=40, num_samples=3, seed=9, stop=("\n",))),
        (["--length", "0", "--prime", "To be\n\n"], "To be\n\n", SampleConfig(length=0, num_samples=3)),
        (["--length", "6", "--seed", "3", "--prime", "To be\n\n"], "To be\n\n", SampleConfig(length=6, num_samples=3, seed=3)),
    ]:
        assert sampling.batch_size(config) == 1
        result = run_cli("sample", trained_run, "--num-samples", "3", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == _api_output(trained_run, prime, config)


def test_a_billion_samples_stream_in_bounded_memory(trained_run, tmp_path):
    """Batches stream, each printed as it ends, in the memory of one batch: read well past the first
    batch of a billion samples, then stop."""
    proc = start_charlstm("sample", trained_run, "--num-samples", "1000000000", "--length", "10", "--seed", "1",
                          cwd=tmp_path, text=False)
    try:
        got, deadline = b"", time.monotonic() + 240
        while got.count(b"\n\n") < 3 * sampling.SAMPLE_BATCH and time.monotonic() < deadline:
            chunk = proc.stdout.read1(1 << 16)
            if not chunk:
                break
            got += chunk
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_mb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) // 1024
    finally:
        proc.kill()
        proc.wait()
    assert got.count(b"\n\n") >= 3 * sampling.SAMPLE_BATCH, (got[-300:], proc.stderr.read()[-2000:])
    assert peak_mb < 1000, f"{peak_mb} MB for batches of {sampling.SAMPLE_BATCH}"
