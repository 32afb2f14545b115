"""runs/export.py, `charlstm export`: a weights-only folder that the read-only commands use like the
run itself, that finds its corpus after a move, and that cannot be resumed; its logs streamed whatever
their size, and the folder there whole or not at all (a killed export leaves --out as it was, and the
next one succeeds)."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time

import pytest
from safetensors import safe_open

from charlstm.runs.checkpoint import load, save
from charlstm.inspection.texts import training_corpus
from conftest import ROOT, digest, measured, refused, run_cli, start_charlstm


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


# ------------------------------------------------------------------ streamed, and whole or not at all


def _source(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "plays", ignore=shutil.ignore_patterns("corpus.*"))


def test_a_multi_gigabyte_log_is_streamed_into_the_export(trained_run, tmp_path):
    run = _source(trained_run, tmp_path)
    with open(run / "metrics.jsonl", "r+b") as f:                # sparse: costs no disk, and no copy of it may
        f.truncate(6 << 30)                                     # read or write its 6 GB of hole
    code, _, err, peak = measured("export", run, "--out", tmp_path / "shared", cwd=tmp_path, timeout=300)
    assert code == 0, err[-2000:]
    assert peak < 300, f"peak RSS {peak} MB"
    copied = tmp_path / "shared" / "metrics.jsonl"
    assert copied.stat().st_size == 6 << 30 and copied.stat().st_blocks * 512 < 64 << 20
    with open(copied, "rb") as f:
        assert f.read(100) == (trained_run / "metrics.jsonl").read_bytes()[:100]
    assert sorted(os.listdir(tmp_path / "shared")) == ["best.safetensors", "metrics.jsonl", "samples.txt"]


def _building(tmp_path):
    """The temp folders of exports to tmp_path/shared."""
    return sorted(tmp_path.glob(".shared.*.tmp"))


def _kill_mid_copy(run, out, tmp_path, signum) -> None:
    """Start an export of `run` to `out` and send it `signum` while it copies the log."""
    with open(run / "metrics.jsonl", "ab") as f:                  # 256 MB of real data: a copy that takes a while
        line = b'{"step": 999999, "elapsed_s": 1.0, "train_loss": 2.0}\n'
        f.write(line * ((256 << 20) // len(line)))
    export = start_charlstm("export", run, "--out", out, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not any(list(folder.glob(".metrics.jsonl.*.tmp")) for folder in [out, *_building(tmp_path)]):
        assert export.poll() is None and time.monotonic() < deadline, export.communicate()
        time.sleep(0.001)
    export.send_signal(signum)
    export.communicate(timeout=60)
    assert not out.exists()                                      # killed before the rename: --out as it was


def test_an_export_killed_mid_copy_leaves_no_folder_and_the_next_one_succeeds(trained_run, tmp_path):
    run, out = _source(trained_run, tmp_path), tmp_path / "shared"
    _kill_mid_copy(run, out, tmp_path, signal.SIGKILL)
    dead = _building(tmp_path)
    assert len(dead) == 1                                         # what the killed export left, beside --out
    mine = tmp_path / ".shared.1-cafe.tmp"                       # a name like an export's, holding the user's file
    mine.mkdir()
    (mine / ".lock").write_text("1")
    (mine / "notes.txt").write_text("mine")
    early = [tmp_path / ".shared.3-dead.tmp", tmp_path / ".shared.4-dead.tmp"]   # killed before writing anything
    early[0].mkdir()
    early[1].mkdir()
    (early[1] / ".lock").touch()
    live = tmp_path / ".shared.2-beef.tmp"                       # an export still running: its lock is held
    live.mkdir()
    (live / "best.safetensors").write_bytes(b"half")
    with open(live / ".lock", "w") as held:
        held.write(str(os.getpid()))
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        again = run_cli("export", run, "--out", out)
    assert again.exit_code == 0, again.output
    assert not dead[0].exists() and not any(f.exists() for f in early)   # the dead exports' folders are gone
    assert (mine / "notes.txt").read_text() == "mine" and (live / "best.safetensors").read_bytes() == b"half"
    assert sorted(os.listdir(out)) == ["best.safetensors", "metrics.jsonl", "samples.txt"]
    assert digest(out / "metrics.jsonl") == digest(run / "metrics.jsonl")
    assert digest(out / "samples.txt") == digest(run / "samples.txt")
    assert load(out / "best.safetensors").config == load(run / "best.safetensors").config


def test_an_export_stopped_mid_copy_removes_its_folder_and_a_full_out_is_never_touched(trained_run, tmp_path):
    run, out = _source(trained_run, tmp_path), tmp_path / "shared"
    _kill_mid_copy(run, out, tmp_path, signal.SIGTERM)
    assert _building(tmp_path) == []
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused(run_cli("export", run, "--out", out), "not empty")
    assert os.listdir(out) == ["notes.txt"] and _building(tmp_path) == []
    (out / "notes.txt").unlink()
    assert run_cli("export", run, "--out", out).exit_code == 0   # an empty folder is taken
    assert sorted(os.listdir(out)) == ["best.safetensors", "metrics.jsonl", "samples.txt"]


# ------------------------------------------------------------------ --html: the model as one page


def test_export_html_writes_one_page_and_replaces_only_a_charlstm_page(trained_run, tmp_path):
    page = tmp_path / "plays.html"
    done = run_cli("export", str(trained_run), "--html", str(page))
    assert done.exit_code == 0, done.output
    assert "wrote" in done.stderr and done.stdout == "" and sorted(os.listdir(tmp_path)) == ["plays.html"]
    first = page.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>") and '<meta name="generator" content="charlstm">' in first
    again = run_cli("export", str(trained_run), "--html", str(page))                # its own page: replaced
    assert again.exit_code == 0 and page.read_text(encoding="utf-8") == first
    both = run_cli("export", str(trained_run), "--out", str(tmp_path / "shared"), "--html", str(tmp_path / "b.html"))
    assert both.exit_code == 0, both.output
    assert (tmp_path / "shared" / "best.safetensors").is_file() and (tmp_path / "b.html").read_bytes() == page.read_bytes()
    neither = run_cli("export", str(trained_run))
    assert neither.exit_code == 2 and "give --out FOLDER, --html FILE or both" in neither.stderr


def test_export_html_refuses_what_is_not_its_page_before_any_work(trained_run, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>", encoding="utf-8")
    (tmp_path / "folder.html").mkdir()
    os.symlink(mine, tmp_path / "link.html")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.html")
    for target, said, code in ((mine, "is not an HTML page charlstm wrote", 1), (tmp_path / "folder.html", "is a directory", 2),
                               (tmp_path / "link.html", "symbolic link", 1), (tmp_path / "dangling.html", "symbolic link", 1),
                               (trained_run / "best.safetensors", "checkpoint", 1)):
        before = {p.name: p.read_bytes() for p in trained_run.iterdir()}
        refused(run_cli("export", str(trained_run), "--out", str(tmp_path / "shared"), "--html", str(target)), said,
                code=code)
        assert not (tmp_path / "shared").exists()                       # refused before --out was written
        assert {p.name: p.read_bytes() for p in trained_run.iterdir()} == before
    assert mine.read_text(encoding="utf-8") == "<p>my notes</p>" and not (tmp_path / "nowhere").exists()
    refused(run_cli("export", str(tmp_path / "none"), "--html", str(tmp_path / "x.html")), "no such checkpoint")
    assert not (tmp_path / "x.html").exists()


def test_a_shipped_model_is_exported_by_its_name(tmp_path):
    """`charlstm export english --out DIR`: the shipped folder's model, log and previews, the shipped folder untouched."""
    shipped = ROOT / "examples" / "models" / "english"
    before = {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()}
    done = run_cli("export", "english", "--out", tmp_path / "copy")
    assert done.exit_code == 0, done.output
    assert load(tmp_path / "copy" / "best.safetensors").fingerprint() == load(shipped / "best.safetensors").fingerprint()
    assert (tmp_path / "copy" / "metrics.jsonl").read_bytes() == (shipped / "metrics.jsonl").read_bytes()
    assert {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()} == before


