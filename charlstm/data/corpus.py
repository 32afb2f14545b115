"""An encoded corpus, and preparing one from files of any size in bounded memory."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import CorpusError
from ..files import terminate_as_interrupt
from ..runs.folder import Run
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
    def from_text(cls, text: str, min_char_count: int | None = 1) -> "Corpus":
        vocab = Vocab.from_text(text, min_char_count)
        return cls(vocab.encode(text), vocab, _hash(text.encode("utf-8")).hexdigest())

    def __len__(self) -> int:
        return len(self.ids)


def _hash(data: bytes = b""):
    return hashlib.blake2b(data, digest_size=16)


def prepare(paths: Sequence[str | os.PathLike], glob: str | None = None, encoding: str = "utf-8",
            cache_dir: str | os.PathLike | None = None, chunk_bytes: int = CHUNK_BYTES,
            progress: Callable[[int, int], None] | None = None, store: bool = True,
            min_char_count: int | None = 1) -> Corpus:
    """Read, check and encode a corpus in bounded memory.

    Two streaming passes: the first decodes strictly, collects the characters and hashes the text;
    the second appends the ids to the id cache of the run directory cache_dir (run.Run), which is
    then opened memory-mapped and reused as long as the text hashes the same. Without cache_dir the ids are kept in memory. `progress`
    gets (bytes done, bytes total) over both passes. Standard input is read whole.

    The cache is written only while holding the run's lock (taken here unless this process holds
    it already; a run busy elsewhere is a TrainingError), never through a link, and a SIGTERM or
    Ctrl-C mid-write removes the temp file. store=False only reads a valid cache (torchrun ranks
    other than 0): otherwise the ids stay in memory, as they do when the folder holds a trained run
    whose cache was made from another text (a refused resume must not replace it).

    `min_char_count`: characters seen fewer times are read as data.UNKNOWN (1: keep every one;
    None: the default policy, `rare_threshold`).
    """
    files = corpus_files(paths, glob)
    if not files:
        raise CorpusError("no corpus given")
    if "-" in files:
        return Corpus.from_text(read_corpus(files, encoding=encoding), min_char_count)
    total = sum(Path(f).stat().st_size for f in files) * 2
    report = progress or (lambda done, total: None)
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files"
    stamps = [_stamp(f) for f in files]
    vocab, fingerprint, n_chars = _survey(files, encoding, chunk_bytes, where, lambda done: report(done, total),
                                          min_char_count)
    pieces = _encoded(files, encoding, chunk_bytes, vocab, n_chars, stamps, where,
                      lambda done: report(total // 2 + done, total))
    dtype = id_dtype(len(vocab))
    run = Run(cache_dir) if cache_dir is not None else None          # the run directory owns the cache files
    if run is not None and (store or run.path.is_dir()):
        run.refuse_links()
        cached = run.load_ids(fingerprint, n_chars, vocab.chars)
        if cached is not None:
            report(total, total)
            return Corpus(cached, vocab, fingerprint)
    if run is None or not store or not run.may_replace_ids():
        ids = np.empty(n_chars, dtype=dtype)
        for pos, piece in pieces:
            ids[pos : pos + len(piece)] = piece
        return Corpus(ids, vocab, fingerprint)
    if not run.holds_lock():
        run.create()
    with run.lock(), terminate_as_interrupt():  # re-entered when the caller holds it already
        ids = run.store_ids(dtype, n_chars, (piece for _, piece in pieces), fingerprint=fingerprint,
                            vocab_chars=vocab.chars, sources=[str(Path(f).resolve()) for f in files],
                            encoding=encoding)
    return Corpus(ids, vocab, fingerprint)


def _survey(files: list, encoding: str, chunk_bytes: int, where: str,
            report: Callable[[int], None], min_char_count: int | None = 1) -> tuple[Vocab, str, int]:
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
    return seen.vocab(min_char_count), digest.hexdigest(), n_chars


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
