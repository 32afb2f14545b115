"""`charlstm corpus TASK` (cli/corpus.py): probe-task corpora through the real command line, every
line checked, streamed to their file in flat memory; and the findings page's commands train the
recipe's model weight for weight."""

from __future__ import annotations

import os
import re

import pytest

from charlstm.probes import tasks
from charlstm.probes.tasks import TASKS, check_line
from conftest import charlstm_process, measured, run_cli


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
    assert lines == tasks.generate(task, 400, 7)        # the same lines as the library
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
    assert result.stdout == "".join(line + "\n" for line in tasks.generate("memorizer", 5, 3))
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
    assert not out.exists()


def test_out_is_required():
    result = run_cli("corpus", "counter")
    assert result.exit_code == 2 and "Missing option '--out'" in result.stderr


def test_missing_folders_of_out_are_created_as_the_findings_page_needs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # docs/findings.md's first command, in a fresh checkout
    result = run_cli("corpus", "counter", "--out", "probe-data/deeper/counter.txt", "--count", "30", "--seed", "0")
    assert result.exit_code == 0, result.stderr
    assert _lines(tmp_path / "probe-data" / "deeper" / "counter.txt") == tasks.generate("counter", 30, 0)
    assert "→ probe-data/deeper/counter.txt" in result.stderr
    assert sorted(os.listdir(tmp_path / "probe-data" / "deeper")) == ["counter.txt"]   # no temp file left


def test_bad_options_create_no_folder(tmp_path):
    result = run_cli("corpus", "counter", "--out", str(tmp_path / "new" / "c.txt"), "--min-n", "5", "--max-n", "2")
    assert result.exit_code == 2 and not (tmp_path / "new").exists()


@pytest.mark.parametrize("blocker, kind", [("file", "not a folder"), ("broken link", "a broken symbolic link")])
def test_a_part_of_out_that_is_not_a_folder_is_one_line(tmp_path, blocker, kind):
    block = tmp_path / "block"
    if blocker == "file":
        block.write_text("mine\n", encoding="utf-8")
    else:
        block.symlink_to(tmp_path / "nowhere")
    result = run_cli("corpus", "counter", "--out", str(block / "sub" / "c.txt"), "--count", "3")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: cannot create the folder {block / 'sub'} for --out: {block} is {kind}\n"
    assert not (tmp_path / "nowhere").exists()
    assert blocker != "file" or block.read_text(encoding="utf-8") == "mine\n"



def test_a_written_corpus_holds_one_sequence_per_line(tmp_path):
    path = tmp_path / "memo.txt"
    result = run_cli("corpus", "memorizer", "--out", str(path), "--count", "50", "--seed", "9", "--max-gap", "3")
    assert result.exit_code == 0, result.output
    content = path.read_bytes().decode("utf-8")
    assert content.endswith("\n") and "\r" not in content
    lines = content.split("\n")[:-1]
    assert lines == tasks.generate_memorizer(50, seed=9, max_gap=3)
    assert all(check_line("memorizer", line) and line.count("x") <= 3 for line in lines)


def test_streamed_corpus_lines_are_the_library_lines(tmp_path):
    for task in tasks.TASKS:
        assert list(tasks.iter_lines(task, 300, 5)) == tasks.generate(task, 300, 5)
    result = run_cli("corpus", "selective-counter", "--count", "2000", "--seed", "3", "--out", "-")
    assert result.stdout == "".join(line + "\n" for line in tasks.generate("selective-counter", 2000, 3))
    run_cli("corpus", "copy", "--count", "1000", "--seed", "2", "--length", "5", "--out", str(tmp_path / "c.txt"))
    assert (tmp_path / "c.txt").read_text() == "".join(l + "\n" for l in tasks.generate("copy", 1000, 2, length=5))


def test_a_big_corpus_is_streamed_to_its_file_in_flat_memory(tmp_path):
    out = tmp_path / "counter.txt"
    n, count = 100_000, 500                                         # 100 MB of text in lines of 200,001 characters
    code, _, err, peak = measured("corpus", "counter", "--count", count, "--min-n", n, "--max-n", n, "--out", out,
                                  cwd=tmp_path)
    assert code == 0, err
    assert f"[{count} counter lines, {count * (2 * n + 2):,} characters" in err
    assert out.stat().st_size == count * (2 * n + 2)
    with open(out, "rb") as f:
        assert f.readline() == b"a" * n + b"X" + b"b" * n + b"\n"
    assert peak < 100, f"{peak} MB to write a 100 MB corpus"   


def test_a_line_length_beyond_reason_is_one_usage_error_before_any_work(tmp_path):
    out = tmp_path / "never.txt"
    done = charlstm_process("corpus", "counter", "--max-n", "99999999999", "--out", out, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "Error: --max-n is at most 1,000,000, got --max-n=99999999999" in done.stderr
    assert not out.exists()


def test_the_findings_commands_train_the_recipe_model_weight_for_weight(tmp_path):
    """docs/findings.md's claim: `charlstm corpus` + `charlstm train --threads 1` give the weights of
    recipes.train_probe. The copy task's 20 units are where a trial step on two threads would round
    differently (measured: 1.6e-5 after 200 steps), so both sides must pin one thread."""
    from safetensors.numpy import load_file

    from charlstm.probes import recipes

    corpus, cli_run, lib_run = tmp_path / "copy.txt", tmp_path / "cli", tmp_path / "lib"
    assert run_cli("corpus", "copy", "--out", str(corpus), "--count", "4000", "--seed", "0").exit_code == 0
    trained = run_cli("train", str(corpus), "--out", str(cli_run), "--hidden-size", "20", "--num-layers", "1",
                      "--embedding-size", "8", "--batch-size", "32", "--seq-len", "64", "--lr", "2e-2",
                      "--warmup-steps", "20", "--lr-decay", "1", "--forget-bias", "1", "--max-steps", "200",
                      "--eval-every", "200", "--log-every", "50", "--preview", "0", "--seed", "1",
                      "--threads", "1", "--eval-seconds", "0", "--ema-decay", "0.995", "--short-windows", "0")
    assert trained.exit_code == 0, trained.stderr
    recipes.train_probe("copy", lib_run, steps=200)
    cli, lib = load_file(cli_run / "best.safetensors"), load_file(lib_run / "best.safetensors")
    weights = [name for name in lib if name.startswith("model.")]
    assert weights and all((cli[name] == lib[name]).all() for name in weights)
