"""model/average.py: the moving average of the weights: how it folds each update in, what a run
evaluates and saves (the better of the weights and their average, the other beside it), how a run
without one resumes, and how the progress lines say which one the model is. (A damaged weight beside
the model is refused on resume: tests/training/test_resume.py; the live view's figure:
tests/views/test_live.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from charlstm.runs import checkpoint as ckpt
from charlstm.model.average import AVERAGE_PREFIX, TRAINING_PREFIX, WeightAverage, warm_decay
from charlstm.data.corpus import Corpus
from charlstm.data.streams import split
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.config import TrainConfig
from charlstm.training.loop import train
from charlstm.training.validation import evaluate
from conftest import run_cli

MODEL = ModelConfig(vocab_size=1, hidden_size=48, embedding_size=16, num_layers=2)


def _config(**overrides) -> TrainConfig:
    base = dict(batch_size=16, seq_len=48, max_steps=40, time_budget=None, eval_every=20, log_every=5, preview_chars=0)
    return TrainConfig(**{**base, **overrides})


def test_the_average_folds_each_update_in_with_the_warm_decay():
    torch.manual_seed(0)
    model = CharModel(ModelConfig(vocab_size=7, hidden_size=4, embedding_size=3, num_layers=1))
    average = WeightAverage(model, decay=0.9)
    expected = None
    for n in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(model)
        current = {k: v.clone() for k, v in model.state_dict().items()}
        if expected is None:  # the first update copies
            expected = current
        else:
            d = warm_decay(0.9, n)
            expected = {k: d * expected[k] + (1 - d) * current[k] for k in expected}
    assert average.updates == 30
    assert warm_decay(0.9, 0) == pytest.approx(0.1) and warm_decay(0.9, 1000) == 0.9
    for name, tensor in average.model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(average.model.state_dict()["head.weight"], model.state_dict()["head.weight"])


def _beside(saved, prefix):
    return {k[len(prefix):]: v for k, v in saved.tensors.items() if k.startswith(prefix)}


def _score(config, state, val):
    model = CharModel(config)
    model.load_state_dict(state)
    return evaluate(model, val, 48, torch.device("cpu"))


@pytest.mark.parametrize("steps, averaged", [(60, False), (400, True)])
def test_each_evaluation_keeps_the_better_of_the_weights_and_their_average(tmp_path, shakespeare_text, steps, averaged):
    """What the average is for, on real text: at a constant learning rate (no decay here) the weights
    jitter about a better point and, once the loss has flattened (400 steps over 20k characters), the
    average sits nearer it; while the loss still falls fast (60 steps) it lags, and the training
    weights are kept. Either way the model saved is the one that scored better, the other is beside
    it, and the log shows both figures."""
    text = shakespeare_text[:20_000]
    config = _config(max_steps=steps, eval_every=steps, learning_rate=1e-2, decay_fraction=0.0)
    train(text, tmp_path / "run", MODEL, config)
    saved = ckpt.load(tmp_path / "run" / "latest.safetensors")
    other = _beside(saved, AVERAGE_PREFIX if not averaged else TRAINING_PREFIX)
    assert set(other) == set(saved.model_state)
    assert not _beside(saved, TRAINING_PREFIX if not averaged else AVERAGE_PREFIX)
    _, val = split(Corpus.from_text(text).ids, config.val_fraction)
    model_bpc, other_bpc = _score(saved.config, saved.model_state, val), _score(saved.config, other, val)
    assert model_bpc < other_bpc, (model_bpc, other_bpc)
    last = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["averaged"] is averaged
    assert last["val_bpc"] == pytest.approx(model_bpc, abs=1e-4)
    assert last["training_val_bpc"] == pytest.approx(other_bpc if averaged else model_bpc, abs=1e-4)
    assert saved.run_info.last_val_bpc == pytest.approx(model_bpc, abs=1e-4)


def test_ema_decay_0_saves_the_training_weights_alone(tmp_path, shakespeare_text):
    result = run_cli("train", "-", "--out", tmp_path / "run", "--max-steps", "6", "--ema-decay", "0",
                     "--hidden-size", "16", "--batch-size", "4", "--seq-len", "16", "--preview", "0",
                     input=shakespeare_text[:20_000])
    assert result.exit_code == 0, result.output
    saved = ckpt.load(tmp_path / "run" / "latest.safetensors")
    assert saved.run_info.train_config.ema_decay == 0.0
    assert not [k for k in saved.tensors if k.startswith(TRAINING_PREFIX)]


def test_a_run_saved_before_the_average_existed_resumes_without_one(tmp_path, corpus):
    """A checkpoint whose recipe has no ema_decay (written by an earlier version) goes on as it was:
    its model tensors are the training weights, and no average is started under it."""
    result = run_cli("train", corpus, "--out", tmp_path / "run", "--max-steps", "10", "--ema-decay", "0",
                     "--hidden-size", "16", "--batch-size", "4", "--preview", "0")
    assert result.exit_code == 0, result.output
    path = tmp_path / "run" / "latest.safetensors"
    saved = ckpt.load(path)
    info = dict(saved.train)
    info["train_config"] = {k: v for k, v in info["train_config"].items() if k != "ema_decay"}
    ckpt.save(path, ckpt.Checkpoint(saved.config, saved.vocab, saved.model_state, info, saved.tensors))
    result = run_cli("train", "--resume", "--out", tmp_path / "run", "--max-steps", "14")
    assert result.exit_code == 0, result.output
    after = ckpt.load(path)
    assert after.run_info.step == 14 and after.run_info.train_config.ema_decay == 0.0
    assert not [k for k in after.tensors if k.startswith(TRAINING_PREFIX)]


def test_the_progress_lines_say_when_the_model_is_the_average(tmp_path, corpus):
    import re

    result = run_cli("train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "400", "--eval-every", "400",
                     "--lr-decay", "0", "--lr", "1e-2", "--hidden-size", "48", "--embedding-size", "16",
                     "--batch-size", "16", "--seq-len", "48", "--preview", "0")
    assert result.exit_code == 0, result.output
    shown = re.search(r"── step 400: validation ([\d.]+) bits/char \(the weights' moving average; "
                      r"the weights themselves ([\d.]+)\) ──", result.stderr)
    assert shown, result.stderr[-500:]
    last = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert float(shown[1]) == pytest.approx(last["val_bpc"], abs=6e-4) and float(shown[1]) < float(shown[2])
    assert float(shown[2]) == pytest.approx(last["training_val_bpc"], abs=6e-4)
