"""training/fit.py: the model size (and dropout) a run gets when the user chooses none: within the data
cap and the budget cap; what the user gives is kept."""

from __future__ import annotations

import math

from charlstm.runs import checkpoint as ckpt
from charlstm.config import ModelConfig, TrainConfig
from charlstm.training.fit import DATA_RATIO, REFERENCE_PARAMETERS, REFERENCE_SECONDS, compute_cap, fit_model, fitted_config, lstm_parameters
from conftest import TINY, run_cli


def test_parameter_count_matches_the_real_model():
    import torch

    from charlstm.model.network import CharModel

    total, seeing, recurrent = lstm_parameters(65, 96, 2, 64)
    model = CharModel(ModelConfig(vocab_size=65, hidden_size=96, num_layers=2, embedding_size=64))
    assert total == sum(p.numel() for p in model.parameters())
    assert seeing == total - 65 * 64 and recurrent == seeing - (96 * 65 + 65)
    assert lstm_parameters(65, 256, 2, 64)[2] == REFERENCE_PARAMETERS
    del torch


def test_the_budget_grows_the_model_as_the_square_root_of_the_time_and_never_shrinks_it():
    assert compute_cap(REFERENCE_SECONDS, None, 6400) == REFERENCE_PARAMETERS
    assert compute_cap(60, None, 6400) == REFERENCE_PARAMETERS                     # floored at the 2×256
    assert math.isclose(compute_cap(4 * REFERENCE_SECONDS * 10, None, 6400), REFERENCE_PARAMETERS * math.sqrt(40))
    assert compute_cap(None, None, 6400) == math.inf
    assert compute_cap(7200, None, 6400, device="cuda") > 4 * compute_cap(7200, None, 6400)
    shakespeare = [fit_model(1_129_000, 64, seconds, None, 6400) for seconds in (120, 180, 300, 1800, 7200)]
    assert [(f.num_layers, f.hidden_size) for f in shakespeare] == [(2, 256), (2, 256), (2, 256), (2, 384), (2, 512)]
    assert shakespeare[-1].limit == "the budget"


def test_a_tiny_corpus_gets_a_smaller_model_sized_by_the_data():
    fitted = fit_model(5_000, 65, 300, None, 6400)
    _, seeing, _ = lstm_parameters(65, fitted.hidden_size, fitted.num_layers, fitted.embedding_size)
    assert seeing <= DATA_RATIO * 5_000 < lstm_parameters(65, 192, 2, 64)[1]        # the widest that fits
    assert (fitted.num_layers, fitted.hidden_size, fitted.limit) == (2, 128, "the corpus")
    smallest = fit_model(10, 65, 300, None, 6400)
    assert (smallest.num_layers, smallest.hidden_size) == (1, 32)                     # never below the ladder


def test_given_options_are_kept():
    base = ModelConfig(vocab_size=65, hidden_size=32, num_layers=3)
    config = TrainConfig(time_budget=7200)
    kept, fitted = fitted_config(base, 10_000_000, config, keep={"hidden_size"})
    assert fitted is None and (kept.hidden_size, kept.num_layers, kept.embedding_size) == (32, 3, 32)
    fitted_model, fitted = fitted_config(ModelConfig(vocab_size=65), 10_000_000, config, keep={"embedding_size"})
    assert fitted_model.hidden_size == 512 and fitted_model.embedding_size == 64


