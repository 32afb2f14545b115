"""A run's two caches, each trusted only when its content says it is still right.

- The id cache: corpus.ids.npy (the prepared corpus's ids) with corpus.json (what they were made
  from: the text's fingerprint and length, the vocabulary, the files and their encoding; and the
  ids file's content hash). `CorpusCache` is what `data.corpus.prepare` is given to keep its ids in
  (the `IdCache` protocol).
- The index cache: corpus.sa.npy (the suffix array of those ids, for the memorisation check) with
  corpus.sa.json (the ids file's size and content hash it was built from, and its own hash).

Before either is used its file is checked by runs/arrays.py (header, then every value in one pass
of bounded memory): every id indexes the vocabulary, and matches the hash corpus.json recorded;
the suffix array is one of those ids (`arrays.checked_suffix_array`). A cache that fails is not
used, and its `notice` says why in one line; the caller makes it again. `read_corpus_meta` is the
one reader of corpus.json. Both caches are written under the run's lock through files.write_file,
never through a symbolic link, and read memory-mapped. Knows nothing of how ids or suffix arrays
are made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

import numpy as np

from ..data.corpus import Provenance
from ..data.vocab import id_dtype
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
from .arrays import CHECK_CHUNK, Damaged, NpyWriter, checked_suffix_array, content_hash, mapped

if TYPE_CHECKING:
    from .folder import Run

#: The kind stored in corpus.json, so a fresh run knows the prepared corpus there is its own.
CORPUS_KIND = "charlstm-corpus"


#: corpus.json holds the vocabulary: a vocabulary of every Unicode scalar value is ~7 M characters.
MAX_CORPUS_META = 64 << 20


_INDEX_KIND, _INDEX_VERSION = "charlstm-suffix-array", 1
_NUMPY_MAGIC = b"\x93NUMPY"


class _Meta(NamedTuple):
    """What corpus.json holds: what the ids were made from, and the ids file's hash (None when not recorded)."""

    made: Provenance
    ids_hash: str | None


def read_corpus_meta(folder: str | os.PathLike) -> Provenance | None:
    """What corpus.json in `folder` says the ids were made from, or None unless it is a regular file
    (not a link) of at most MAX_CORPUS_META bytes holding a JSON object whose kind, if it names one,
    is charlstm's, with a fingerprint, a length, a vocabulary of distinct single characters and, when
    present, a list of sources, an encoding and the ids file's hash."""
    try:
        found = _read_meta(Path(folder))
    except Damaged:
        return None
    return None if found is None else found.made


