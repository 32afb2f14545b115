"""probes/tasks.py, the synthetic probe tasks: determinism, grammar of every line, coverage of the
ranges, lines streamed as generated, the registry."""

from __future__ import annotations

from collections import Counter

import pytest

from charlstm.probes import tasks
from charlstm.probes.tasks import TASKS, check_line, generate, generate_copy, generate_counter, generate_memorizer, generate_selective_counter, split_prompt

SAMPLE_SIZE = 3000


@pytest.mark.parametrize("task", list(TASKS))
def test_same_seed_same_lines_different_seed_different_lines(task: str) -> None:
    assert generate(task, 200, seed=7) == generate(task, 200, seed=7)
    assert generate(task, 200, seed=7) != generate(task, 200, seed=8)
    assert len(generate(task, 200, seed=7)) == 200
    assert generate(task, 0, seed=7) == []


@pytest.mark.parametrize("task", list(TASKS))
def test_every_line_of_a_large_sample_follows_the_grammar(task: str) -> None:
    lines = generate(task, SAMPLE_SIZE, seed=1)
    assert all(check_line(task, line) for line in lines)
    assert not any("\n" in line or "\r" in line for line in lines)


def test_counter_lines_and_coverage_of_n() -> None:
    assert generate_counter(5, seed=3) == generate("counter", 5, seed=3)
    lengths = Counter()
    for line in generate_counter(SAMPLE_SIZE, seed=2):
        a_run, b_run = line.split("X")
        assert set(a_run) == {"a"} and b_run == "b" * len(a_run)
        lengths[len(a_run)] += 1
    assert sorted(lengths) == list(range(1, 11))
    # Uniform: every N near SAMPLE_SIZE / 10 = 300.
    assert min(lengths.values()) > 200
    narrow = generate_counter(300, seed=2, min_n=4, max_n=5)
    assert {line.index("X") for line in narrow} == {4, 5}


def test_selective_counter_noise_is_independent_of_n() -> None:
    lines = generate_selective_counter(SAMPLE_SIZE, seed=4)
    counts = Counter()
    noise_by_small_n, noise_by_large_n = [], []
    for line in lines:
        prefix, answer = line.split("Y")
        n, noise = prefix.count("a"), prefix.count("X")
        assert prefix.startswith("a") and answer == "b" * n and 0 <= noise <= 5
        counts[n] += 1
        (noise_by_small_n if n <= 3 else noise_by_large_n).append(noise)
    assert sorted(counts) == list(range(1, 11))
    # The mean X count (2.5 for 0..5) does not grow with N.
    mean_small = sum(noise_by_small_n) / len(noise_by_small_n)
    mean_large = sum(noise_by_large_n) / len(noise_by_large_n)
    assert abs(mean_small - 2.5) < 0.3 and abs(mean_large - 2.5) < 0.3
    # X's do sit between a's, not only just before Y.
    assert any("Xa" in line for line in lines)
    noiseless = generate_selective_counter(50, seed=4, max_noise=0)
    assert all("X" not in line for line in noiseless)


def test_memorizer_answer_matches_first_letter_and_gaps_cover_range() -> None:
    lines = generate_memorizer(SAMPLE_SIZE, seed=5)
    gaps = Counter(line.count("x") for line in lines)
    assert sorted(gaps) == list(range(1, 11))
    assert Counter(line[0] for line in lines).keys() == {"A", "B"}
    assert all(line[-1] == line[0].lower() for line in lines)


def test_copy_repeats_three_letters_from_the_alphabet() -> None:
    lines = generate_copy(SAMPLE_SIZE, seed=6)
    assert all(len(line) == 7 and line[3] == "X" and line[:3] == line[4:] for line in lines)
    assert set("".join(lines)) == {"a", "b", "c", "X"}
    assert len(set(lines)) == 27  # all 3^3 sequences appear
    custom = generate_copy(10, seed=6, length=5, alphabet="xyz")
    assert all(len(line) == 11 and set(line) <= set("xyzX") for line in custom)


@pytest.mark.parametrize(
    ("task", "line", "valid"),
    [
        ("counter", "aaaXbbb", True),
        ("counter", "aaXbbb", False),
        ("counter", "Xb", False),
        ("counter", "aXb\n", False),
        ("selective-counter", "aXaaXXaYbbbb", True),
        ("selective-counter", "aXaaXXaYbbb", False),
        ("selective-counter", "XaYb", False),
        ("memorizer", "AxxxYa", True),
        ("memorizer", "BxxYb", True),
        ("memorizer", "AxxYb", False),
        ("memorizer", "AYa", False),
        ("copy", "abcXabc", True),
        ("copy", "abcXabd", False),
        ("copy", "XX", False),
    ],
)
def test_check_line_accepts_and_rejects(task: str, line: str, valid: bool) -> None:
    assert check_line(task, line) is valid


def test_split_prompt_ends_at_the_marker() -> None:
    assert split_prompt("counter", "aaaXbbb") == ("aaaX", "bbb")
    assert split_prompt("selective-counter", "aXaaXXaYbbbb") == ("aXaaXXaY", "bbbb")
    assert split_prompt("memorizer", "AxxxYa") == ("AxxxY", "a")
    assert split_prompt("copy", "abcXabc") == ("abcX", "abc")
    with pytest.raises(ValueError, match="marker"):
        split_prompt("counter", "aaa")


def test_unknown_task_and_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="valid tasks: counter, selective-counter"):
        generate("count", 3)
    with pytest.raises(ValueError, match="valid tasks"):
        check_line("count", "aXb")
    with pytest.raises(ValueError, match="min_n"):
        generate_counter(3, min_n=5, max_n=2)
    with pytest.raises(ValueError, match="min_n"):
        generate_counter(3, min_n=0)
    with pytest.raises(ValueError, match="alphabet"):
        generate_copy(3, alphabet="aX")
    with pytest.raises(ValueError, match="count"):
        generate_memorizer(-1)


def test_task_registry_has_descriptions_and_is_read_only() -> None:
    for name, (generator, description) in TASKS.items():
        assert callable(generator) and description, name
    with pytest.raises(TypeError):
        tasks.TASKS["new"] = TASKS["copy"]  # type: ignore[index]
