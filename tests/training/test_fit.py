"""training/fit.py: the model size (and dropout) a run gets when the user chooses none: within the data
cap and the budget cap; what the user gives is kept. The learning rate that follows the width, and the
probe tasks it lets a 10-unit model learn with the defaults."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

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


def test_a_narrower_model_trains_at_a_higher_rate_a_wider_one_at_the_default():
    from charlstm.training.fit import LEARNING_RATE_WIDTH, fitted_rate, scaled_rate

    rate = TrainConfig.learning_rate
    assert fitted_rate(LEARNING_RATE_WIDTH) == rate and fitted_rate(512) == rate and fitted_rate(2048) == rate
    assert [fitted_rate(width) for width in (10, 48, 64, 128, 192)] == [0.025, 0.012, 0.01, 0.0071, 0.0058]
    assert math.isclose(scaled_rate(rate, LEARNING_RATE_WIDTH, 64), 2 * rate)   # a quarter of the inputs: twice the rate
    rates = [fitted_rate(width) for width in range(1, 300)]
    assert rates == sorted(rates, reverse=True)


@pytest.mark.parametrize("task", ["counter", "selective-counter", "memorizer"])
def test_the_probe_tasks_train_with_the_defaults(tmp_path, task):
    """Issue 32: `charlstm train` of a 1×10 model for 1,500 steps, no recipe typed, learns each probe
    task: it answers from a fresh start after a line break, as `charlstm sample --prime $'\\naaaX'
    --temperature 0` reads it, and after other lines, as in the training stream (at lr 5e-3, the
    rate every width took before, seed 1 answered 0 of 10 counter prompts, 4 of 10 selective counter
    prompts and 18 of 20 memorizer prompts from a fresh start: benchmarks/defaults.py --probes)."""
    import torch

    from charlstm.probes import recipes, tasks

    corpus, out = tmp_path / "probe.txt", tmp_path / "run"
    assert run_cli("corpus", task, "--out", str(corpus), "--seed", "1").exit_code == 0
    result = run_cli("train", str(corpus), "--out", str(out), "--hidden-size", "10", "--num-layers", "1",
                     "--max-steps", "1500", "--seq-len", "64", "--batch-size", "32", "--seed", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "learning rate 0.025 for a model 10 units wide (--lr chooses it)" in result.stderr
    saved = ckpt.load(out / "best.safetensors")
    assert saved.run_info.train_config.learning_rate == 0.025
    model = saved.model(torch.device("cpu"))
    if task == "memorizer":  # each letter over each gap
        lines = [letter + "x" * gap + "Y" + letter.lower() for gap in range(1, 11) for letter in "AB"]
    else:  # one line of each length N = 1..10
        lines = [next(line for line in tasks.generate(task, 200, 5) if line.count("b") == n) for n in range(1, 11)]
    fresh, written = recipes.solves(model, saved.vocab, task, lines, ["\n"] * len(lines))
    assert sum(fresh) >= 0.9 * len(lines), list(zip(lines, written))
    held = tasks.generate(task, 100, 99)
    in_stream, _ = recipes.solves(model, saved.vocab, task, held, recipes.prompt_contexts(task, 101, 98)[1:])
    assert sum(in_stream) >= 0.9 * len(held)
    if task == "memorizer":
        return
    # The atlas, asked nothing, lists the counting unit first or second, its label held on the other half,
    # holding it at its mean costs more than the median unit, and it names the characters it promotes.
    text = tmp_path / "held-out.txt"
    text.write_text("".join(line + "\n" for line in held), encoding="utf-8")
    atlas = run_cli("inspect", str(out), "--atlas", "--text-file", str(text), "--format", "json", "--threads", "1")
    assert atlas.exit_code == 0, atlas.output
    units = json.loads(atlas.stdout)["units"]
    counting = next(u for u in units[:2] if u["feature"] == "balance:ab")
    assert abs(counting["partial_r"]) >= 0.9 and abs(counting["heldout_r"]) >= 0.9 and counting["verdict"] == "tracks"
    costs = [u["ablation_bpc"] for u in units if u["ablation_bpc"] is not None]
    assert counting["ablation_bpc"] > float(np.median(costs)) and counting["promotes"]


def test_a_rate_typed_or_a_resumed_run_keeps_its_rate(tmp_path, shakespeare_text):
    corpus = tmp_path / "short.txt"
    corpus.write_text(shakespeare_text[:20_000], encoding="utf-8")
    narrow = ["--hidden-size", "48", "--embedding-size", "16", "--batch-size", "16", "--seq-len", "48", "--max-steps", "2"]
    typed = run_cli("train", str(corpus), "--out", str(tmp_path / "typed"), *narrow, "--lr", "5e-3")
    assert typed.exit_code == 0 and "learning rate" not in typed.stderr
    assert ckpt.load(tmp_path / "typed" / "latest.safetensors").run_info.train_config.learning_rate == 5e-3
    wide = run_cli("train", str(corpus), "--out", str(tmp_path / "wide"), "--max-steps", "2", "--hidden-size", "256",
                   "--batch-size", "4", "--seq-len", "16")
    assert wide.exit_code == 0 and "learning rate" not in wide.stderr
    assert ckpt.load(tmp_path / "wide" / "latest.safetensors").run_info.train_config.learning_rate == 5e-3
    fitted = run_cli("train", str(corpus), "--out", str(tmp_path / "narrow"), *narrow)
    assert fitted.exit_code == 0 and "learning rate 0.012 for a model 48 units wide" in fitted.stderr
    resumed = run_cli("train", "--resume", "--out", str(tmp_path / "narrow"), "--max-steps", "4")
    assert resumed.exit_code == 0 and "learning rate" not in resumed.stderr
    assert ckpt.load(tmp_path / "narrow" / "latest.safetensors").run_info.train_config.learning_rate == 0.012
