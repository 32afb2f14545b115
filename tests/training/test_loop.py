"""training/loop.py on real text: the validation figure falls, a time budget ends the run with a closing
evaluation, and the log keeps every record as strict JSON (no validation text: null, never NaN). (Resume:
test_resume.py; divergence: test_divergence.py; saving: test_saving.py; stopping by signal:
test_interrupts.py.)"""

from __future__ import annotations

import pytest

from charlstm.config import ModelConfig, TrainConfig
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from conftest import SEEDED, metrics, run_cli

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
