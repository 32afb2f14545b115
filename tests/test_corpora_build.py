"""corpora/build.py's reader of R's serialization (Jane Austen's novels come as R data from Debian), and
how corpora/english.py mixes the English base model's parts."""

from __future__ import annotations

import gzip
import importlib.util
import struct
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("corpora_build", ROOT / "corpora" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def _english(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "corpora"))
    spec = importlib.util.spec_from_file_location("corpora_english", ROOT / "corpora" / "english.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_english_parts_are_interleaved_whole_and_evenly(monkeypatch):
    english = _english(monkeypatch)
    parts = {name: "".join(f"{name} line {i}\n" for i in range(4000)) for name in ("aaa", "bb")}
    mixed = english.interleave(parts)
    lines = mixed.splitlines()
    for name, text in parts.items():                  # every line once, in its own order
        assert [line for line in lines if line.startswith(name + " ")] == text.splitlines()
    halves = mixed[: len(mixed) // 2], mixed[len(mixed) // 2:]
    for name in parts:                                # both parts in both halves, about equally
        counts = [half.count(name + " line") for half in halves]
        assert min(counts) > 0.4 * sum(counts)
    assert english.cut("ab\ncd\n", 1) == 3 and english.cut("ab", 1) == 2


def _i(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def _chars(s: str | None) -> bytes:
    if s is None:
        return _i(9, -1)
    raw = s.encode("utf-8")
    return _i(0x8009, len(raw)) + raw                      # CHARSXP, UTF-8 flag


def _header() -> bytes:
    return b"X\n" + _i(3, 0x040201, 0x030500, 5) + b"UTF-8"


def _strings(*items: str | None) -> bytes:
    return _i(16, len(items)) + b"".join(_chars(s) for s in items)


def test_reads_a_character_vector_with_missing_values_and_unicode():
    value = build._RReader(_header() + _strings("EMMA", "", None, "Miss Taylor — “dear”")).item()
    assert value == ["EMMA", "", None, "Miss Taylor — “dear”"]


def test_reads_a_lazyload_index_and_its_objects(tmp_path):
    """An .rdx index (a named list: variables → [offset, length], compressed flag) over an .rdb
    file of zlib blobs, each a 4-byte length and a serialized object, as R's makeLazyLoadDB writes."""
    blobs, offsets = b"", {}
    for name, lines in (("emma", ["EMMA", "By Jane Austen"]), ("persuasion", ["PERSUASION"])):
        raw = _header() + _strings(*lines)
        blob = struct.pack(">I", len(raw)) + zlib.compress(raw)
        offsets[name] = (len(blobs), len(blob))
        blobs += blob
    variables = (_i(0x213, len(offsets)) + b"".join(_i(13, 2, *offsets[n]) for n in offsets)
                 + _i(0x402, 1) + _chars("names") + _strings(*offsets) + _i(254))     # the symbol "names"
    index = (_header() + _i(0x213, 3) + variables + _i(19, 0) + _i(10, 1, 1)
             + _i(0x402) + _i(255 | (1 << 8)) + _strings("variables", "references", "compressed")
             + _i(254))                                                               # a reference to it
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
    (tmp_path / "Rdata.rdb").write_bytes(blobs)
    books = build._r_lazyload(tmp_path / "Rdata.rdx", tmp_path / "Rdata.rdb")
    assert books == {"emma": ["EMMA", "By Jane Austen"], "persuasion": ["PERSUASION"]}


def test_refuses_what_it_does_not_know():
    with pytest.raises(build.BuildError, match="not an R XDR serialization"):
        build._RReader(b"RDX2\n" + _i(1))
    with pytest.raises(build.BuildError, match="type 3 is not supported"):
        build._RReader(_header() + _i(3)).item()           # a closure
