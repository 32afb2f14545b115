"""Synthetic probe corpora: the counting and memory tasks of "Exploring LSTMs" (Edwin Chen).

Holds one generator per task (a list of lines, deterministic for a seed), a registry of the
tasks, a grammar check per task, the split of a line into the prompt a model is given and the
answer it must complete, and writing a corpus file. Does not train, sample or score models:
evaluation lives elsewhere and builds on `split_prompt` and `check_line`.

Tasks (one sequence per line; defaults in brackets):
    counter            a^N X b^N                       aaaXbbb          N in [1, 10]
    selective-counter  N a's with noise X's, Y, b^N    aXaaXXaYbbb      N in [1, 10], X's in [0, 5]
    memorizer          A|B, x^K, Y, the letter again   AxxxYa, BxxYb    K in [1, 10]
    copy               s X s, s drawn from an alphabet abcXabc          len(s) = 3, alphabet abc
"""

from __future__ import annotations

import inspect
import random
import re
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, NamedTuple

from ..config import MAX_PROBE_LINES, MAX_PROBE_PARAMETER


class SyntheticTask(NamedTuple):
    """A registered task: its generator (count, seed, **params) -> lines, and a description."""

    generate: Callable[..., list[str]]
    description: str


def _check_range(name: str, low: int, high: int, minimum: int) -> None:
    if low < minimum or high < low:
        raise ValueError(
            f"need {minimum} <= min_{name} <= max_{name}, got min_{name}={low}, max_{name}={high}"
        )
    if high > MAX_PROBE_PARAMETER:
        raise ValueError(f"max_{name} is at most {MAX_PROBE_PARAMETER:,}, got max_{name}={high}")


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if count > MAX_PROBE_LINES:
        raise ValueError(f"count is at most {MAX_PROBE_LINES:,}, got {count}")


def generate_counter(count: int, seed: int = 0, *, min_n: int = 1, max_n: int = 10) -> list[str]:
    """`count` lines a^N X b^N, N uniform in [min_n, max_n] (e.g. "aaaXbbb")."""
    return list(_counter_lines(count, seed, min_n=min_n, max_n=max_n))


def _counter_lines(count: int, seed: int, *, min_n: int, max_n: int) -> Iterator[str]:
    _check_count(count)
    _check_range("n", min_n, max_n, minimum=1)

    def lines() -> Iterator[str]:
        rng = random.Random(seed)
        for _ in range(count):
            n = rng.randint(min_n, max_n)
            yield "a" * n + "X" + "b" * n

    return lines()


def generate_selective_counter(
    count: int,
    seed: int = 0,
    *,
    min_n: int = 1,
    max_n: int = 10,
    min_noise: int = 0,
    max_noise: int = 5,
) -> list[str]:
    """`count` lines of N a's with noise X's among them, then Y, then N b's ("aXaaXXaYbbb").

    N is uniform in [min_n, max_n]. The number of X's is drawn uniform in [min_noise,
    max_noise] independently of N, and each X goes after a uniformly chosen a, so runs of
    0 or more X's follow the a's and a line always starts with an a. Drawing the X count
    independently (rather than flipping a coin after every a) keeps it from growing with N, so
    the noise carries no information about the answer: a model must count the a's alone.
    """
    return list(_selective_counter_lines(count, seed, min_n=min_n, max_n=max_n, min_noise=min_noise,
                                         max_noise=max_noise))


def _selective_counter_lines(count: int, seed: int, *, min_n: int, max_n: int, min_noise: int,
                             max_noise: int) -> Iterator[str]:
    _check_count(count)
    _check_range("n", min_n, max_n, minimum=1)
    _check_range("noise", min_noise, max_noise, minimum=0)

    def lines() -> Iterator[str]:
        rng = random.Random(seed)
        for _ in range(count):
            n = rng.randint(min_n, max_n)
            noise_after = [0] * n  # how many X's follow the k-th a
            for _ in range(rng.randint(min_noise, max_noise)):
                noise_after[rng.randrange(n)] += 1
            prefix = "".join("a" + "X" * noise for noise in noise_after)
            yield prefix + "Y" + "b" * n

    return lines()


def generate_memorizer(
    count: int, seed: int = 0, *, min_gap: int = 1, max_gap: int = 10
) -> list[str]:
    """`count` lines: A or B, K x's (K uniform in [min_gap, max_gap]), Y, then the first letter
    in lower case ("AxxxYa", "BxxYb"): the model must remember the letter across the gap."""
    return list(_memorizer_lines(count, seed, min_gap=min_gap, max_gap=max_gap))


def _memorizer_lines(count: int, seed: int, *, min_gap: int, max_gap: int) -> Iterator[str]:
    _check_count(count)
    _check_range("gap", min_gap, max_gap, minimum=1)

    def lines() -> Iterator[str]:
        rng = random.Random(seed)
        for _ in range(count):
            letter = rng.choice("AB")
            gap = rng.randint(min_gap, max_gap)
            yield letter + "x" * gap + "Y" + letter.lower()

    return lines()


def generate_copy(
    count: int, seed: int = 0, *, length: int = 3, alphabet: str = "abc"
) -> list[str]:
    """`count` lines s X s, s made of `length` characters drawn uniformly (with repetition)
    from `alphabet` ("abcXabc", "caaXcaa")."""
    return list(_copy_lines(count, seed, length=length, alphabet=alphabet))


