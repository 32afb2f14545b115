"""A run's training log (metrics.jsonl) and previews (samples.txt): their formats, written and read.

The log is one strict JSON object per line, each with its integer "step"; the previews are blocks
headed `--- step N, val X bpc ---`. Training appends to both (rank 0, under the run's lock) and a
resumed run first drops what came after its checkpoint. Readers stream them: at most MAX_LOG_READ
bytes of each, a line at a time, a line longer than MAX_LOG_LINE never held whole (a log line is
skipped, a preview's line cut), torn or foreign lines skipped; a step is taken only within the
bounds `log_number` keeps, a figure only when it is a finite number (which values a figure can
take is the drawer's). Only regular files are read, never through a symbolic link: one of another
kind is files.open_regular's one-line error. Knows nothing of what the figures mean.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from ..config import Bounds
from ..errors import TrainingError
from ..files import METRICS, SAMPLES, open_append, open_regular, write_file

#: The most of metrics.jsonl or samples.txt a report reads (a run of millions of steps logs more).
MAX_LOG_READ = 64 << 20


#: The longest line (with its newline) a reader of a log holds: a log line is a few hundred bytes,
#: and a report shows a few thousand characters of a preview; a longer line is never held whole.
MAX_LOG_LINE = 1 << 16


#: The numbers a run records (its log, its previews, a checkpoint's training metadata), as a
#: reader takes them: a step or a count (an integer a float holds exactly), else a figure (a time,
#: a loss, a rate: finite, not negative, far above any a run produces). Anything else is refused.
STEP_BOUNDS, FIGURE_BOUNDS = Bounds(0, (1 << 53) - 1, integer=True), Bounds(0, 1e15)


_STEP_DIGITS = len(str(STEP_BOUNDS.high))


#: A preview as read: (step, val bpc or None, text).
Preview = tuple[int, float | None, str]


_PREVIEW_HEAD = re.compile(r"--- step (\d+), val (\S+) bpc ---\n")


def log_number(value: Any, step: bool = False) -> int | float | None:
    """`value` (a number parsed from a log) if a reader may use it: with `step`, an integer step
    within STEP_BOUNDS; else a figure within FIGURE_BOUNDS. None for anything else (a string, a
    bool, null, NaN, 1e308, an integer of thousands of digits)."""
    bounds = STEP_BOUNDS if step else FIGURE_BOUNDS
    if type(value) is int or (type(value) is float and not step):  # not a bool; NaN fails both comparisons
        return value if bounds.low <= value <= bounds.high else None
    return None


def _parsed_step(digits: str) -> int | None:
    """A step written as decimal digits (a preview's head), refused unread when it has more digits
    than any step (Python would refuse to convert thousands of them)."""
    return log_number(int(digits), step=True) if len(digits) <= _STEP_DIGITS else None


class MetricsWriter:
    """metrics.jsonl open for appending: each record becomes one line of strict JSON, flushed."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self._file = open_append(path, truncate=fresh)

    def write(self, record: dict[str, Any]) -> None:
        """Append `record`; a non-finite number (JSON has no word for it) is written as null."""
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RunLog:
    """The log and the previews of the run folder `path`. Cheap to make; touches the disk only when
    a method is called."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.metrics, self.samples = Path(path) / METRICS, Path(path) / SAMPLES

    # -- written by training

    def open_metrics(self, fresh: bool) -> MetricsWriter:
        """The log for appending records; emptied first for a fresh run."""
        return MetricsWriter(self.metrics, fresh)

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop log lines from steps after the checkpoint (they will be run again), and
        torn, blank, foreign or overlong ones; the log is rewritten whole, streamed from the old one."""
        try:
            source = open_regular(self.metrics, TrainingError)
        except FileNotFoundError:
            return

        def kept(sink: BinaryIO) -> None:
            for piece in _pieces(source):
                for line in piece.decode("utf-8", errors="replace").splitlines():
                    if line.strip() and _line_step(line) <= step:
                        sink.write((line + "\n").encode("utf-8"))

        with source:
            write_file(self.metrics, kept)

    def clear_samples(self) -> None:
        self.samples.unlink(missing_ok=True)

    def append_sample(self, step: int, val_bpc: float, text: str) -> None:
        """Append one preview (`val_bpc` NaN when there was no validation text)."""
        with open_append(self.samples) as f:
            f.write(f"--- step {step}, val {val_bpc:.3f} bpc ---\n{text}\n\n")

    # -- read by reports

    def records(self, fields: Iterable[str] | None = None, limit: int | None = None) -> Iterator[dict]:
        """The log's records (JSON objects with a step `log_number` keeps), from at most the first
        `limit` bytes (default MAX_LOG_READ), one at a time. With `fields`, a record holds its step
        and only those of `fields` that are finite numbers (the drawer decides which a figure can
        take, and says what it left out). Nothing when there is no log."""
        wanted = None if fields is None else tuple(fields)
        for line in _read_lines(self.metrics, limit or MAX_LOG_READ):
            record = _record(line)
            if record is None:
                continue
            if wanted is not None:
                kept = {"step": record["step"]}
                for name in wanted:
                    value = record.get(name)
                    if type(value) in (int, float) and math.isfinite(value):  # not a bool; what a figure may
                        kept[name] = value                                   # hold is the drawer's (config.LOG_FIGURES)
                record = kept
            yield record

    def read_metrics(self, limit: int | None = None) -> list[dict]:
        """Every record whole (see `records`)."""
        return list(self.records(limit=limit))

    def previews(self, text_chars: int | None = None, limit: int | None = None) -> Iterator[Preview]:
        """The previews as (step, val bpc or None, text), from at most the first `limit` bytes
        (default MAX_LOG_READ), one at a time; with `text_chars`, at most that many characters of
        each text are kept. Text before the first head is not a preview; a head whose step
        `log_number` refuses starts none."""
        head, body, kept = None, [], 0
        room = None if text_chars is None else text_chars + 2  # the blank line that ends a text
        for piece in _read_pieces(self.samples, limit or MAX_LOG_READ, cut_long=True):
            found = _PREVIEW_HEAD.fullmatch(piece)
            if found is None:
                if room is None or kept < room:
                    body.append(piece if room is None else piece[: room - kept])
                    kept += len(body[-1])
                continue
            if head is not None and head[1] is not None:
                yield _preview(head, body, text_chars)
            head, body, kept = (found, _parsed_step(found.group(1))), [], 0
        if head is not None and head[1] is not None:
            yield _preview(head, body, text_chars)

    def read_samples(self, limit: int | None = None) -> list[Preview]:
        """Every preview whole (see `previews`)."""
        return list(self.previews(limit=limit))


def _record(line: str) -> dict | None:
    """A log line as a record: a JSON object whose step `log_number` keeps; else None."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # torn JSON, and integers of more digits than Python converts
        return None
    if isinstance(record, dict) and log_number(record.get("step"), step=True) is not None:
        return record
    return None


def _preview(head: tuple[re.Match, int], body: list[str], text_chars: int | None) -> Preview:
    """(step, val bpc or None, text) of one preview, its text without the blank line that ends
    it (cut to `text_chars`)."""
    found, step = head
    text = "".join(body)
    try:
        val = log_number(float(found.group(2)))
    except ValueError:
        val = None
    text = text[:-2] if text.endswith("\n\n") else text
    return step, val, text if text_chars is None else text[:text_chars]


def _read_lines(path: Path, limit: int) -> Iterator[str]:
    """The lines (as str.splitlines() cuts them) of at most the first `limit` bytes of a log."""
    for piece in _read_pieces(path, limit):
        yield from piece.splitlines()


def _read_pieces(path: Path, limit: int, cut_long: bool = False) -> Iterator[str]:
    """The newline-ended pieces of at most the first `limit` bytes of a log, decoded one at a time
    (undecodable bytes replaced); nothing when there is no log, one line's error when it is not a
    regular file. An overlong line is skipped, or with `cut_long` kept as its start (see `_pieces`)."""
    try:
        source = open_regular(path)
    except FileNotFoundError:
        return
    with source:
        for piece in _pieces(source, limit, cut_long):
            yield piece.decode("utf-8", errors="replace")


def _pieces(source: BinaryIO, limit: int | None = None, cut_long: bool = False) -> Iterator[bytes]:
    """`source` up to each newline byte, over its first `limit` bytes (all of it with None). A piece
    of more than MAX_LOG_LINE bytes is read through without being held: skipped, or with `cut_long`
    given as its first MAX_LOG_LINE bytes (to a whole character) and a newline. A newline byte
    never falls inside a UTF-8 character, so each piece decodes as it would within the whole, and
    `splitlines()` of each gives the lines of the whole."""
    left = limit
    while left is None or left > 0:
        piece = source.readline(MAX_LOG_LINE + 1 if left is None else min(MAX_LOG_LINE + 1, left))
        if not piece:
            return
        if left is not None:
            left -= len(piece)
        if len(piece) <= MAX_LOG_LINE:
            yield piece
            continue
        if cut_long:
            yield _whole_characters(piece[:MAX_LOG_LINE]) + b"\n"
        while not piece.endswith(b"\n") and (left is None or left > 0):  # the rest of the long line
            piece = source.readline(MAX_LOG_LINE if left is None else min(MAX_LOG_LINE, left))
            if not piece:
                return
            if left is not None:
                left -= len(piece)


def _whole_characters(data: bytes) -> bytes:
    """`data` without a UTF-8 character cut at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte of the last character: how many bytes it needs
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data[:-back] if back < need else data
    return data


def _line_step(line: str) -> int:
    """The step of a log line; a torn or foreign line (a kill's last line) counts as past every step."""
    record = _record(line)
    return 1 << 62 if record is None else record["step"]
