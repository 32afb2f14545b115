"""An encoded corpus, and preparing one from files of any size in bounded memory.

`prepare` keeps the ids it encodes where it is told to: an `IdCache` the caller passes (a run
folder's, runs.caches.CorpusCache), else in memory. Knows nothing of run folders.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from ..errors import CorpusError
from .reading import CHUNK_BYTES, _decoded_chunks, _is_plain_utf8, _stamp, check_corpus_text, corpus_files, read_corpus
from .vocab import CharSet, Vocab, id_dtype


@dataclass(frozen=True)
class Corpus:
    """Encoded text: ids in the smallest integer type (possibly memory-mapped), the vocabulary, and
    a content hash of the text that tells whether two corpora are the same."""

    ids: np.ndarray
    vocab: Vocab
    fingerprint: str

    @classmethod
    def from_text(cls, text: str, min_char_count: int | None = 1, base: Vocab | None = None) -> "Corpus":
        """`text` encoded by its vocabulary (`base` grown by its characters, when given: Vocab.extended)."""
        vocab = Vocab.from_text(text, min_char_count, base)
        return cls(vocab.encode(text), vocab, _hash(text.encode("utf-8")).hexdigest())

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Provenance:
    """What a corpus's ids are made from: the text (its fingerprint and length in characters), the
    vocabulary that encodes it, and the files it was read from in their encoding."""

    fingerprint: str
    chars: int
    vocab: tuple[str, ...]
    sources: tuple[str, ...] = ()
    encoding: str = "utf-8"

    def same_ids(self, other: "Provenance") -> bool:
        """Ids made from `other` are these ids: the same text, encoded by the same vocabulary
        (wherever its files were)."""
        return (self.fingerprint, self.chars, self.vocab) == (other.fingerprint, other.chars, other.vocab)


class IdCache(Protocol):
    """Where `prepare` may keep the ids it encodes, checked by content."""

    def load(self, made: Provenance) -> np.ndarray | None:
        """The ids cached for this very text and vocabulary, else None."""

    def store(self, made: Provenance, dtype: np.dtype, pieces: Iterable[np.ndarray]) -> np.ndarray | None:
        """Write the ids (`pieces`, in order, `made.chars` of them in all) and return them; None,
        with `pieces` left unread, when this cache is not to be written."""


def _hash(data: bytes = b""):
    return hashlib.blake2b(data, digest_size=16)


def prepare(paths: Sequence[str | os.PathLike], glob: str | None = None, encoding: str = "utf-8",
            cache: IdCache | None = None, chunk_bytes: int = CHUNK_BYTES,
            progress: Callable[[int, int], None] | None = None, min_char_count: int | None = 1,
            base: Vocab | None = None, surveyed: Callable[[Vocab, int], None] | None = None) -> Corpus:
    """Read, check and encode a corpus in bounded memory.

    Two streaming passes: the first decodes strictly, collects the characters and hashes the text;
    the second encodes it piece by piece into `cache`, unless the cache already holds the ids of
    this very text (then the second pass is skipped). Without a cache, or with one that is not to
    be written, the ids are kept in memory. `progress` gets (bytes done, bytes total) over both
    passes. Standard input is read whole and never cached.

    `min_char_count`: characters seen fewer times are read as vocab.UNKNOWN (1: keep every one;
    None: the default policy, `rare_threshold`). `base`: the vocabulary of a model the run starts
    from, which the corpus's grows (Vocab.extended: the policy then applies to new characters only).
    `surveyed(vocab, characters)` is called once the text is known and before any id is made or
    stored: a refusal raised there leaves no cache.
    """
    files = corpus_files(paths, glob)
    if not files:
        raise CorpusError("no corpus given")
    if "-" in files:
        corpus = Corpus.from_text(read_corpus(files, encoding=encoding), min_char_count, base)
        if surveyed is not None:
            surveyed(corpus.vocab, len(corpus))
        return corpus
    total = sum(Path(f).stat().st_size for f in files) * 2
    report = progress or (lambda done, total: None)
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files"
    stamps = [_stamp(f) for f in files]
    vocab, fingerprint, n_chars = _survey(files, encoding, chunk_bytes, where, lambda done: report(done, total),
                                          min_char_count, grows=base)
    if surveyed is not None:
        surveyed(vocab, n_chars)
    made = Provenance(fingerprint, n_chars, tuple(vocab.chars), tuple(str(Path(f).resolve()) for f in files), encoding)
    cached = cache.load(made) if cache is not None else None
    if cached is not None:
        report(total, total)
        return Corpus(cached, vocab, fingerprint)
    pieces = _encoded(files, encoding, chunk_bytes, vocab, n_chars, stamps, where,
                      lambda done: report(total // 2 + done, total))
    dtype = id_dtype(len(vocab))
    ids = cache.store(made, dtype, (piece for _, piece in pieces)) if cache is not None else None
    if ids is None:
        ids = np.empty(n_chars, dtype=dtype)
        for pos, piece in pieces:
            ids[pos : pos + len(piece)] = piece
    return Corpus(ids, vocab, fingerprint)


def _survey(files: list, encoding: str, chunk_bytes: int, where: str,
            report: Callable[[int], None], min_char_count: int | None = 1,
            grows: Vocab | None = None) -> tuple[Vocab, str, int]:
    """Pass 1 of `prepare`: decode strictly, collect the characters, hash the text → (vocab, fingerprint, length)."""
    digest, seen, n_chars, done = _hash(), CharSet(), 0, 0
    for file in files:
        base = done
        as_read = _is_plain_utf8(file, encoding)  # then the bytes read are the text's UTF-8: hash them as they are
        for text, consumed, raw in _decoded_chunks(Path(file), encoding, chunk_bytes):
            digest.update(raw if as_read else text.encode("utf-8"))
            if text:
                seen.add(text)
                n_chars += len(text)
            done = base + consumed
            report(done)
    check_corpus_text(where, n_chars, "".join(seen.chars()))
    return seen.vocab(min_char_count, grows), digest.hexdigest(), n_chars


def _encoded(files: list, encoding: str, chunk_bytes: int, vocab: Vocab, n_chars: int, stamps: list, where: str,
             report: Callable[[int], None]) -> Iterator[tuple[int, np.ndarray]]:
    """Pass 2 of `prepare`: (position, ids) piece by piece; a corpus that changed since pass 1 is an error."""
    changed = CorpusError(f"{where}: the corpus changed while it was being read; try again")
    pos, done = 0, 0
    for file in files:
        for text, consumed, _ in _decoded_chunks(Path(file), encoding, chunk_bytes):
            if pos + len(text) > n_chars:
                raise changed
            try:
                ids = vocab.encode(text)
            except KeyError:  # a character pass 1 never saw
                raise changed from None
            yield pos, ids
            pos += len(text)
            report(done + consumed)
        done += Path(file).stat().st_size
    if pos != n_chars or stamps != [_stamp(f) for f in files]:
        raise changed
