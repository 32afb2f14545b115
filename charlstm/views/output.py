"""One result in every format (`Output`: TSV records, a JSON document, a terminal picture) and
`write`, which emits it; and how a character is escaped in a TSV field."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from rich.console import Console, RenderableType

from ..errors import one_line
from .glyphs import is_control


def _column_records(text: str, columns: Mapping[str, Sequence[float]]) -> Iterable[dict]:
    for pos, char in enumerate(text):
        yield {"position": pos, "char": char, **{name: float(col[pos]) for name, col in columns.items()}}


def records_tsv(records: Iterable[Mapping], fields: Sequence[str]) -> Iterable[str]:
    """A header and one line per record; text fields escaped like characters, floats to 6 digits."""
    yield "\t".join(fields)
    for record in records:
        cells = []
        for name in fields:
            value = record[name]
            cells.append(escape_text(value) if isinstance(value, str) else
                         f"{value:.6g}" if isinstance(value, float) else str(value))
        yield "\t".join(cells)


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def escape_char(char: str) -> str:
    """A character as one TSV field: \\n, \\t, \\r, \\\\, and \\xHH / \\uHHHH / \\UHHHHHHHH for other
    control characters and line separators, so a record is one line for every reader (Python's
    splitlines breaks at \\x0b, \\x85, \\u2028 …). Everything else, CJK and emoji included, is as is."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    return one_line(char) if is_control(char) else char


def escape_text(text: str) -> str:
    return "".join(escape_char(c) for c in text)


@dataclass(frozen=True)
class Output:
    """One result ready for every --format: TSV records under `fields`, a JSON document, and a
    picture for the terminal (built only when drawn, for the console's width). Made from facts by
    the *_output functions (traces.py, scores.py, atlas.py); written by `write`."""

    fields: Sequence[str]
    records: Iterable[Mapping]
    document: Mapping
    picture: Callable[[int], RenderableType]
    ascii_json: bool = False      # JSON with non-ASCII characters escaped (what --stats writes)


def write(fmt: str, output: Output, stream=None) -> None:
    """Emit `output` on `stream` (default: stdout) as "tsv", "json" or "text" (the rich picture)."""
    stream = sys.stdout if stream is None else stream
    if fmt == "tsv":
        stream.writelines(line + "\n" for line in records_tsv(output.records, output.fields))
    elif fmt == "json":
        stream.write(json.dumps(output.document, ensure_ascii=output.ascii_json) + "\n")
    else:

        console = Console(file=stream, highlight=False, soft_wrap=False)
        console.print(output.picture(console.width))


def _floats(values) -> list[float]:
    """A (T,) sequence, list or tensor, as Python floats."""
    return np.asarray(values, dtype=np.float64).tolist()
