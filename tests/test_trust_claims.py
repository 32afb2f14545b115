"""What a file claims is checked before it costs anything (issue 15, class 2, found again from outside
on 2026-12-03): a damaged id cache, a checkpoint's stream layout or forget-gate bias, a metrics line's
step — and the options that reach the same places (--forget-bias, --clamp, layout options on --resume).
Each is a one-line error and a non-zero exit with the run's files as they were, or, for a cache, is
simply made again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from charlstm.cli import main
from conftest import assert_no_traceback

SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--seq-len", "16", "--preview", "0",
         "--threads", "1"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def run(tmp_path, shakespeare_text) -> Path:
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_text[:20_000], encoding="utf-8")
    result = invoke("train", corpus, "--out", tmp_path / "run", "--max-steps", "5", "--eval-every", "5", *SMALL)
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file() and p.name != ".lock"}


def _rewrite(path: Path, edit) -> None:
    """The checkpoint at `path` with its charlstm metadata changed by `edit(meta, tensors)`."""
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["charlstm"]), {k: f.get_tensor(k) for k in f.keys()}
    edit(meta, tensors)
    save_file(tensors, str(path), metadata={"charlstm": json.dumps(meta)})


def _refused(result, *words, code=1):
    assert_no_traceback(result)
    assert result.exit_code == code, result.output
    assert sum("Error" in line for line in result.output.splitlines()) == 1, result.output  # a bar may precede it
    for word in words:
        assert word in result.output, result.output


def test_a_damaged_id_cache_is_made_again_not_read_past_the_vocabulary(run):
    ids = np.load(run / "corpus.ids.npy").copy()
    ids[100:200] = 250                                             # past the 60-odd characters
    np.save(run / "corpus.ids.npy", ids)
    result = invoke("train", run.parent / "c.txt", "--resume", "--out", run, "--max-steps", "8")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 8


@pytest.mark.parametrize("claim", [
    lambda m, t: (t.pop("state.0"), t.pop("state.1"), m["train"]["layout"].update(batch_size=10**9),
                  m["train"]["train_config"].update(batch_size=10**9)),
    lambda m, t: m["train"]["layout"].update(n_chars=10**12),
    lambda m, t: m["train"]["layout"].update(n_chars=1000),
])
def test_a_claimed_stream_layout_must_fit_the_corpus(run, claim):
    _rewrite(run / "latest.safetensors", claim)
    before = _files(run)
    result = invoke("train", "--resume", "--out", run, "--max-steps", "8")
    _refused(result, "stream layout", "nothing was written")
    assert _files(run) == before


def test_an_absurd_forget_bias_is_refused_as_an_option_and_in_a_checkpoint(run, tmp_path):
    result = invoke("train", run.parent / "c.txt", "--out", tmp_path / "other", "--max-steps", "3",
                    "--forget-bias", "1e39", *SMALL)
    _refused(result, "--forget-bias", code=2)
    assert not (tmp_path / "other").exists()
    assert "None" not in invoke("train", "--help").output.split("--forget-bias")[1].split("--batch-size")[0]
    _rewrite(run / "best.safetensors", lambda m, t: m["config"].update(forget_bias=1e308))
    _refused(invoke("sample", run / "best.safetensors", "--length", "5"), "forget_bias")
    _refused(invoke("export", run / "best.safetensors", "--out", tmp_path / "exported"), "forget_bias")
    assert not (tmp_path / "exported").exists()


def test_a_clamp_value_past_any_state_is_refused(run):
    _refused(invoke("sample", run, "--length", "5", "--clamp", "1:0=1e308"), "--clamp", "within", code=2)


def test_a_metrics_step_past_float_range_is_left_out_of_the_report(run, tmp_path):
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 1' + "0" * 400 + ', "elapsed_s": 1, "val_bpc": 3}\n')
    result = invoke("report", run, "--out", tmp_path / "r.html", "--novelty-length", "0")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("option, value", [("--seq-len", "8"), ("--batch-size", "2"), ("--val-fraction", "0.2")])
def test_resume_refuses_options_that_would_recut_the_streams(run, option, value):
    before = _files(run)
    result = invoke("train", "--resume", "--out", run, "--max-steps", "8", option, value)
    _refused(result, option, "cannot apply")
    assert _files(run) == before