def _copy_lines(count: int, seed: int, *, length: int, alphabet: str) -> Iterator[str]:
    _check_count(count)
    if not 1 <= length <= MAX_PROBE_PARAMETER:
        raise ValueError(f"length must be from 1 to {MAX_PROBE_PARAMETER:,}, got {length}")
    if not alphabet or any(char in "X\n\r" for char in alphabet):
        raise ValueError(
            f"alphabet must be non-empty and hold no 'X' or line end, got {alphabet!r}"
        )

    def lines() -> Iterator[str]:
        rng = random.Random(seed)
        for _ in range(count):
            sequence = "".join(rng.choice(alphabet) for _ in range(length))
            yield sequence + "X" + sequence

    return lines()


#: Tasks by name.
TASKS: Mapping[str, SyntheticTask] = MappingProxyType(
    {
        "counter": SyntheticTask(generate_counter, "a^N X b^N: count the a's, emit as many b's"),
        "selective-counter": SyntheticTask(
            generate_selective_counter,
            "a's with noise X's, Y, then one b per a: count a's, ignore X's",
        ),
        "memorizer": SyntheticTask(
            generate_memorizer, "A or B, x's, Y, then a or b: remember the first letter"
        ),
        "copy": SyntheticTask(generate_copy, "three of a/b/c, X, the same three again"),
    }
)

# Each task's lines one at a time (checked parameters first), for `iter_lines`.
_LINES: Mapping[str, Callable[..., Iterator[str]]] = MappingProxyType(
    {"counter": _counter_lines, "selective-counter": _selective_counter_lines, "memorizer": _memorizer_lines,
     "copy": _copy_lines}
)

# The character after which the rest of a line is fully determined by what came before.
_ANSWER_MARKERS: Mapping[str, str] = MappingProxyType(
    {"counter": "X", "selective-counter": "Y", "memorizer": "Y", "copy": "X"}
)

_COUNTER_LINE = re.compile(r"(a+)X(b+)")
_SELECTIVE_COUNTER_LINE = re.compile(r"(a[aX]*)Y(b+)")
_MEMORIZER_LINE = re.compile(r"([AB])x+Y([ab])")
_COPY_LINE = re.compile(r"([^X\r\n]+)X([^X\r\n]+)")


def _task(name: str) -> SyntheticTask:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


#: Lines `charlstm corpus` writes when no --count is given.
DEFAULT_COUNT = 5000


def task_parameters(task: str) -> dict[str, int | str]:
    """The parameters a task's generator takes beyond count and seed, with their defaults
    ({"min_n": 1, "max_n": 10} for the counter)."""
    signature = inspect.signature(_task(task).generate)
    return {name: p.default for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}


def generate(task: str, count: int, seed: int = 0, **params: int | str) -> list[str]:
    """`count` lines of `task`, deterministic for `seed`; params go to the task's generator."""
    return _task(task).generate(count, seed, **params)


def iter_lines(task: str, count: int, seed: int = 0, **params: int | str) -> Iterator[str]:
    """The lines of `generate(task, count, seed, **params)` one at a time, in memory that does not
    grow with `count`. The parameters are checked at the call (a ValueError or TypeError), before
    the first line is made."""
    takes = task_parameters(task)
    unknown = sorted(set(params) - set(takes))
    if unknown:
        raise TypeError(f"{task} takes no parameter {unknown[0]!r}")
    return _LINES[task](count, seed, **{**takes, **params})


def check_line(task: str, line: str) -> bool:
    """Whether `line` (no line end) follows the grammar of `task`.

    Checks structure and the dependencies a model must learn (as many b's as a's, the answer
    letter matching the first, the copy equal to the original), not the parameter ranges: a
    counter line with N = 50 passes. Copy lines may use any alphabet without "X".
    """
    _task(task)
    if task == "counter":
        match = _COUNTER_LINE.fullmatch(line)
        return bool(match) and len(match.group(1)) == len(match.group(2))
    if task == "selective-counter":
        match = _SELECTIVE_COUNTER_LINE.fullmatch(line)
        return bool(match) and match.group(1).count("a") == len(match.group(2))
    if task == "memorizer":
        match = _MEMORIZER_LINE.fullmatch(line)
        return bool(match) and match.group(1).lower() == match.group(2)
    match = _COPY_LINE.fullmatch(line)
    return bool(match) and match.group(1) == match.group(2)


def split_prompt(task: str, line: str) -> tuple[str, str]:
    """Split a line into (prompt, answer): the prompt ends with the task's marker character
    (X for counter and copy, Y for selective-counter and memorizer), after which the answer is
    fully determined. "aaaXbbb" -> ("aaaX", "bbb"). Raises ValueError if the marker is absent.
    """
    _task(task)
    marker = _ANSWER_MARKERS[task]
    position = line.find(marker)
    if position == -1:
        raise ValueError(f"{task} line {line!r} has no {marker!r} marker")
    return line[: position + 1], line[position + 1 :]


def text_blocks(lines: Iterator[str], block_chars: int = 1 << 20) -> Iterator[str]:
    """Lines as text ("\\n" after each) in blocks of about `block_chars` characters (a longer
    line is a block of its own): streaming a corpus in bounded memory, whatever its length."""
    block: list[str] = []
    size = 0
    for line in lines:
        block.append(line)
        size += len(line) + 1
        if size >= block_chars:
            yield "\n".join(block) + "\n"
            block, size = [], 0
    if block:
        yield "\n".join(block) + "\n"
