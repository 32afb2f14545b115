"""Sampling from a really trained tiny model: seeds, stop strings, top-k / top-p, primes."""

from __future__ import annotations

import pytest
import torch

import charlstm
from conftest import run_cli
from charlstm.errors import PrimeError
from charlstm.config import SampleConfig
from charlstm.generation.sampling import _StopFilter, batches, batches_from, next_ids, prepare_prime, sample_text


@pytest.fixture(scope="module")
def model_vocab(trained_run):
    return charlstm.load(trained_run)


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
