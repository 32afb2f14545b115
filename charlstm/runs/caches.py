"""A run's two caches, each trusted only when its content says it is still right.

- The id cache: corpus.ids.npy (the prepared corpus's ids) with corpus.json (what they were made
  from: the text's fingerprint and length, the vocabulary, the files and their encoding).
  `CorpusCache` is what `data.corpus.prepare` is given to keep its ids in (the `IdCache` protocol).
- The index cache: corpus.sa.npy (the suffix array of those ids, for the memorisation check) with
  corpus.sa.json (the ids file's size and content hash it was built from).

`read_corpus_meta` is the one reader of corpus.json. Both caches are written under the run's lock
through files.write_file, never through a symbolic link, and read memory-mapped. Knows nothing of
how ids or suffix arrays are made.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

import numpy as np

from ..data.corpus import Provenance
from ..errors import TrainingError, one_line
from ..files import (
    CORPUS_FILE,
    IDS_FILE,
    INDEX_FILE,
    INDEX_META,
    is_link,
    open_regular,
    read_head,
    regular_path,
    terminate_as_interrupt,
    write_file,
)

if TYPE_CHECKING:
    from .folder import Run

#: The kind stored in corpus.json, so a fresh run knows the prepared corpus there is its own.
CORPUS_KIND = "charlstm-corpus"


#: corpus.json holds the vocabulary: a vocabulary of every Unicode scalar value is ~7 M characters.
MAX_CORPUS_META = 64 << 20


_INDEX_KIND, _INDEX_VERSION = "charlstm-suffix-array", 1


_NUMPY_MAGIC = b"\x93NUMPY"


def read_corpus_meta(folder: str | os.PathLike) -> Provenance | None:
    """What corpus.json in `folder` says the ids were made from, or None unless it is a regular file
    (not a link) of at most MAX_CORPUS_META bytes holding a JSON object whose kind, if it names one,
    is charlstm's, with a fingerprint, a length, a vocabulary of single characters and, when
    present, a list of sources and an encoding."""
    path = Path(folder) / CORPUS_FILE
    if is_link(path) or not path.is_file():
        return None
    try:
        found = json.loads(read_head(path, MAX_CORPUS_META).decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(found, dict) or found.get("kind", CORPUS_KIND) != CORPUS_KIND:
        return None
    fingerprint, chars, vocab = found.get("fingerprint"), found.get("chars"), found.get("vocab")
    sources, encoding = found.get("sources", []), found.get("encoding", "utf-8")
    if not (isinstance(fingerprint, str) and type(chars) is int and chars >= 0
            and isinstance(vocab, list) and all(isinstance(c, str) and len(c) == 1 for c in vocab)
            and isinstance(sources, list) and all(isinstance(s, str) for s in sources) and isinstance(encoding, str)):
        return None
    return Provenance(fingerprint, chars, tuple(vocab), tuple(sources), encoding)


def holds_prepared_corpus(folder: str | os.PathLike) -> bool:
    """`folder` holds a corpus charlstm prepared (by the contents of corpus.json, and of
    corpus.ids.npy when there is one): what a fresh run may find in its folder and replace."""
    ids = Path(folder) / IDS_FILE
    if read_corpus_meta(folder) is None or is_link(ids):
        return False
    return not ids.exists() or (ids.is_file() and read_head(ids, len(_NUMPY_MAGIC)) == _NUMPY_MAGIC)


class CorpusCache:
    """The id cache of a run folder, as `data.corpus.prepare` uses it (the IdCache protocol).

    With store=False (torchrun ranks other than 0) it is only read. It is written under the run's
    lock (taken here unless this process holds it already; a run busy elsewhere is a
    TrainingError), and a SIGTERM or Ctrl-C mid-write leaves no temp file. A folder holding a
    trained run keeps its cache of its own corpus: another text's ids are then not stored."""

    def __init__(self, run: Run, store: bool = True) -> None:
        self.run, self.writable = run, store

    def load(self, made: Provenance) -> np.ndarray | None:
        """The cached ids (memory-mapped) if they were made from this very text, else None. A link
        among the run's files is a TrainingError."""
        if not self.writable and not self.run.path.is_dir():
            return None
        self.run.refuse_links()
        found = read_corpus_meta(self.run.path)
        if found is None or not found.same_ids(made):
            return None
        return _checked_ids(self.run.path, found)

    def store(self, made: Provenance, dtype: np.dtype, pieces: Iterable[np.ndarray]) -> np.ndarray | None:
        """Write the ids piece by piece as an .npy file, then what they were made from; return them
        memory-mapped. None, with `pieces` left unread, when this cache is not to be written."""
        if not self.writable or not self._may_replace():
            return None
        if not self.run.holds_lock():
            self.run.create()
        with self.run.lock(), terminate_as_interrupt():  # re-entered when the caller holds it already
            write_file(self.run.path / IDS_FILE, lambda sink: _write_npy(sink, dtype, made.chars, pieces))
            meta = {"kind": CORPUS_KIND, "fingerprint": made.fingerprint, "chars": made.chars,
                    "vocab": list(made.vocab), "sources": list(made.sources), "encoding": made.encoding}
            write_file(self.run.path / CORPUS_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        with regular_path(self.run.path / IDS_FILE, TrainingError) as opened:
            return np.load(opened, mmap_mode="r")

    def cached(self) -> tuple[np.ndarray, Provenance] | None:
        """Whatever valid cache the folder holds: (ids memory-mapped, what they were made from), or None."""
        found = read_corpus_meta(self.run.path)
        ids = None if found is None else _checked_ids(self.run.path, found)
        return None if ids is None else (ids, found)

    def _may_replace(self) -> bool:
        """The folder holds no trained run yet, or that run's cache is gone: a run's cache of its
        own corpus is never replaced by another text (a refused resume must not replace it)."""
        return not self.run.latest.exists() or not (self.run.path / CORPUS_FILE).exists()


def _checked_ids(folder: Path, made: Provenance) -> np.ndarray | None:
    """corpus.ids.npy memory-mapped if it is a regular file of `made.chars` integers, each an index
    into `made.vocab` (one pass over the map), so a damaged cache is made again rather than read
    past the embedding; else None."""
    path = folder / IDS_FILE
    if is_link(path) or not path.is_file():
        return None
    try:
        with regular_path(path) as opened:
            ids = np.load(opened, mmap_mode="r")
    except (OSError, ValueError, RecursionError):  # a CharlstmError (not a regular file) is a ValueError
        return None
    if ids.shape != (made.chars,) or ids.dtype.kind not in "ui":
        return None
    if made.chars and not (int(ids.min()) >= 0 and int(ids.max()) < len(made.vocab)):
        return None
    return ids


def _write_npy(sink: BinaryIO, dtype: np.dtype, n: int, pieces: Iterable[np.ndarray]) -> None:
    """The .npy header, then the ids appended with plain writes: the kernel's page cache holds them,
    not this process (a memory map would count every page written in its resident memory)."""
    np.lib.format.write_array_header_1_0(sink, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                "fortran_order": False, "shape": (n,)})
    for piece in pieces:
        sink.write(memoryview(piece))


