"""runs/runinfo.py: a checkpoint's training metadata is held to the training config's own bounds: the
recipe and the stream layout it claims are refused as a CheckpointError naming the field, and every
count and figure is held to the bounds of the numbers a run records. (Each field refused on resume
from the command line: tests/training/test_resume.py.)"""

from __future__ import annotations

import pytest

from charlstm.config import MAX_SEED
from charlstm.errors import CheckpointError
from charlstm.runs.runinfo import RunInfo, _Checker, _layout, _train_config
from conftest import refused, rewrite_checkpoint, run_cli


@pytest.mark.parametrize("read, value, message", [
    (_layout, {"n_chars": 100, "batch_size": 0, "seq_len": 4}, "'layout.batch_size' must be positive, not 0"),
    (_layout, {"n_chars": 100, "batch_size": 2, "seq_len": 2.0}, "'layout.seq_len' must be an integer, not float"),
    (_layout, {"n_chars": 100, "batch_size": 2, "seq_len": 4, "seed": -3}, "'layout.seed' must be an integer in [0, "),
    (_layout, {"n_chars": 100, "batch_size": 2, "seq_len": 4, "seed": MAX_SEED + 1}, "'layout.seed' must be"),
    (_train_config, {"decay_fraction": 7.0}, "'train_config' is refused: decay_fraction must be a number in [0, 1]"),
], ids=["layout batch_size 0", "layout seq_len float", "layout seed negative", "layout seed too large",
        "recipe decay_fraction 7"])
def test_training_metadata_is_held_to_the_training_config_bounds(read, value, message):
    with pytest.raises(CheckpointError) as caught:
        read(_Checker("x.safetensors"), value)
    assert str(caught.value).startswith("x.safetensors: training metadata field ") and message in str(caught.value)


def test_a_layout_without_a_seed_reads_as_seed_0():
    assert _layout(_Checker("x"), {"n_chars": 100, "batch_size": 2, "seq_len": 4}).seed == 0


@pytest.mark.parametrize("name, value", [("step", 10**20), ("elapsed_s", 1e300), ("best_val_bpc", 1e300),
                                         ("corpus_chars", 10**30), ("evals_since_best", 2**60)])
def test_every_count_and_figure_of_the_metadata_is_bounded(small_run, tmp_path, name, value):
    rewrite_checkpoint(small_run / "latest.safetensors", lambda meta, tensors: meta["train"].update({name: value}))
    said = f"training metadata field {name!r} must be"
    with pytest.raises(CheckpointError, match=said):
        RunInfo.from_dict({"step": 3, "layout": {"n_chars": 100, "batch_size": 2, "seq_len": 4},
                           "optimizer_groups": [], name: value})
    refused(run_cli("report", small_run, "--out", tmp_path / "r.html", "--novelty-length", "0"), said)
    assert not (tmp_path / "r.html").exists()


def test_the_model_a_run_started_from_is_kept_and_checked():
    from charlstm.runs.runinfo import StartedFrom, _started_from

    record = StartedFrom("english", "ab" * 32, 96)
    assert _started_from(_Checker("x"), record.to_dict()) == record
    assert _started_from(_Checker("x"), None) is None
    for value, message in [("english", "'init_from' is not an object"),
                           ({"source": "english", "chars": 3}, "'init_from' must name its source and fingerprint"),
                           ({"source": "english", "fingerprint": "ab", "chars": 0}, "'init_from.chars' must be"),
                           ({"source": 3, "fingerprint": "ab", "chars": 2}, "'source' must be a string")]:
        with pytest.raises(CheckpointError, match=message):
            _started_from(_Checker("x"), value)
    info = {"step": 1, "layout": {"n_chars": 100, "batch_size": 2, "seq_len": 4}, "optimizer_groups": []}
    assert RunInfo.from_dict(info).init_from is None and "init_from" not in RunInfo.from_dict(info).to_dict()
    assert RunInfo.from_dict({**info, "init_from": record.to_dict()}).to_dict()["init_from"] == record.to_dict()