def test_train_fits_the_model_it_is_not_given_and_says_so(tmp_path, shakespeare_text):
    corpus = tmp_path / "short.txt"
    corpus.write_text(shakespeare_text[:4_000], encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("train", str(corpus), "--out", str(out), "--max-steps", "3", "--batch-size", "8",
                     "--seq-len", "32")
    assert result.exit_code == 0, result.output
    saved = ckpt.load(out / "latest.safetensors").config
    expected = fit_model(3_800, len(set(shakespeare_text[:4_000])), None, 3, 8 * 32)
    assert (saved.num_layers, saved.hidden_size) == (expected.num_layers, expected.hidden_size)
    assert saved.hidden_size < 256
    assert f"model {saved.num_layers}×{saved.hidden_size} fitted to 3,800 training characters" in result.stderr
    # given a width, nothing is fitted and nothing said; a resumed run keeps its model
    given = run_cli("train", str(corpus), "--out", str(tmp_path / "given"), "--max-steps", "3", *TINY)
    assert given.exit_code == 0 and "fitted to" not in given.stderr
    assert ckpt.load(tmp_path / "given" / "latest.safetensors").config.hidden_size == 48
    resumed = run_cli("train", "--resume", "--out", str(out), "--max-steps", "5")
    assert resumed.exit_code == 0 and "fitted to" not in resumed.stderr
    assert ckpt.load(out / "latest.safetensors").config == saved


def test_dropout_follows_the_passes_the_budget_plans():
    from charlstm.training.fit import DROPOUT_EPOCHS, FITTED_DROPOUT, planned_epochs

    # a steps budget counts its passes exactly
    assert planned_epochs(64_000, REFERENCE_PARAMETERS, None, 100, 6400) == 10.0
    assert planned_epochs(64_000, REFERENCE_PARAMETERS, 10_000, 100, 6400) == 10.0        # the fewer of the two
    assert planned_epochs(64_000, REFERENCE_PARAMETERS, None, None, 6400) == math.inf
    # a time budget at the reference rate, never faster than the 2×256's, slower when larger
    at_reference = planned_epochs(100_000, REFERENCE_PARAMETERS, REFERENCE_SECONDS, None, 6400)
    assert math.isclose(at_reference, REFERENCE_PARAMETERS * 3.4 / 100_000)
    assert planned_epochs(100_000, 1_000, REFERENCE_SECONDS, None, 6400) == at_reference
    assert math.isclose(planned_epochs(100_000, 2 * REFERENCE_PARAMETERS, REFERENCE_SECONDS, None, 6400), at_reference / 2)
    assert planned_epochs(100_000, REFERENCE_PARAMETERS, 60, None, 6400, device="cuda") > 10 * at_reference / 3
    # tiny-shakespeare in 5 minutes plans a few passes: no dropout; 100k characters in 2 minutes, many
    assert fit_model(1_003_000, 65, 300, None, 6400).dropout == 0.0
    small = fit_model(95_000, 65, 120, None, 6400)
    assert small.epochs >= DROPOUT_EPOCHS and small.dropout == FITTED_DROPOUT
    assert fit_model(64_000, 65, None, 99, 6400).dropout == 0.0 and fit_model(64_000, 65, None, 100, 6400).dropout == 0.2
    assert "dropout 0.2 for ~20 planned passes" in small.describe("2 min")


def test_dropout_given_or_a_shape_given_is_kept():
    config = TrainConfig(time_budget=None, max_steps=10_000)
    model, fitted = fitted_config(ModelConfig(vocab_size=65, dropout=0.05), 10_000, config, keep={"dropout"})
    assert model.dropout == 0.05 and fitted.dropout == 0.05 and model.hidden_size < 256      # the size is still fitted
    model, fitted = fitted_config(ModelConfig(vocab_size=65), 10_000, config)
    assert model.dropout == 0.2 and fitted.dropout == 0.2
    model, fitted = fitted_config(ModelConfig(vocab_size=65, hidden_size=64), 10_000, config, keep={"hidden_size"})
    assert fitted is None and model.dropout == 0.0


def test_train_on_a_small_corpus_with_many_passes_trains_with_dropout(tmp_path, shakespeare_text):
    corpus = tmp_path / "short.txt"
    corpus.write_text(shakespeare_text[:3_000], encoding="utf-8")
    out = tmp_path / "run"
    # 12 steps of 8 × 32 characters over ~2,850 training characters: ~1 pass, no dropout; 144 steps (the
    # first third in half windows, so as many characters as 120 whole ones): ~11, dropout
    few = run_cli("train", str(corpus), "--out", str(tmp_path / "few"), "--max-steps", "12", "--batch-size", "8",
                  "--seq-len", "32", "--eval-every", "1000")
    assert few.exit_code == 0, few.output
    assert ckpt.load(tmp_path / "few" / "latest.safetensors").config.dropout == 0.0 and "no dropout" in few.stderr
    many = run_cli("train", str(corpus), "--out", str(out), "--max-steps", "144", "--batch-size", "8",
                   "--seq-len", "32", "--eval-every", "1000")
    assert many.exit_code == 0, many.output
    assert ckpt.load(out / "latest.safetensors").config.dropout == 0.2 and "dropout 0.2 for ~11 planned passes" in many.stderr
    given = run_cli("train", str(corpus), "--out", str(tmp_path / "given"), "--max-steps", "120", "--batch-size", "8",
                    "--seq-len", "32", "--eval-every", "1000", "--dropout", "0")
    assert given.exit_code == 0, given.output
    assert ckpt.load(tmp_path / "given" / "latest.safetensors").config.dropout == 0.0 and "no dropout" in given.stderr
