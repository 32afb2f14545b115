"""files.py's guard on the outputs a user names: `inspect --html X` replaces only a page charlstm wrote,
`corpus --out X` only a plain-text file; neither ever replaces a checkpoint or writes through a link.
(`write --out`: tests/cli/test_write.py; the run folder's own files: tests/runs/test_folder.py.)
And the one check of a file's kind every reader opens through (`open_regular`): each kind of file
that is not a regular one is named in one line, at once, without waiting on it; a copy is streamed
and keeps a sparse file's holes."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from charlstm.errors import CharlstmError, CorpusError
from charlstm.files import copy_file, is_regular, open_append, open_regular, read_head, regular_path
from conftest import KINDS, digest, plant, refused, run_cli, within


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


# ------------------------------------------------------------------ the one check of a file's kind


@pytest.mark.parametrize("kind", KINDS)
def test_every_way_of_opening_a_file_names_a_file_of_another_kind_at_once(tmp_path, kind):
    path = plant(tmp_path / "file", kind)
    linked = kind == "dangling link" or os.path.islink(path)   # a device this user may not make is a link to one
    said = "a symbolic link" if linked else KINDS[kind]
    with within(20):
        for follow in (False, True):
            message = f"{path}: not a regular file ({KINDS[kind] if follow else said})"
            with pytest.raises(CorpusError, match=f"^{re.escape(message)}$"):
                open_regular(path, CorpusError, follow=follow)
            with pytest.raises(CharlstmError, match="not a regular file"):
                is_regular(path, follow=follow)
            with pytest.raises(CharlstmError, match="not a regular file"), regular_path(path, follow=follow):
                pass
        with pytest.raises(CharlstmError, match="not a regular file"):
            open_regular(path, write=True)
        with pytest.raises(CharlstmError, match="not a regular file"):
            open_append(path)
        assert read_head(path) == b""
    assert os.path.lexists(path) and (linked or not os.path.isfile(path))  # nothing was replaced


def test_a_regular_file_opens_and_reads_blocking_and_a_missing_one_is_for_the_caller_to_word(tmp_path):
    import fcntl

    path = tmp_path / "file.txt"
    path.write_bytes(b"text")
    with open_regular(path) as f:
        assert f.read() == b"text" and not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    assert is_regular(path) and not is_regular(tmp_path / "none")
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "none")
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    with pytest.raises(CharlstmError, match="not a regular file \\(a symbolic link\\)"):
        open_regular(link)
    with open_regular(link, follow=True) as f, regular_path(link, follow=True) as name:
        assert f.read() == b"text" and open(name, "rb").read() == b"text"


def test_a_copy_is_streamed_and_keeps_the_holes_of_a_sparse_file(tmp_path):
    source, target = tmp_path / "sparse.bin", tmp_path / "copy.bin"
    with open(source, "wb") as f:
        f.write(b"head")
        f.seek(3 << 30)                     # 3 GiB of hole: a copy that read or wrote it would take seconds
        f.write(b"middle")
        f.truncate(6 << 30)
    with within(30):
        copy_file(source, target)
    assert target.stat().st_size == 6 << 30 and target.stat().st_blocks * 512 < 16 << 20
    with open(target, "rb") as f:
        assert f.read(4) == b"head" and f.seek(3 << 30) and f.read(6) == b"middle"
    mixed = tmp_path / "mixed.bin"                              # data and holes of every size, dense at the end
    with open(mixed, "wb") as f:
        for at, size in ((0, 3), (5000, 70_000), (1 << 20, 1), ((1 << 20) + 4099, 9000), (5 << 20, 3 << 20)):
            f.seek(at)
            f.write(os.urandom(size))
    copy_file(mixed, target)
    assert target.read_bytes() == mixed.read_bytes()
    plant(source, "FIFO")
    with within(20), pytest.raises(CharlstmError, match="not a regular file \\(a FIFO\\)"):
        copy_file(source, target)
    assert target.read_bytes() == mixed.read_bytes()                   # the copy refused left it as it was
