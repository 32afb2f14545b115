"""`charlstm corpus TASK`: probe-task corpora through the real command line, every line checked."""

from __future__ import annotations

import re

import pytest

from charlstm import synthetic
from charlstm.synthetic import TASKS, check_line
from conftest import assert_no_traceback, run_cli


def _lines(path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    return text[:-1].split("\n")


@pytest.mark.parametrize("task", list(TASKS))
def test_every_line_follows_the_grammar_and_a_seed_fixes_the_corpus(tmp_path, task):
    first, again, other = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    result = run_cli("corpus", task, "--out", str(first), "--count", "400", "--seed", "7")
    assert result.exit_code == 0, result.output
    lines = _lines(first)
    assert len(lines) == 400 and all(check_line(task, line) for line in lines)
    assert lines == synthetic.generate(task, 400, 7)        # the same lines as the library
    assert f"400 {task} lines" in result.stderr and result.stdout == ""
    run_cli("corpus", task, "--out", str(again), "--count", "400", "--seed", "7")
    run_cli("corpus", task, "--out", str(other), "--count", "400", "--seed", "8")
    assert again.read_bytes() == first.read_bytes() and other.read_bytes() != first.read_bytes()


def test_counter_default_range_is_one_to_ten_and_can_be_moved(tmp_path):
    path = tmp_path / "counter.txt"
    assert run_cli("corpus", "counter", "--out", str(path), "--count", "2000").exit_code == 0
    assert {line.index("X") for line in _lines(path)} == set(range(1, 11))
    run_cli("corpus", "counter", "--out", str(path), "--count", "500", "--min-n", "12", "--max-n", "15")
    assert {line.index("X") for line in _lines(path)} == set(range(12, 16))


def test_range_options_of_every_task(tmp_path):
    path = tmp_path / "corpus.txt"
    run_cli("corpus", "selective-counter", "--out", str(path), "--count", "500", "--min-n", "3", "--max-n", "4",
            "--min-noise", "2", "--max-noise", "2")
    for line in _lines(path):
        prefix = line.split("Y")[0]
        assert prefix.count("a") in (3, 4) and prefix.count("X") == 2 and check_line("selective-counter", line)
    run_cli("corpus", "memorizer", "--out", str(path), "--count", "500", "--min-gap", "20", "--max-gap", "20")
    assert all(re.fullmatch(r"([AB])x{20}Y([ab])", line) for line in _lines(path))
    run_cli("corpus", "copy", "--out", str(path), "--count", "500", "--length", "5", "--alphabet", "xyz")
    lines = _lines(path)
    assert all(re.fullmatch(r"([xyz]{5})X\1", line) for line in lines)
    assert set("".join(lines)) == set("xyzX")


def test_stdout_holds_only_the_corpus(tmp_path):
    result = run_cli("corpus", "memorizer", "--out", "-", "--count", "5", "--seed", "3")
    assert result.exit_code == 0
    assert result.stdout == "".join(line + "\n" for line in synthetic.generate("memorizer", 5, 3))
    assert "5 memorizer lines" in result.stderr and "--min-gap 1 --max-gap 10 --seed 3" in result.stderr


def test_zero_lines_is_an_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    assert run_cli("corpus", "copy", "--out", str(path), "--count", "0").exit_code == 0
    assert path.read_bytes() == b""


@pytest.mark.parametrize("args, message", [
    (["copy", "--min-n", "3"], "--min-n does not apply to copy; it takes --length, --alphabet"),
    (["memorizer", "--max-noise", "3"], "--max-noise does not apply to memorizer; it takes --min-gap, --max-gap"),
    (["counter", "--min-n", "5", "--max-n", "2"], "need 1 <= --min-n <= --max-n, got --min-n=5, --max-n=2"),
    (["selective-counter", "--min-noise", "4", "--max-noise", "1"], "--min-noise <= --max-noise"),
    (["copy", "--alphabet", "abX"], "alphabet must be non-empty and hold no 'X'"),
    (["counter", "--min-n", "0"], "0 is not in the range x>=1"),
    (["parrot"], "'parrot' is not one of 'counter', 'selective-counter', 'memorizer', 'copy'"),
])
def test_bad_options_are_one_line_usage_errors(tmp_path, args, message):
    out = tmp_path / "never.txt"
    result = run_cli("corpus", *args, "--out", str(out))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert_no_traceback(result)
    assert not out.exists()


def test_out_is_required():
    result = run_cli("corpus", "counter")
    assert result.exit_code == 2 and "Missing option '--out'" in result.stderr
