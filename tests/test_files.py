"""files.py's guard on the outputs a user names: `inspect --html X` replaces only a page charlstm wrote,
`corpus --out X` only a plain-text file; neither ever replaces a checkpoint or writes through a link.
(`write --out`: tests/cli/test_write.py; the run folder's own files: tests/runs/test_folder.py.)"""

from __future__ import annotations

import shutil

from conftest import digest, refused, run_cli



def test_inspect_html_never_replaces_a_checkpoint_a_text_or_a_link(small_run, tmp_path):
    latest = digest(small_run / "latest.safetensors")
    result = run_cli("inspect", str(small_run), "--html", str(small_run / "latest.safetensors"), "--length", "30")
    refused(result, "latest.safetensors", "not replaced")
    assert digest(small_run / "latest.safetensors") == latest

    elsewhere = tmp_path / "model.safetensors"
    shutil.copyfile(small_run / "best.safetensors", elsewhere)  # a checkpoint outside any run folder
    refused(run_cli("inspect", str(small_run), "--html", str(elsewhere), "--length", "30"), "not replaced")

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    refused(run_cli("inspect", str(small_run), "--html", str(notes), "--length", "30"),
                    "not an HTML page charlstm wrote")
    assert notes.read_text() == "my notes\n"

    victim = tmp_path / "victim.html"
    victim.write_text("<html>mine</html>")
    link = tmp_path / "page.html"
    link.symlink_to(victim)
    refused(run_cli("inspect", str(small_run), "--html", str(link), "--length", "30"), "symbolic link")
    assert victim.read_text() == "<html>mine</html>" and link.is_symlink()


def test_inspect_html_replaces_its_own_page(small_run, tmp_path):
    page = tmp_path / "page.html"
    for _ in range(2):
        result = run_cli("inspect", str(small_run), "--html", str(page), "--length", "30")
        assert result.exit_code == 0, result.output
    assert '<meta name="generator" content="charlstm">' in page.read_text(encoding="utf-8")[:4096]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_corpus_out_never_replaces_a_checkpoint_a_page_or_a_link(small_run, tmp_path):
    best = digest(small_run / "best.safetensors")
    refused(run_cli("corpus", "counter", "--out", str(small_run / "best.safetensors"), "--count", "5"),
                    "not replaced")
    assert digest(small_run / "best.safetensors") == best

    page = tmp_path / "page.html"
    assert run_cli("inspect", str(small_run), "--html", str(page), "--length", "30").exit_code == 0
    before = page.read_bytes()
    refused(run_cli("corpus", "counter", "--out", str(page), "--count", "5"), "not a plain-text file")
    assert page.read_bytes() == before

    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    refused(run_cli("corpus", "counter", "--out", str(binary), "--count", "5"), "not a plain-text file")
    assert binary.read_bytes() == b"\x00\x01\x02" * 100

    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    link = tmp_path / "counter.txt"
    link.symlink_to(victim)
    refused(run_cli("corpus", "counter", "--out", str(link), "--count", "5"), "symbolic link")
    assert victim.read_text() == "mine\n"


def test_corpus_out_replaces_a_text_file(tmp_path):
    out = tmp_path / "counter.txt"
    out.write_text("an older corpus\n")
    result = run_cli("corpus", "counter", "--out", str(out), "--count", "5", "--seed", "1")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and all(set(line) <= set("aXb") for line in lines)
