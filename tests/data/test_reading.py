"""data/reading.py: reading text strictly. A corpus that is not text (missing, empty, binary anywhere,
another encoding) is one line before any work; a text read whole is a regular file or standard input
of at most the cap, checked by its size and read no further; folders leave charlstm's own output out;
with no corpus named, the bundled one is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from charlstm.data import corpus, reading
from charlstm.data.reading import corpus_files, read_corpus
from charlstm.errors import CorpusError
from conftest import KINDS, QUICK, ROOT, charlstm_process, error_line, measured, plant, refused, run_cli, within

# ------------------------------------------------------------------------------ what a corpus is


def test_read_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_corpus([tmp_path / "missing.txt"])
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus([tmp_path / "empty.txt"])
    (tmp_path / "latin.txt").write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.txt: not valid utf-8 at byte offset 3"):
        read_corpus([tmp_path / "latin.txt"])
    assert read_corpus([tmp_path / "latin.txt"], encoding="latin-1") == "café ok"
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 20)
    with pytest.raises(CorpusError, match="an executable, not text"):
        read_corpus([tmp_path / "blob.bin"])
    (tmp_path / "nul.txt").write_bytes(b"text\x00with a NUL")
    with pytest.raises(CorpusError, match="binary file .NUL byte at offset 4"):
        read_corpus([tmp_path / "nul.txt"])


def test_the_library_reader_refuses_bytes_to_bytes_codecs_too(corpus):
    with pytest.raises(CorpusError, match="not a text encoding"):
        read_corpus([corpus], encoding="base64")
    assert read_corpus([corpus], encoding="latin-1").startswith("First Citizen")


def test_directory_with_glob_and_bom(tmp_path):
    (tmp_path / "b.py").write_bytes("\ufeffprint(2)\r\n".encode("utf-8"))
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "notes.md").write_text("# not code\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.py").write_text("secret\n")
    assert [p.name for p in corpus_files([tmp_path], "*.py")] == ["a.py", "b.py"]
    assert read_corpus([tmp_path], glob="*.py") == "print(1)\nprint(2)\r\n"
    with pytest.raises(CorpusError, match="no files matching"):
        read_corpus([tmp_path], glob="*.rs")


@pytest.mark.parametrize("text, message", [("", "corpus is empty"), ("a", "corpus is empty"),
                                           (" \n\t\u3000\r\n", "corpus holds only whitespace")])
def test_every_corpus_reader_applies_one_rule_of_what_a_corpus_is(tmp_path, text, message):
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    for read in (lambda: read_corpus([path]), lambda: corpus.prepare([path]),
                 lambda: corpus.prepare([path], chunk_bytes=2)):
        with pytest.raises(CorpusError) as caught:
            read()
        assert str(caught.value).startswith(f"{path}: {message}")


def _zip_of_text(path: Path, text: str) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("plays.txt", text)  # stored, not compressed: the text itself is in the file


_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def _executable() -> bytes:
    return Path(os.path.realpath(sys.executable)).read_bytes()[:200_000]


#: (name, what the file holds, what the one line says). "dir": a folder with no file the glob matches.
NOT_TEXT = [
    ("missing path", None, "no such file or directory"),
    ("folder without matches", "dir", "no files matching '*.rs'"),
    ("empty file", b"", "corpus is empty"),
    ("whitespace only", b"  \n\t\n   \n", "only whitespace"),
    ("shorter than two windows", b"To be, or not to be.\n", "corpus too short"),
    ("PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "this is a PNG image, not text"),
    ("gzip", b"\x1f\x8b\x08\x00" + bytes(40), "gzip-compressed"),
    ("zip", "zip", "this is a zip archive (extract it first), not text"),
    ("PDF, mostly text", "pdf", "this is a PDF document, not text"),
    ("executable", "elf", "this is an executable, not text"),
    ("binary", bytes(range(256)) * 4, "looks like a binary file (NUL byte at offset 0)"),
    ("Latin-1", "Ça coûte très cher, señor.\n".encode("latin-1") * 20, "not valid utf-8 at byte offset 0"),
    ("Latin-1 further in", "naïve café".encode("latin-1"), "not valid utf-8 at byte offset 2"),
    ("UTF-16 with BOM", "hello world\n".encode("utf-16"), "looks like UTF-16"),
]


@pytest.mark.parametrize("name, content, message", NOT_TEXT, ids=[row[0] for row in NOT_TEXT])
def test_a_corpus_that_is_not_text_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, shakespeare_text, name,
                                                                     content, message):
    monkeypatch.chdir(tmp_path)
    path, args = tmp_path / "corpus", []
    if content == "dir":
        path.mkdir()
        (path / "a.py").write_text("print(1)\n")
        args = ["--glob", "*.rs"]
    elif content == "zip":
        _zip_of_text(path, shakespeare_text[:20_000])
    elif content == "pdf":
        path.write_bytes(_PDF + shakespeare_text[:20_000].encode("utf-8"))
    elif content == "elf":
        path.write_bytes(_executable())
    elif content is not None:
        path.write_bytes(content)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "run"
    result = run_cli("train", path, *args, "--out", out, "--max-steps", "2", "--hidden-size", "16")
    assert result.exit_code == 1, result.output
    line = error_line(result.stderr)
    assert message in line and len([l for l in result.output.splitlines() if l.strip()]) <= 3, result.output
    if name != "shorter than two windows":        # refused before the run folder is claimed
        assert line.startswith(f"Error: {path}: "), line
        assert not out.exists()
    assert not (out / "latest.safetensors").exists()
    for file, mtime in before.items():              # nothing overwritten
        assert file.stat().st_mtime_ns == mtime, file


def test_a_zip_inside_a_corpus_folder_is_refused(tmp_path, shakespeare_text):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(shakespeare_text[:20_000], encoding="utf-8")
    _zip_of_text(folder / "b.txt", shakespeare_text[20_000:40_000])  # a zip under a .txt name
    result = run_cli("train", folder, "--out", tmp_path / "run", "--max-steps", "2", "--hidden-size", "16")
    assert result.exit_code == 1 and "b.txt" in result.stderr and "a zip archive" in result.stderr, result.output


# ------------------------------------------------------------------------------ binary anywhere


def test_text_with_a_huge_nul_tail_is_refused_in_the_first_pass(tmp_path, shakespeare_text):
    path = tmp_path / "tail.txt"
    text = (shakespeare_text * 2)[:120_000]
    path.write_text(text, encoding="ascii")
    with open(path, "r+b") as f:                                    # 1 GB of NULs after 120 KB of text, sparse
        f.truncate(120_000 + (1 << 30))
    done = charlstm_process("prepare", path, "--out", tmp_path / "run", cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert error_line(done.stderr) == (f"Error: {path}: looks like a binary file (NUL byte at offset 120000); "
                                       "give a text file")
    with pytest.raises(CorpusError, match=r"NUL byte at offset 120000"):
        corpus.prepare([path])


def test_a_nul_deep_in_a_file_is_found_in_every_reader_at_its_exact_offset(tmp_path, trained_run):
    offset = reading.CHUNK_BYTES + 12_345                              # past the first piece read, past any head check
    path = tmp_path / "late.txt"
    path.write_bytes(b"a" * offset + b"\x00" + b"b" * 10)
    message = f"{path}: looks like a binary file (NUL byte at offset {offset}); give a text file"
    for read in (lambda: corpus.prepare([path]), lambda: reading.read_corpus([path]), lambda: reading.read_text_file(path)):
        with pytest.raises(CorpusError) as caught:
            read()
        assert str(caught.value) == message
    small = tmp_path / "late-small.txt"
    small.write_bytes(b"To be, or not to be" * 5000 + b"\x00tail")  # 95 KB: past a 64 KB head
    result = run_cli("score", trained_run, "--text-file", small)
    assert result.exit_code == 1 and "looks like a binary file (NUL byte at offset 95000)" in result.stderr


def test_a_nul_is_binary_in_single_byte_encodings_too(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9 ".encode("latin-1") * 100 + b"\x00")
    with pytest.raises(CorpusError, match=r"NUL character at character 500"):
        reading.read_corpus([path], encoding="latin-1")
    wide = tmp_path / "wide.txt"                                    # UTF-16 text holds NUL bytes, and is text
    wide.write_bytes("wide text\n".encode("utf-16"))
    assert reading.read_corpus([wide], encoding="utf-16") == "wide text\n"


# ------------------------------------------------------------------------------ one bounded reader


def test_read_text_file_honours_its_limit_and_reads_regular_files_only(tmp_path):
    path = tmp_path / "ten.txt"
    path.write_text("0123456789", encoding="utf-8")
    assert reading.read_text_file(path, limit=10) == "0123456789"
    with pytest.raises(CorpusError, match="ten.txt: more than"):
        reading.read_text_file(path, limit=9)
    with pytest.raises(CorpusError, match="not a regular file"):
        reading.read_text_file(tmp_path)


@pytest.mark.parametrize("source, kind", [("/dev/zero", "a device"), ("fifo", "a FIFO")])
def test_a_prime_file_that_is_not_a_regular_file_is_refused_without_reading(trained_run, tmp_path, source, kind):
    if source == "fifo":
        source = tmp_path / "prime.fifo"
        os.mkfifo(source)                                           # nobody writes: opening it must not block
    done = charlstm_process("sample", trained_run, "--prime-file", source, "--length", "5", cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert error_line(done.stderr) == f"Error: {source}: not a regular file ({kind})"


@pytest.mark.parametrize("kind", KINDS)
def test_a_prime_file_of_another_kind_is_named_by_sample_and_write(trained_run, tmp_path, kind):
    prime = plant(tmp_path / "prime.txt", kind)
    with within(60):
        for command in ("sample", "write"):
            result = run_cli(command, trained_run, "--prime-file", prime)
            if kind == "directory":                               # click's own check of --prime-file comes first
                assert result.exit_code == 2 and "is a directory" in result.stderr
            elif kind == "dangling link":                         # click.Path(exists=True): it does not exist
                assert result.exit_code == 2 and "does not exist" in result.stderr
            else:
                refused(result, f"{prime}: not a regular file ({KINDS[kind]})")


# ------------------------------------------------------------------------------ a corpus of another kind


@pytest.mark.parametrize("kind", KINDS)
def test_a_corpus_of_another_kind_is_named_by_train_and_prepare(tmp_path, kind):
    named = plant(tmp_path / "plays.txt", kind)
    said = f"{named}: not a regular file ({KINDS[kind]})" if kind != "directory" else f"{named}: no files matching"
    with within(60):
        refused(run_cli("train", named, "--out", tmp_path / "run", *QUICK), said)
        refused(run_cli("prepare", named, "--out", tmp_path / "prepared"), said)
    assert not (tmp_path / "run").exists() and not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_corpus_replaced_after_prepare_or_training_is_named_on_train_and_resume(small_run, corpus, tmp_path, kind):
    prepared = tmp_path / "prepared"
    assert run_cli("prepare", corpus, "--out", prepared).exit_code == 0
    plant(corpus, kind)
    said = f"{corpus}: not a regular file ({KINDS[kind]})" if kind != "directory" else f"{corpus}: no files matching"
    before = {p.name: p.read_bytes() for p in small_run.iterdir() if p.name != ".lock"}
    with within(60):
        refused(run_cli("train", corpus, "--out", prepared, *QUICK), said)
        refused(run_cli("train", "--resume", "--out", small_run, "--max-steps", "6"), said)
    assert {p.name: p.read_bytes() for p in small_run.iterdir() if p.name != ".lock"} == before


def test_a_file_larger_than_the_text_cap_is_refused_from_its_size(trained_run, tmp_path):
    big = tmp_path / "big-prime.txt"
    with open(big, "wb") as f:                                      # sparse: nothing is written, and nothing must be read
        f.truncate(reading.MAX_TEXT_BYTES + 1)
    started = time.perf_counter()
    for args in (["sample", trained_run, "--prime-file", big], ["score", trained_run, "--text-file", big],
                 ["inspect", trained_run, "--text-file", big]):
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == (f"Error: {big}: more than 64 MiB, the most charlstm reads as one text "
                                         "(a corpus file named to train is streamed and may be any size)")
    assert time.perf_counter() - started < 60


def test_endless_standard_input_is_read_only_up_to_the_cap(trained_run, tmp_path):
    yes = subprocess.Popen(["yes", "To be, or not to be"], stdout=subprocess.PIPE)
    try:
        code, out, err, peak = measured("score", trained_run, "--text-file", "-", cwd=tmp_path, stdin=yes.stdout)
    finally:
        yes.kill()
        yes.wait()
    assert code == 1 and out == ""
    assert error_line(err).startswith("Error: <stdin>: more than 64 MiB, the most charlstm reads as one text")
    assert peak < 1500, f"{peak} MB to refuse 64 MiB of input"


def test_corpus_tail_reads_only_the_end_of_a_big_utf8_file(tmp_path, chinese_text):
    path = tmp_path / "poems.txt"
    path.write_text(chinese_text, encoding="utf-8")
    tail = reading.read_tail(path, 100, "utf-8")
    assert chinese_text.endswith(tail) and 100 <= len(tail) < len(chinese_text)
    assert reading.read_tail(path, 10**6, "utf-8") == chinese_text


# ------------------------------------------------------------------------------ whose text is read


def test_training_a_folder_twice_leaves_its_own_runs_out(tmp_path, monkeypatch, shakespeare_text):
    project = tmp_path / "project"
    project.mkdir()
    (project / "plays.txt").write_text(shakespeare_text[:20_000], encoding="utf-8")
    monkeypatch.chdir(project)
    first = run_cli("train", ".", *QUICK)
    assert first.exit_code == 0, first.output
    for args in ((), ("--glob", "*.txt")):  # samples.txt of the first run matches *.txt
        again = run_cli("train", ".", *args, *QUICK)
        assert again.exit_code == 0, again.output
        assert "left out charlstm's own output" in again.output and "charlstm run folder" in again.output
    runs = sorted((project / "checkpoints").iterdir())
    assert [r.name for r in runs] == ["plays", "plays-2", "plays-3"]
    for run in runs:  # each trained on plays.txt alone
        meta = json.loads((run / "corpus.json").read_text(encoding="utf-8"))
        assert meta["chars"] == 20_000 and meta["sources"] == [str((project / "plays.txt").resolve())]


def test_a_folder_of_only_charlstm_output_is_no_corpus(small_run):
    result = run_cli("train", small_run, "--out", small_run.parent / "again", *QUICK)
    assert result.exit_code == 1, result.output
    line = error_line(result.output)
    assert "no files matching" in line and "left out 1 charlstm run folder" in line
    assert not (small_run.parent / "again").exists()


def test_train_with_no_corpus_reads_the_bundled_shakespeare(tmp_path):
    """README's first command names no corpus: the bundled one is found from a source checkout."""
    assert reading.default_corpus_path() == ROOT / "corpora" / "shakespeare.txt"
    out = tmp_path / "run"
    result = run_cli("train", "--out", out, "--max-steps", "2", "--eval-every", "2", "--hidden-size", "8",
                     "--num-layers", "1", "--embedding-size", "4", "--batch-size", "2", "--seq-len", "16",
                     "--preview", "0", "--threads", "1")
    assert result.exit_code == 0, result.output
    sources = json.loads((out / "corpus.json").read_text(encoding="utf-8"))["sources"]
    assert sources == [str(reading.default_corpus_path())]
