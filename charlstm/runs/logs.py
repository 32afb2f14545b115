"""A run's training log (metrics.jsonl) and previews (samples.txt): their formats, written and read.

The log is one strict JSON object per line, each with its integer "step"; the previews are blocks
headed `--- step N, val X bpc ---`. Training appends to both (rank 0, under the run's lock) and a
resumed run first drops what came after its checkpoint; reports read them back line by line, at
most MAX_LOG_READ bytes of each, skipping torn or foreign lines. Neither file is ever opened
through a symbolic link. Knows nothing of what the figures mean.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from ..files import METRICS, SAMPLES, open_append, open_read, write_file

#: The most of metrics.jsonl or samples.txt a report reads (a run of millions of steps logs more).
MAX_LOG_READ = 64 << 20


_PREVIEW_HEAD = re.compile(r"--- step (\d+), val (\S+) bpc ---\n")


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
        torn or blank ones; the log is rewritten whole, streamed from the old one."""
        if not self.metrics.exists():
            return

        def kept(sink: BinaryIO) -> None:
            with open_read(self.metrics) as source:
                for piece in _pieces(source):
                    for line in piece.decode("utf-8").splitlines():
                        if line.strip() and _line_step(line) <= step:
                            sink.write((line + "\n").encode("utf-8"))

        write_file(self.metrics, kept)

    def clear_samples(self) -> None:
        self.samples.unlink(missing_ok=True)

    def append_sample(self, step: int, val_bpc: float, text: str) -> None:
        """Append one preview (`val_bpc` NaN when there was no validation text)."""
        with open_append(self.samples) as f:
            f.write(f"--- step {step}, val {val_bpc:.3f} bpc ---\n{text}\n\n")

    # -- read by reports

    def read_metrics(self, limit: int | None = None) -> list[dict]:
        """The log's records (JSON objects with an integer step), from at most the first `limit`
        bytes (default MAX_LOG_READ); torn or foreign lines are skipped. [] when there is no log."""
        records = []
        for line in _read_lines(self.metrics, limit or MAX_LOG_READ):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
        return records

    def read_samples(self, limit: int | None = None) -> list[tuple[int, float | None, str]]:
        """The previews as (step, val bpc or None, text), from at most the first `limit` bytes
        (default MAX_LOG_READ). Text before the first head is not a preview."""
        previews: list[tuple[int, float | None, str]] = []
        head, body = None, []
        for piece in _read_pieces(self.samples, limit or MAX_LOG_READ):
            found = _PREVIEW_HEAD.fullmatch(piece)
            if found is None:
                body.append(piece)
                continue
            if head is not None:
                previews.append(_preview(head, body))
            head, body = found, []
        if head is not None:
            previews.append(_preview(head, body))
        return previews


def _preview(head: re.Match, body: list[str]) -> tuple[int, float | None, str]:
    """(step, val bpc or None, text) of one preview; its text without the blank line that ends it."""
    text = "".join(body)
    try:
        val = float(head.group(2))
    except ValueError:
        val = None
    return int(head.group(1)), val if val == val else None, text[:-2] if text.endswith("\n\n") else text


def _read_lines(path: Path, limit: int) -> Iterator[str]:
    """The lines (as str.splitlines() cuts them) of at most the first `limit` bytes of a log."""
    for piece in _read_pieces(path, limit):
        yield from piece.splitlines()


def _read_pieces(path: Path, limit: int) -> Iterator[str]:
    """The newline-ended pieces of at most the first `limit` bytes of a log, decoded one at a time
    (undecodable bytes replaced); nothing for a missing file or a link."""
    try:
        source = open_read(path)
    except OSError:
        return
    with source:
        for piece in _pieces(source, limit):
            yield piece.decode("utf-8", errors="replace")


def _pieces(source: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """`source` up to each newline byte, over its first `limit` bytes (all of it with None). A
    newline byte never falls inside a UTF-8 character, so each piece decodes as it would within
    the whole, and `splitlines()` of each gives the lines of the whole."""
    left = limit
    while left is None or left > 0:
        piece = source.readline(-1 if left is None else left)
        if not piece:
            return
        if left is not None:
            left -= len(piece)
        yield piece


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a kill: drop it
