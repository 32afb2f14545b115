"""training/stopping.py, --patience: a run whose validation figure stops improving ends early, keeps
best, says why, and --resume knows it."""

from __future__ import annotations

from charlstm.runs import checkpoint as ckpt
from conftest import TINY, metrics, run_cli


def _overfitting_run(tmp_path, text, *extra):
    # 3k characters and a large learning rate: the validation figure gets worse within a few evaluations
    corpus = tmp_path / "short.txt"
    corpus.write_text(text[:3000], encoding="utf-8")
    out = tmp_path / "run"
    args = ["train", str(corpus), "--out", str(out), "--max-steps", "400", "--eval-every", "5", "--eval-seconds", "0",
            *TINY, "--hidden-size", "96", "--lr", "3e-2", *extra]
    return corpus, out, run_cli(*args)


def test_patience_stops_a_run_that_no_longer_improves(tmp_path, shakespeare_text):
    corpus, out, result = _overfitting_run(tmp_path, shakespeare_text, "--patience", "3")
    assert result.exit_code == 0, result.output
    records = metrics(out)
    evals = [r for r in records if "val_bpc" in r]
    stopped = [r for r in records if "stopped" in r]
    assert len(stopped) == 1 and stopped[0]["step"] < 400
    # the run ended exactly 3 evaluations after its best one, none of which beat it
    best = min(r["val_bpc"] for r in evals)
    best_at = next(i for i, r in enumerate(evals) if r["val_bpc"] == best)
    assert len(evals) - 1 - best_at == 3
    assert "no better validation figure in 3 evaluations" in stopped[0]["stopped"]
    assert "Stopped early at step" in result.stderr and "stopping early" in result.stderr
    latest, kept = ckpt.load(out / "latest.safetensors"), ckpt.load(out / "best.safetensors")
    assert latest.run_info.stopped and latest.run_info.finished
    assert abs(kept.run_info.best_val_bpc - best) < 1e-4 and kept.run_info.step == evals[best_at]["step"]

    # --resume with the same budget: nothing to do, and it says why; with more budget it trains on
    again = run_cli("train", "--resume", "--out", str(out))
    assert again.exit_code == 0 and "stopped early" in again.stderr
    assert ckpt.load(out / "latest.safetensors").run_info.step == latest.run_info.step
    more = run_cli("train", "--resume", "--out", str(out), "--max-steps", str(latest.run_info.step + 10))
    assert more.exit_code == 0, more.output
    assert ckpt.load(out / "latest.safetensors").run_info.step == latest.run_info.step + 10


def test_without_patience_the_same_run_trains_its_whole_budget(tmp_path, shakespeare_text):
    _, out, result = _overfitting_run(tmp_path, shakespeare_text, "--max-steps", "60")
    assert result.exit_code == 0, result.output
    assert ckpt.load(out / "latest.safetensors").run_info.step == 60
    assert "stopped" not in (out / "metrics.jsonl").read_text()


def test_patience_counter_survives_an_interruption(tmp_path, shakespeare_text):
    """The evaluations since the best are stored: a resumed run stops when the uninterrupted one would."""
    # a constant learning rate and whole windows: nothing depends on the budget, so the two runs are the same run
    corpus, out, first = _overfitting_run(tmp_path, shakespeare_text, "--patience", "3", "--decay-fraction", "0",
                                          "--short-windows", "0")
    total = ckpt.load(out / "latest.safetensors").run_info.step
    split_at = total - 5                                      # interrupt between the best and the stop
    other = tmp_path / "other"
    args = ["train", str(corpus), "--out", str(other), "--eval-every", "5", "--eval-seconds", "0", *TINY,
            "--hidden-size", "96", "--lr", "3e-2", "--patience", "3", "--decay-fraction", "0", "--short-windows", "0"]
    part = run_cli(*args, "--max-steps", str(split_at))
    assert part.exit_code == 0, part.output
    assert ckpt.load(other / "latest.safetensors").run_info.evals_since_best > 0
    rest = run_cli("train", "--resume", "--out", str(other), "--max-steps", "400")
    assert rest.exit_code == 0, rest.output
    assert ckpt.load(other / "latest.safetensors").run_info.step == total
