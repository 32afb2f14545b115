"""training/clock.py: evaluation on the clock. A short timed run shows validation figures and previews
while it trains and ends on time, evaluation included; step turns and clock turns do not pile up."""

from __future__ import annotations

from conftest import TINY, metrics, run_cli


def _evals(out):
    records = metrics(out)
    return records, [r for r in records if "val_bpc" in r]


def test_a_timed_run_evaluates_on_the_clock_and_ends_on_time(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = tmp_path / "run"
    # no evaluation by steps: every one but the closing one comes from the clock
    result = run_cli("train", str(corpus), "--out", str(out), "--time", "10s", "--eval-seconds", "2.5",
                     "--eval-every", "1000000", *TINY)
    assert result.exit_code == 0, result.output
    records, evals = _evals(out)
    assert len(evals) >= 3, evals                          # ≈1.3 s, ≈4 s, ≈6.5 s, …, and the end
    assert evals[0]["elapsed_s"] < 4.0
    assert evals[-1]["step"] == records[-1]["step"]        # the closing evaluation is the last record
    assert records[-1]["elapsed_s"] <= 10 * 1.2, records[-1]
    assert result.stderr.count("── step ") == len(evals)    # each shown, with its preview
    samples = (out / "samples.txt").read_text(encoding="utf-8")
    assert samples.count("step ") >= 3 or len(samples) > 3 * 40


def test_eval_seconds_zero_evaluates_by_steps_only(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("train", str(corpus), "--out", str(out), "--max-steps", "30", "--eval-every", "10",
                     "--eval-seconds", "0", *TINY)
    assert result.exit_code == 0, result.output
    _, evals = _evals(out)
    assert [r["step"] for r in evals] == [10, 20, 30]


def test_a_step_turn_right_after_a_clock_evaluation_is_skipped(tmp_path, shakespeare_text, monkeypatch):
    """Evaluations by steps and by the clock do not pile up: a step turn within a quarter of
    --eval-seconds after an evaluation the clock asked for is skipped; step turns after step turns run."""
    import importlib
    import types

    from charlstm.config import ModelConfig, TrainConfig
    from charlstm.data.corpus import Corpus
    from charlstm.runs.folder import Run

    train_module = importlib.import_module("charlstm.training.loop")
    clock_module = importlib.import_module("charlstm.training.clock")
    now = [1000.0]
    monkeypatch.setattr(clock_module, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    config = TrainConfig(eval_every=10, eval_seconds=60.0, time_budget=None, max_steps=1000)
    trainer = train_module.Trainer(Corpus.from_text(shakespeare_text[:20_000]), Run(tmp_path / "run"),
                                   ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8), config)
    trainer.clock.schedule_evaluation(first=True)              # the clock's first turn: 30 s from now
    trainer.clock.steps = 10
    assert trainer.clock.evaluation_due()                      # a step turn, no clock evaluation yet
    trainer.clock.schedule_evaluation()
    now[0] += 61
    trainer.clock.steps = 13
    assert trainer.clock.evaluation_due()                      # the clock's turn
    trainer.clock.schedule_evaluation()
    now[0] += 5
    trainer.clock.steps = 20
    assert not trainer.clock.evaluation_due()                  # 5 s after it: skipped
    now[0] += 20
    trainer.clock.steps = 30
    assert trainer.clock.evaluation_due()                      # 25 s after it: runs
    trainer.clock.schedule_evaluation()
    now[0] += 1
    trainer.clock.steps = 40
    assert trainer.clock.evaluation_due()                      # after a step turn: runs


def test_no_evaluation_of_either_kind_just_before_the_closing_one(tmp_path, shakespeare_text, monkeypatch):
    """Within a quarter of --eval-seconds of the end of a timed run, neither a step turn nor the
    clock evaluates: the closing evaluation is near and would show nearly the same figure."""
    import importlib
    import types

    from charlstm.config import ModelConfig, TrainConfig
    from charlstm.data.corpus import Corpus
    from charlstm.runs.folder import Run

    train_module = importlib.import_module("charlstm.training.loop")
    clock_module = importlib.import_module("charlstm.training.clock")
    now = [1000.0]
    monkeypatch.setattr(clock_module, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    config = TrainConfig(eval_every=10, eval_seconds=60.0, time_budget=120.0)
    trainer = train_module.Trainer(Corpus.from_text(shakespeare_text[:20_000]), Run(tmp_path / "run"),
                                   ModelConfig(vocab_size=1, hidden_size=16, embedding_size=8), config)
    trainer.clock.start()                                      # the session's clock from now, its first turn scheduled
    now[0] += 100
    trainer.clock.steps = 10
    assert trainer.clock.evaluation_due()                      # 20 s left: a step turn runs
    trainer.clock.schedule_evaluation()
    now[0] += 6
    trainer.clock.steps = 20
    assert not trainer.clock.evaluation_due()                  # 14 s left (under 15): skipped
    now[0] += 60
    trainer.clock.steps = 21
    assert not trainer.clock.evaluation_due()                  # the clock's turn, past the end: skipped too
