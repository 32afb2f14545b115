"""training/loop.py on real text: the validation figure falls, a time budget ends the run with a closing
evaluation, and the log keeps every record as strict JSON (no validation text: null, never NaN); a
vocabulary of 100k characters trains within the memory bound, and a model too large for it is refused
before its run is made. (Resume: test_resume.py; divergence: test_divergence.py; saving:
test_saving.py; stopping by signal: test_interrupts.py.)"""

from __future__ import annotations

import re

import pytest

from charlstm.config import ModelConfig, TrainConfig
from charlstm.errors import MemoryBudgetError
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from conftest import MEMORY_BOUND_MB, SEEDED, error_line, measured, metrics, run_cli

MODEL = ModelConfig(vocab_size=1, hidden_size=48, embedding_size=16, num_layers=2)


def _config(**overrides) -> TrainConfig:
    base = dict(batch_size=16, seq_len=48, max_steps=40, time_budget=None, eval_every=20, log_every=1,
                preview_chars=30, warmup_steps=5)
    return TrainConfig(**{**base, **overrides})


def test_validation_bpc_falls(tmp_path, shakespeare_text):
    result = train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=160, eval_every=40, learning_rate=1e-2))
    vals = [m["val_bpc"] for m in metrics(tmp_path / "run") if "val_bpc" in m]
    assert len(vals) == 4
    # Uniform over the ~60 characters is 5.9 bits; 160 tiny steps get well below the unigram plateau.
    assert vals[-1] < 4.2 and vals[-1] < vals[0] - 0.4, vals
    assert result.best_val_bpc == pytest.approx(min(vals), abs=1e-4)
    assert {"latest.safetensors", "best.safetensors", "metrics.jsonl", "samples.txt"} <= {p.name for p in (tmp_path / "run").iterdir()}
    line = metrics(tmp_path / "run")[0]
    assert {"step", "elapsed_s", "train_loss", "lr", "chars_per_s"} <= set(line)


def test_time_budget_stops_training(tmp_path, shakespeare_text):
    result = train(shakespeare_text, tmp_path / "run", MODEL, _config(max_steps=None, time_budget=3.0, eval_every=10_000))
    assert 2.0 < result.elapsed_s < 8.0
    assert result.last_val_bpc is not None  # a final evaluation and checkpoint, even between eval points


def test_no_validation_text_logs_null_not_nan(tmp_path, corpus):
    run = tmp_path / "run"
    result = run_cli("train", corpus, "--out", run, "--val-fraction", "0", "--max-steps", "6", "--eval-every", "3",
                     "--log-every", "1", *SEEDED)
    assert result.exit_code == 0, result.output
    assert "validation n/a (no validation text)" in result.stderr
    assert "best validation n/a (no validation text)" in result.stderr
    lines = metrics(run)  # strict JSON, every line
    evals = [m for m in lines if "val_bpc" in m]
    assert [m["step"] for m in evals] == [3, 6] and all(m["val_bpc"] is None and m["val_loss"] is None for m in evals)
    assert ckpt.load(run / "latest.safetensors").train["last_val_bpc"] is None
    resumed = run_cli("train", "--resume", "--out", run, "--max-steps", "9")
    assert resumed.exit_code == 0, resumed.output
    assert [m["step"] for m in metrics(run) if "val_bpc" in m] == [3, 6, 9]


# ------------------------------------------------------------------------ a very large vocabulary


def test_a_model_too_large_for_memory_is_refused_before_the_run_is_made(wide_corpus, tmp_path):
    """A model whose training cannot fit the memory budget is refused in one line naming what to
    change, before the run folder is made (nothing is written), from the command line and the API."""
    out = tmp_path / "run"
    code, _, err, peak = measured("train", wide_corpus, "--out", out, "--hidden-size", "2048", "--max-steps", "1",
                                  cwd=tmp_path)
    assert code == 1 and peak < MEMORY_BOUND_MB
    assert re.fullmatch(r"Error: training a model of [\d,]+ parameters and 100,001 characters, 64 streams × 100 "
                        r"characters a step, needs about [\d,]+ MiB, over the memory budget of 768 MiB: raise "
                        r"--min-char-count to read rare characters as one symbol, or make --embedding-size and --hidden-size "
                        r"smaller", error_line(err))
    assert not out.exists()
    with pytest.raises(MemoryBudgetError, match="make --embedding-size and --hidden-size smaller"):
        train(wide_corpus.read_text(encoding="utf-8"), out, ModelConfig(vocab_size=1, hidden_size=2048),
              TrainConfig(max_steps=1, time_budget=None))
    assert not out.exists()


def test_a_vocabulary_of_100k_characters_trains_within_the_bound(wide_corpus, tmp_path):
    """The output layer over 100,001 characters is taken in pieces of positions, in training and in
    validation, so a step and an evaluation stay within the bound."""
    out = tmp_path / "run"
    code, _, err, peak = measured("train", wide_corpus, "--out", out, "--hidden-size", "8", "--embedding-size", "8",
                                  "--num-layers", "1", "--batch-size", "16", "--seq-len", "100", "--ema-decay", "0", "--val-fraction", "0.01", "--max-steps", "2",
                                  "--eval-every", "2", "--preview", "0", "--threads", "1", cwd=tmp_path, timeout=600)
    assert code == 0, err[-2000:]
    assert peak < MEMORY_BOUND_MB
    assert [m["step"] for m in metrics(out) if "val_bpc" in m] == [2]


@pytest.mark.slow
def test_the_fitted_model_of_100k_characters_trains_within_the_bound(wide_corpus, tmp_path):
    out = tmp_path / "run"
    code, _, err, peak = measured("train", wide_corpus, "--out", out, "--max-steps", "1", "--eval-every", "1",
                                  "--preview", "0", "--threads", "1", cwd=tmp_path, timeout=1800)
    assert code == 0, err[-2000:]
    assert peak < MEMORY_BOUND_MB and "sized by the memory budget" in err
