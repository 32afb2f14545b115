"""One result in every format (`Output`: TSV records, a JSON document, a terminal picture) and
`write`, which emits it; and how a character is escaped in a TSV field."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from rich.console import Console, RenderableType

from ..errors import one_line
from .glyphs import is_control


@dataclass(frozen=True)
class Rows:
    """Records a block of rows at a time: `blocks()` yields lists of columns, in the order of the
    Output's fields, each column a list of equal length. How a long table is written (every
    character of a text) without a dict per row or the whole table in memory."""

    blocks: Callable[[], Iterable[Sequence[Sequence]]]


def records_tsv(records: Iterable[Mapping] | Rows, fields: Sequence[str]) -> Iterable[str]:
    """A header and one line per record; text fields escaped like characters, floats to 6 digits."""
    yield "\t".join(fields)
    if isinstance(records, Rows):
        for block in records.blocks():
            yield from map("\t".join, zip(*(_cells(column) for column in block)))
        return
    for record in records:
        cells = []
        for name in fields:
            value = record[name]
            cells.append(escape_text(value) if isinstance(value, str) else
                         f"{value:.6g}" if isinstance(value, float) else str(value))
        yield "\t".join(cells)


def _cells(column: Sequence) -> list[str]:
    """One column of a block as TSV fields (every value of a column has the type of its first)."""
    first = column[0] if len(column) else None
    if isinstance(first, str):
        return [escape_text(value) for value in column]
    if isinstance(first, float):
        return [f"{value:.6g}" for value in column]
    return [str(value) for value in column]


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def escape_char(char: str) -> str:
    """A character as one TSV field: \\n, \\t, \\r, \\\\, and \\xHH / \\uHHHH / \\UHHHHHHHH for other
    control characters and line separators, so a record is one line for every reader (Python's
    splitlines breaks at \\x0b, \\x85, \\u2028 …). Everything else, CJK and emoji included, is as is."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    return one_line(char) if is_control(char) else char


_ESCAPED: dict[str, str] = {}


def escape_text(text: str) -> str:
    """`escape_char` of every character of a text (each distinct character escaped once)."""
    return "".join([_ESCAPED.get(c) or _ESCAPED.setdefault(c, escape_char(c)) for c in text])


@dataclass(frozen=True)
class Pieces:
    """A long JSON array (or, with `string`, a long JSON string) of a document, written piece by
    piece: `pieces()` yields lists of items (strings). Never built whole in memory."""

    pieces: Callable[[], Iterable]
    string: bool = False


@dataclass(frozen=True)
class Output:
    """One result ready for every --format: TSV records under `fields` (dicts, or `Rows` for a
    long table), a JSON document (whose long values may be `Pieces`), and a picture for the
    terminal (built only when drawn, for the console's width: one renderable, or an iterator of
    them drawn one after another). Made from facts by the *_output functions (traces.py, scores.py,
    atlas.py); written by `write`."""

    fields: Sequence[str]
    records: Iterable[Mapping] | Rows
    document: Mapping
    picture: Callable[[int], RenderableType | Iterator[RenderableType]]
    ascii_json: bool = False      # JSON with non-ASCII characters escaped (what --stats writes)


def write(fmt: str, output: Output, stream=None) -> None:
    """Emit `output` on `stream` (default: stdout) as "tsv", "json" or "text" (the rich picture),
    each a piece at a time."""
    stream = sys.stdout if stream is None else stream
    if fmt == "tsv":
        for lines in _batched(records_tsv(output.records, output.fields)):
            stream.write("".join(line + "\n" for line in lines))
    elif fmt == "json":
        stream.writelines(json_chunks(output.document, output.ascii_json))
        stream.write("\n")
    else:
        console = Console(file=stream, highlight=False, soft_wrap=False)
        picture = output.picture(console.width)
        for part in picture if isinstance(picture, Iterator) else (picture,):
            console.print(part)


def _batched(lines: Iterable[str], size: int = 4096) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def json_chunks(value, ensure_ascii: bool = False) -> Iterator[str]:
    """The text of json.dumps(value, ensure_ascii=ensure_ascii), in pieces: mappings are walked
    and `Pieces` written a piece at a time; anything else is json.dumps of it."""
    if isinstance(value, Pieces):
        yield '"' if value.string else "["
        first = True
        for piece in value.pieces():
            if not len(piece):
                continue
            text = json.dumps(piece if value.string else list(piece), ensure_ascii=ensure_ascii)[1:-1]
            yield text if first or value.string else ", " + text
            first = False
        yield '"' if value.string else "]"
    elif isinstance(value, Mapping):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield ("" if n == 0 else ", ") + json.dumps(str(key), ensure_ascii=ensure_ascii) + ": "
            yield from json_chunks(item, ensure_ascii)
        yield "}"
    else:
        yield json.dumps(value, ensure_ascii=ensure_ascii)


def _floats(values) -> list[float]:
    """A (T,) sequence, list or tensor, as Python floats."""
    return np.asarray(values, dtype=np.float64).tolist()