class IndexCache:
    """The suffix array of a run's cached ids, keyed by the ids file's size and content hash."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def load(self) -> tuple[np.ndarray | None, str]:
        """(the cached suffix array, memory-mapped, "loaded") if it was made from the ids there now,
        else (None, why not: "none cached", "stale" or "unreadable")."""
        folder = self.run.path
        sa_path, meta = folder / INDEX_FILE, folder / INDEX_META
        if is_link(sa_path) or is_link(meta) or not sa_path.is_file() or not meta.is_file():
            return None, "none cached"
        try:
            stored = json.loads(read_head(meta, 4096).decode("utf-8"))
            if stored != _index_key(folder):
                return None, "stale"
            with regular_path(sa_path) as opened:
                sa = np.load(opened, mmap_mode="r")
            with regular_path(folder / IDS_FILE) as opened:
                ids = np.load(opened, mmap_mode="r")
        except (OSError, ValueError, RecursionError):
            return None, "unreadable"
        if sa.shape != ids.shape or sa.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            return None, "unreadable"
        return sa, "loaded"

    def store(self, sa: np.ndarray) -> str:
        """Cache the suffix array of the ids (under the run's lock); how that went, for the report.
        A run being trained by another process is not written to: the index is then only used."""
        try:
            with self.run.lock():
                key = _index_key(self.run.path)
                write_file(self.run.path / INDEX_FILE, lambda sink: np.save(sink, np.ascontiguousarray(sa)))
                write_file(self.run.path / INDEX_META, json.dumps(key).encode("utf-8"))
        except TrainingError as error:  # busy: another process trains it; or a link planted among its files
            return f"built (not cached: {one_line(error)})"
        except OSError as error:
            return f"built (not cached: {error.strerror or error})"
        return "built and cached"


def _index_key(folder: Path) -> dict:
    """What an index is made from: the id file's size and content hash."""
    digest, size = hashlib.blake2b(digest_size=16), 0
    with open_regular(folder / IDS_FILE, TrainingError) as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return {"kind": _INDEX_KIND, "version": _INDEX_VERSION, "ids_bytes": size, "ids_hash": digest.hexdigest()}