def _read_meta(folder: Path) -> _Meta | None:
    """corpus.json in `folder` (see read_corpus_meta); None when there is none (or a link), Damaged
    when it is there and not one charlstm wrote."""
    path = folder / CORPUS_FILE
    if is_link(path) or not path.exists():
        return None
    if not path.is_file():
        raise Damaged(f"{path}: not a regular file")
    try:
        found = json.loads(read_head(path, MAX_CORPUS_META).decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Damaged(f"{path}: not a JSON record of at most {MAX_CORPUS_META >> 20} MiB") from None
    if not isinstance(found, dict) or found.get("kind", CORPUS_KIND) != CORPUS_KIND:
        raise Damaged(f"{path}: not a record of a corpus charlstm prepared")
    fingerprint, chars, vocab = found.get("fingerprint"), found.get("chars"), found.get("vocab")
    sources, encoding, ids_hash = found.get("sources", []), found.get("encoding", "utf-8"), found.get("ids_hash")
    if not (isinstance(fingerprint, str) and type(chars) is int and chars >= 0
            and isinstance(vocab, list) and all(isinstance(c, str) and len(c) == 1 for c in vocab)
            and len(set(vocab)) == len(vocab)
            and isinstance(sources, list) and all(isinstance(s, str) for s in sources) and isinstance(encoding, str)
            and (ids_hash is None or isinstance(ids_hash, str))):
        raise Damaged(f"{path}: a field is missing or of the wrong type (a text's fingerprint, its length, "
                      f"its vocabulary of distinct characters)")
    return _Meta(Provenance(fingerprint, chars, tuple(vocab), tuple(sources), encoding), ids_hash)


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
    trained run keeps its cache of its own corpus: another text's ids are then not stored (the same
    text's, over a damaged cache, are). `damage`: what a read found wrong with the cache (one line
    naming the file), else None; `notice` says it to the user."""

    def __init__(self, run: Run, store: bool = True) -> None:
        self.run, self.writable = run, store
        self.damage: str | None = None

    @property
    def notice(self) -> str | None:
        return None if self.damage is None else f"{self.damage}; not used (the corpus is read from its files again)"

    def load(self, made: Provenance) -> np.ndarray | None:
        """The cached ids (memory-mapped) if they were made from this very text, else None. A link
        among the run's files is a TrainingError."""
        if not self.writable and not self.run.path.is_dir():
            return None
        self.run.refuse_links()
        found = self._checked(lambda meta: meta.made.same_ids(made))
        return None if found is None else found[0]

    def store(self, made: Provenance, dtype: np.dtype, pieces: Iterable[np.ndarray]) -> np.ndarray | None:
        """Write the ids piece by piece as an .npy file, then what they were made from; return them
        memory-mapped. None, with `pieces` left unread, when this cache is not to be written."""
        if not self.writable or not self._may_replace(made):
            return None
        if not self.run.holds_lock():
            self.run.create()
        with self.run.lock(), terminate_as_interrupt():  # re-entered when the caller holds it already
            ids = NpyWriter(dtype, made.chars, pieces)
            write_file(self.run.path / IDS_FILE, ids)
            meta = {"kind": CORPUS_KIND, "fingerprint": made.fingerprint, "chars": made.chars,
                    "vocab": list(made.vocab), "sources": list(made.sources), "encoding": made.encoding,
                    "ids_hash": ids.hexdigest()}
            write_file(self.run.path / CORPUS_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        with regular_path(self.run.path / IDS_FILE, TrainingError) as opened:
            return np.load(opened, mmap_mode="r")

    def cached(self) -> tuple[np.ndarray, Provenance] | None:
        """Whatever valid cache the folder holds: (ids memory-mapped, what they were made from), or None."""
        return self._checked(lambda meta: True)

    def _checked(self, wanted: Callable[[_Meta], bool]) -> tuple[np.ndarray, Provenance] | None:
        """The cache, if corpus.json is `wanted` and the ids pass their checks; a damaged one sets `damage`."""
        try:
            meta = _read_meta(self.run.path)
            ids = _checked_ids(self.run.path / IDS_FILE, meta) if meta is not None and wanted(meta) else None
        except Damaged as damage:
            self.damage = str(damage)
            return None
        return None if ids is None else (ids, meta.made)

    def _may_replace(self, made: Provenance) -> bool:
        """The folder holds no trained run yet, or that run's cache is gone, or it is a cache of this
        very text (damaged, or it would have been used): a run's cache of its own corpus is never
        replaced by another text (a refused resume must not replace it)."""
        if not self.run.latest.exists() or not (self.run.path / CORPUS_FILE).exists():
            return True
        found = read_corpus_meta(self.run.path)
        return found is not None and found.same_ids(made)


def _checked_ids(path: Path, meta: _Meta) -> np.ndarray | None:
    """corpus.ids.npy memory-mapped if it holds `meta.made.chars` ids of the type the vocabulary's
    size gives, each an index into it, with the content hash corpus.json recorded (when it did); None
    when there is no such file; else Damaged (a damaged cache is made again, not read past the
    embedding)."""
    if is_link(path) or not path.exists():
        return None
    size = len(meta.made.vocab)

    def in_vocab(values: np.ndarray, start: int) -> None:
        if int(values.min()) < 0 or int(values.max()) >= size:
            wide = values.astype(np.int64)
            wrong = np.flatnonzero((wide < 0) | (wide >= size))
            raise Damaged(f"{path}: id {wide[wrong[0]]} at position {start + int(wrong[0]):,} is not an index into "
                          f"its vocabulary of {size:,} characters")

    ids, digest = mapped(path, (id_dtype(size),), meta.made.chars, in_vocab)
    if meta.ids_hash is not None and digest != meta.ids_hash:
        raise Damaged(f"{path}: its content is not the content {CORPUS_FILE} recorded for it")
    return ids


class IndexCache:
    """The suffix array of a run's cached ids, keyed by the ids file's size and content hash and
    checked by its own content. `damage`: what `load` found wrong with it (one line naming the
    file), else None; `notice` says it to the user."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.damage: str | None = None

    @property
    def notice(self) -> str | None:
        return None if self.damage is None else f"{self.damage}; not used (the index is built again)"

    def load(self, ids: np.ndarray) -> tuple[np.ndarray | None, str]:
        """(the cached suffix array of `ids` — the run's id cache, as CorpusCache read it —
        memory-mapped, "loaded") if it was made from the ids file there now and is theirs, else
        (None, why not: "none cached", "stale" or "damaged")."""
        folder = self.run.path
        sa_path, meta = folder / INDEX_FILE, folder / INDEX_META
        if is_link(sa_path) or is_link(meta) or not sa_path.exists() or not meta.exists():
            return None, "none cached"
        try:
            stored = _index_meta(meta)
            if {name: stored.get(name) for name in ("kind", "version", "ids_bytes", "ids_hash")} != _index_key(folder):
                return None, "stale"
            sa = checked_suffix_array(sa_path, ids, stored.get("sa_hash"))
        except Damaged as damage:
            self.damage = str(damage)
            return None, "damaged"
        return sa, "loaded"

    def store(self, sa: np.ndarray) -> str:
        """Cache the suffix array of the ids (under the run's lock); how that went, for the report.
        A run being trained by another process is not written to: the index is then only used."""
        try:
            with self.run.lock():
                key = _index_key(self.run.path)
                step = max(1, CHECK_CHUNK // sa.dtype.itemsize)
                index = NpyWriter(sa.dtype, len(sa), (sa[i : i + step] for i in range(0, len(sa), step)))
                write_file(self.run.path / INDEX_FILE, index)
                meta = {**key, "sa_hash": index.hexdigest()}
                write_file(self.run.path / INDEX_META, json.dumps(meta).encode("utf-8"))
        except Damaged as error:
            return f"built (not cached: {error})"
        except TrainingError as error:  # busy: another process trains it; or a link planted among its files
            return f"built (not cached: {one_line(error)})"
        except OSError as error:
            return f"built (not cached: {error.strerror or error})"
        return "built and cached"


def _index_meta(path: Path) -> dict:
    """corpus.sa.json: a JSON object, its own hash of the index a string when recorded; else Damaged."""
    try:
        stored = json.loads(read_head(path, 4096).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        stored = None
    if not isinstance(stored, dict) or not isinstance(stored.get("sa_hash", ""), str):
        raise Damaged(f"{path}: not a record of a cached index")
    return stored


def _index_key(folder: Path) -> dict:
    """What an index is made from: the id file's size and content hash."""
    digest, size = content_hash(), 0
    try:
        with open_regular(folder / IDS_FILE, Damaged) as f:
            while chunk := f.read(CHECK_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise Damaged(f"{folder / IDS_FILE}: cannot be read ({one_line(error, limit=160)})") from None
    return {"kind": _INDEX_KIND, "version": _INDEX_VERSION, "ids_bytes": size, "ids_hash": digest.hexdigest()}


