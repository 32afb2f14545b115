"""A diverging run (training/checkpoints.py's finiteness guard, the loop's checks): nothing non-finite is
ever written. Every tensor that goes into a checkpoint is checked at the one save, a non-finite gradient
stops the step before the update, and the one line names the step, the last good checkpoint (left byte
for byte as it was) and, only when plausible, a lower --lr."""

from __future__ import annotations


import pytest
import torch

from charlstm.config import ModelConfig, TrainConfig
from charlstm.data.corpus import Corpus
from charlstm.errors import TrainingError
from charlstm.runs import checkpoint as ckpt
from charlstm.runs.folder import Run
from charlstm.training.loop import Trainer, train
from conftest import SEEDED, charlstm_process, error_line, run_cli, run_files, small_config, small_model

MODEL = small_model()


def test_a_diverging_fresh_run_names_step_0_and_writes_nothing_non_finite(tmp_path, corpus):
    run = tmp_path / "run"
    proc = charlstm_process("train", corpus, "--out", run, "--lr", "1e38", "--eval-every", "1", "--max-steps", "5",
                            *SEEDED)
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc.stderr)
    assert line.startswith("Error: training diverged at step 1: ")
    assert "try a lower --lr" in line
    assert f"the last good checkpoint is {run / 'latest.safetensors'} (step 0)" in line
    loaded = ckpt.load(run / "latest.safetensors")  # the one named is loadable: finite weights
    assert loaded.train["step"] == 0
    assert not (run / "best.safetensors").exists()  # no evaluation got to write one
    sample = run_cli("sample", run / "latest.safetensors", "--length", "20", "--seed", "1")
    assert sample.exit_code == 0, sample.output


def test_a_diverging_resume_leaves_latest_and_best_byte_identical(tmp_path, corpus):
    run = tmp_path / "run"
    first = run_cli("train", corpus, "--out", run, "--max-steps", "10", "--eval-every", "5", *SEEDED)
    assert first.exit_code == 0, first.output
    before = run_files(run)
    assert {"latest.safetensors", "best.safetensors", "metrics.jsonl"} <= set(before)

    proc = charlstm_process("train", "--resume", "--out", run, "--lr", "1e38", "--eval-every", "1", "--max-steps", "20")
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc.stderr)
    assert line.startswith("Error: training diverged at step 11: ") and "try a lower --lr" in line
    assert (f"the last good checkpoint is {run / 'latest.safetensors'} (step 10); "
            f"it and best.safetensors are left as they were") in line
    after = run_files(run)
    assert after["latest.safetensors"] == before["latest.safetensors"]
    assert after["best.safetensors"] == before["best.safetensors"]
    assert ckpt.load(run / "latest.safetensors").train["step"] == 10
    # and the run goes on from it as if the divergent attempt had never been
    again = run_cli("train", "--resume", "--out", run, "--max-steps", "12")
    assert again.exit_code == 0, again.output
    assert ckpt.load(run / "latest.safetensors").train["step"] == 12


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path, shakespeare_text):
    """A loss that becomes NaN after good steps stops the run; the checkpoint on disk is a good one."""
    model = ModelConfig(vocab_size=1, hidden_size=48, embedding_size=16, num_layers=2)
    config = TrainConfig(batch_size=16, seq_len=48, max_steps=200, time_budget=None, eval_every=1, log_every=1,
                         preview_chars=30, warmup_steps=0, learning_rate=1e9, grad_clip=1e12)
    with pytest.raises(TrainingError, match="loss became"):
        train(shakespeare_text, tmp_path / "run", model, config)
    loaded = ckpt.load(tmp_path / "run" / "latest.safetensors")  # validated: finite weights only
    assert loaded.train["step"] >= 1


def test_every_tensor_that_goes_into_a_checkpoint_is_checked_at_the_one_save(tmp_path, shakespeare_text):
    """Optimizer moments and the carried state, not only the weights, are checked where every save passes."""
    run = Run(tmp_path / "run")
    run.create()
    corpus = Corpus.from_text(shakespeare_text[:20_000])
    trainer = Trainer(corpus, run, MODEL, small_config(max_steps=4))
    trainer.run()
    before = run_files(run.path)
    for poison in ("moment", "state"):
        trainer = Trainer(corpus, run, None, small_config(max_steps=8), resume=True)
        for _ in range(2):
            trainer.step()
        if poison == "moment":
            moments = next(iter(trainer.optimizer.state.values()))
            moments["exp_avg_sq"].fill_(float("inf"))
        else:
            trainer.state = tuple(torch.full_like(s, float("nan")) for s in trainer.state)
        with pytest.raises(TrainingError) as caught:
            trainer.save(best=True)
        message = str(caught.value)
        assert "became non-finite, so it was not saved" in message
        assert ("optim." if poison == "moment" else "state.") in message
        assert f"the last good checkpoint is {run.latest} (step 4)" in message
        assert run_files(run.path) == before


def test_non_finite_gradients_stop_before_the_update(tmp_path, shakespeare_text, monkeypatch):
    """A gradient norm that is not finite would make every weight NaN through clipping: the step
    stops before the optimizer runs, so the weights in memory are still the good ones."""
    run = Run(tmp_path / "run")
    run.create()
    trainer = Trainer(Corpus.from_text(shakespeare_text[:20_000]), run, MODEL, small_config())
    trainer.save()
    trainer.step()
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, clip: torch.tensor(float("inf")))
    with pytest.raises(TrainingError, match=r"^training diverged at step 1: .*gradient norm of inf .*try a lower --lr"):
        trainer.step()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


def test_the_learning_rate_is_blamed_only_when_plausible(tmp_path, shakespeare_text):
    """A model already non-finite before any update is not the learning rate's doing, and nothing is written."""
    text = shakespeare_text[:20_000]
    run = Run(tmp_path / "init")
    run.create()
    trainer = Trainer(Corpus.from_text(text), run, MODEL, small_config())
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("inf"))  # as a broken initialisation would leave it
    with pytest.raises(TrainingError) as caught:
        trainer.run()
    message = str(caught.value)
    assert message.startswith("training diverged at step 0: ")
    assert "before any update of this session, so not the learning rate" in message
    assert "--lr" not in message
    assert message.endswith("no checkpoint was written")
    assert not (tmp_path / "init" / "latest.safetensors").exists()

    run = Run(tmp_path / "tiny-lr")
    run.create()
    trainer = Trainer(Corpus.from_text(text), run, MODEL, small_config(learning_rate=1e-6))
    trainer.save()
    trainer.step()
    message = str(trainer.writer.diverged("the loss became nan"))
    assert "at a learning rate of 1e-06 the learning rate is an unlikely cause" in message
    assert "try a lower --lr" not in message