def test_a_model_page_too_big_to_draw_is_refused_before_any_work(tmp_path):
    """The model page embeds the weights, and drawing it holds them several times over (views.page.page_need,
    as for the inspect page): a model whose page cannot fit the memory budget is refused in one line, within
    the bound, before the page or the --out folder is written."""
    import re

    import torch

    from charlstm.config import ModelConfig
    from charlstm.data.vocab import Vocab
    from charlstm.model.network import CharModel
    from charlstm.runs import checkpoint as ckpt
    from conftest import MEMORY_BOUND_MB, error_line

    config = ModelConfig(vocab_size=30, hidden_size=2048, embedding_size=4, num_layers=1)
    torch.manual_seed(0)
    model = ckpt.save(tmp_path / "big.safetensors",
                      ckpt.Checkpoint(config, Vocab([chr(c) for c in range(97, 127)]), CharModel(config).state_dict()))
    code, _, err, peak = measured("export", model, "--html", tmp_path / "page.html", "--out", tmp_path / "shared",
                                  cwd=tmp_path, timeout=600)
    assert code == 1 and peak < MEMORY_BOUND_MB, err[-2000:]
    assert not (tmp_path / "page.html").exists() and not (tmp_path / "shared").exists()
    assert re.fullmatch(r"Error: a page of this model holds its [\d,]+ weights several times over while it is drawn: "
                        r"needs about [\d,]+ MiB, over the memory budget of 768 MiB; share it as a folder with "
                        r"export --out", error_line(err)), err
