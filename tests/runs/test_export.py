"""runs/export.py, `charlstm export`: a weights-only folder that the read-only commands use like the
run itself, that finds its corpus after a move, and that cannot be resumed."""

from __future__ import annotations

import os
import shutil

import pytest
from safetensors import safe_open

from charlstm.runs.checkpoint import load, save
from charlstm.inspection.texts import training_corpus
from conftest import run_cli


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("share") / "models" / "plays"
    result = run_cli("export", str(trained_run), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "MB" in result.stderr
    return out


def test_export_keeps_the_model_and_drops_what_resuming_needs(trained_run, exported):
    with safe_open(exported / "best.safetensors", "pt") as f:
        names = set(f.keys())
    with safe_open(trained_run / "best.safetensors", "pt") as f:
        original = set(f.keys())
    assert names == {n for n in original if n.startswith("model.")}
    assert original - names  # optimizer moments, carried state, RNG states were there
    assert (exported / "best.safetensors").stat().st_size < 0.5 * (trained_run / "best.safetensors").stat().st_size
    a, b = load(trained_run / "best.safetensors"), load(exported / "best.safetensors")
    assert a.vocab.chars == b.vocab.chars and a.config == b.config
    assert all((a.model_state[k] == b.model_state[k]).all() for k in a.model_state)
    assert (exported / "metrics.jsonl").read_bytes() == (trained_run / "metrics.jsonl").read_bytes()
    assert (exported / "samples.txt").read_bytes() == (trained_run / "samples.txt").read_bytes()


def test_exported_folder_finds_its_corpus_by_a_relative_path_after_a_move(trained_run, tmp_path):
    """The corpus path is stored relative to the exported folder, so the folder and the corpus moved
    together (a commit, another clone) still go together: the corpus tail is found and read the same."""
    here = tmp_path / "clone-a"
    (here / "corpora").mkdir(parents=True)
    corpus = here / "corpora" / "plays.txt"
    shutil.copyfile(trained_run.parent.parent / "plays.txt", corpus)
    run = load(trained_run / "best.safetensors")             # the same run, as if it had trained on `corpus`
    run.train["corpus"]["paths"] = [str(corpus)]
    save(here / "runs" / "plays" / "best.safetensors", run)
    result = run_cli("export", str(here / "runs" / "plays"), "--out", str(here / "models" / "plays"))
    assert result.exit_code == 0, result.output
    recorded = load(here / "models" / "plays" / "best.safetensors").train["corpus"]["paths"]
    assert recorded == [os.path.join("..", "..", "corpora", "plays.txt")]
    there = tmp_path / "clone-b"
    shutil.copytree(here / "models", there / "models")
    shutil.copytree(here / "corpora", there / "corpora")
    shutil.rmtree(here)
    found = training_corpus(load(there / "models" / "plays" / "best.safetensors"))
    assert [p.resolve() for p in found.paths] == [(there / "corpora" / "plays.txt").resolve()]
    shown = run_cli("inspect", str(there / "models" / "plays"), "--find", "column", "--top", "1")
    assert shown.exit_code == 0, shown.output
    assert "of the training corpus plays.txt" in shown.stderr
    assert _table_rows(shown.stdout)


def _table_rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("│1")]


def test_export_refuses_a_folder_in_use_and_cannot_be_resumed(trained_run, exported, tmp_path):
    again = run_cli("export", str(trained_run), "--out", str(exported))
    assert again.exit_code == 1 and "not empty" in again.stderr
    before = {p.name: p.read_bytes() for p in trained_run.iterdir()}
    over = run_cli("export", str(trained_run), "--out", str(trained_run))       # a folder holding a training run
    assert over.exit_code == 1 and "export writes only into a new or empty folder" in over.stderr
    assert "--resume" not in over.stderr and {p.name: p.read_bytes() for p in trained_run.iterdir()} == before
    resume = run_cli("train", "--resume", "--out", str(exported), "--max-steps", "200")
    assert resume.exit_code != 0 and "nothing to resume" in resume.stderr
    missing = run_cli("export", str(tmp_path / "none"), "--out", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "no such checkpoint" in missing.stderr
    assert not (tmp_path / "x").exists()
