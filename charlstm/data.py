"""Corpus in, integer streams out.

Reads corpus files strictly, builds the character vocabulary, encodes text to a compact integer
array, splits it into train / validation, and cuts batches for truncated backpropagation through
time. Knows nothing of models, checkpoints or the terminal.
"""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import CorpusError, UnknownCharactersError
from .run import Run, is_run_dir, terminate_as_interrupt


DEFAULT_CORPUS = "shakespeare.txt"


def bundled_corpora_dir() -> Path:
    """Where the bundled corpora live: inside the wheel, or corpora/ of a source checkout."""
    packaged = Path(__file__).resolve().parent / "corpora"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "corpora"


def default_corpus_path() -> Path:
    return bundled_corpora_dir() / DEFAULT_CORPUS


# --------------------------------------------------------------------------------------------
# Reading


#: Leading bytes of formats people point a text tool at by mistake.
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"\x1f\x8b": "gzip-compressed (decompress it first)", b"PK\x03\x04": "a zip archive (extract it first)",
    b"BZh": "bzip2-compressed (decompress it first)", b"\xfd7zXZ": "xz-compressed (decompress it first)",
    b"\x7fELF": "an executable",
}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def check_encoding(encoding: str) -> codecs.CodecInfo:
    """The codec of a text encoding Python knows, else a one-line CorpusError: an unknown name, or a
    bytes-to-bytes codec (base64, hex, rot13, zlib …) that does not turn bytes into text. The one
    check of an encoding name: `--encoding` and the reader below come here."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise CorpusError(f"unknown encoding {str(encoding)!r:.60}; give a text encoding such as utf-8, latin-1 "
                          "or utf-16") from None
    if not getattr(info, "_is_text_encoding", True):
        raise CorpusError(f"{str(encoding)!r:.60} is not a text encoding (it turns bytes into bytes); give one such "
                          "as utf-8, latin-1 or utf-16")
    return info


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "ascii")


def _check_head(head: bytes, name: str, encoding: str) -> None:
    """Refuse files that are plainly not text, from their first bytes."""
    if not _is_utf8(encoding):
        return
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise CorpusError(f"{name}: this is {what}, not text")
    if head.startswith(_UTF16_BOMS):
        raise CorpusError(f"{name}: looks like UTF-16 (byte-order mark at the start); pass --encoding utf-16")


def _decode_error(name: str, error: UnicodeDecodeError, offset: int, byte: int) -> CorpusError:
    return CorpusError(f"{name}: not valid {error.encoding} at byte offset {offset} (byte 0x{byte:02x}); "
                       f"pass --encoding (e.g. latin-1) if the file uses another encoding")


#: The most bytes of text read whole into memory: a prime, a text to inspect or score, a corpus on
#: standard input. Corpus files named to `train` / `prepare` are streamed and may be any size.
MAX_TEXT_BYTES = 64 << 20


def _too_big(name: str, limit: int) -> CorpusError:
    return CorpusError(f"{name}: more than {limit / (1 << 20):g} MiB, the most charlstm reads as one text "
                       f"(a corpus file named to train is streamed and may be any size)")


def _binary(name: str, where: str) -> CorpusError:
    return CorpusError(f"{name}: looks like a binary file ({where}); give a text file")


def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading if it is a regular file. A device (/dev/zero), a pipe, a socket or a
    directory is refused before a byte is read; a FIFO does not even block the open."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise CorpusError(f"{path}: cannot read ({error.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CorpusError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _stdin() -> BinaryIO:
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None or getattr(stream, "closed", False):
        raise CorpusError("<stdin>: standard input is closed; pipe the text in or give a file")
    return stream


def _decoded_chunks(path: Path | str, encoding: str, chunk_bytes: int,
                    limit: int | None = None) -> Iterator[tuple[str, int, bytes]]:
    """The one reader of user text: a file's text ('-' for standard input) in pieces of about
    chunk_bytes, with the bytes read so far and the piece's raw bytes.

    Strict, with the exact byte offset of any decoding error. Only a regular file is opened (see
    `_open_regular`). Binary content is refused wherever it is, in this same pass: the first bytes
    for the formats people mistake for text, every piece for a NUL. With `limit`, more than `limit`
    bytes is an error raised after reading at most limit + 1 of them (at once when the file's size
    says so). A leading byte-order mark is dropped from the text (not from the raw bytes)."""
    name = "<stdin>" if path == "-" else str(path)
    decoder = check_encoding(encoding).incrementaldecoder("strict")
    nul_is_byte = _is_utf8(encoding)  # a NUL byte is a NUL character: look for it in the bytes
    consumed, chars, first = 0, 0, True
    with (contextlib.nullcontext(_stdin()) if path == "-" else _open_regular(path)) as f:
        if limit is not None and path != "-" and os.fstat(f.fileno()).st_size > limit:
            raise _too_big(name, limit)
        while True:
            try:
                chunk = f.read(chunk_bytes if limit is None else max(1, min(chunk_bytes, limit + 1 - consumed)))
            except OSError as error:
                raise CorpusError(f"{name}: cannot read ({error.strerror or error})") from None
            if limit is not None and consumed + len(chunk) > limit:
                raise _too_big(name, limit)
            if consumed == 0:
                _check_head(chunk[:65536], name, encoding)
            nul = chunk.find(0) if nul_is_byte else -1
            if nul >= 0:
                raise _binary(name, f"NUL byte at offset {consumed + nul}")
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                offset = consumed - len(pending) + error.start
                raise _decode_error(name, error, offset, (pending + chunk)[error.start]) from None
            consumed += len(chunk)
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = first and not text
            nul = -1 if nul_is_byte else text.find("\x00")
            if nul >= 0:
                raise _binary(name, f"NUL character at character {chars + nul}")
            chars += len(text)
            yield text, consumed, chunk
            if not chunk:
                return


def corpus_files(paths: Sequence[str | os.PathLike], glob: str | None = None,
                 skipped: list[Path] | None = None) -> list[Path | str]:
    """Expand the user's corpus arguments: files stay, directories become their matching files.

    '-' stands for standard input and is kept as the string '-'. A directory's hidden files and
    charlstm's own output are left out: checkpoints (*.safetensors) and every charlstm run folder
    (one holding a checkpoint, a lock or a prepared corpus) with all under it; those left out are
    appended to `skipped` (run folders as one entry each) when it is given.
    """
    files: list[Path | str] = []
    for item in paths:
        if str(item) == "-":
            files.append("-")
            continue
        path = Path(item)
        if path.is_dir():
            pattern = glob or "*"
            left_out: list[Path] = []
            found = sorted(p for p in _walk(path, left_out) if fnmatch.fnmatch(p.name, pattern))
            if skipped is not None:
                skipped.extend(left_out)
            if not found:
                also = f" (left out {skipped_summary(left_out)})" if left_out else ""
                raise CorpusError(f"{path}: no files matching {pattern!r} in this directory{also}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CorpusError(f"{path}: not a regular file")
        else:
            raise CorpusError(f"{path}: no such file or directory")
    return files


def _walk(top: Path, skipped: list[Path]) -> Iterator[Path]:
    """The regular files under `top`, without hidden names, checkpoints or charlstm run folders
    (those go to `skipped`). Links to folders are not followed."""
    if is_run_dir(top):
        skipped.append(top)
        return
    for root, dirs, names in os.walk(top):
        here = Path(root)
        keep = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            if is_run_dir(here / name):
                skipped.append(here / name)
            else:
                keep.append(name)
        dirs[:] = keep
        for name in names:
            p = here / name
            if name.startswith(".") or not p.is_file():
                continue
            if name.endswith(".safetensors"):
                skipped.append(p)
                continue
            yield p


def skipped_summary(skipped: Sequence[Path]) -> str:
    """'2 charlstm run folders and 1 checkpoint', for the notice that names what a corpus read left out."""
    folders = sum(1 for p in skipped if p.is_dir())
    files = len(skipped) - folders
    parts = ([f"{folders} charlstm run folder{'s' * (folders != 1)}"] if folders else []) + (
        [f"{files} checkpoint{'s' * (files != 1)}"] if files else [])
    return " and ".join(parts) or "nothing"


def read_corpus(paths: Sequence[str | os.PathLike], glob: str | None = None, encoding: str = "utf-8",
                limit: int | None = MAX_TEXT_BYTES) -> str:
    """Read and concatenate the corpus files (strict decoding) into one string: at most `limit`
    bytes in all (None: no limit), more is a CorpusError. Several files are joined as they are."""
    files = corpus_files(paths, glob)
    if not files:
        raise CorpusError("no corpus given")
    parts: list[str] = []
    for file in files:
        consumed = 0
        for text, consumed, _ in _decoded_chunks(file, encoding, CHUNK_BYTES, limit):
            parts.append(text)
        limit = None if limit is None else limit - consumed
    text = "".join(parts)
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files"
    if len(text) < 2:
        raise CorpusError(f"{where}: corpus is empty (need at least a few characters of text)")
    if not text.strip():
        raise CorpusError(f"{where}: corpus holds only whitespace")
    return text


def read_text_file(path: str | os.PathLike, encoding: str = "utf-8", limit: int | None = MAX_TEXT_BYTES) -> str:
    """One regular text file of at most `limit` bytes, decoded with the same strict checks as a
    corpus but without the corpus's size rules: a prime or a text to inspect may be a single character."""
    return "".join(text for text, _, _ in _decoded_chunks(Path(path), encoding, CHUNK_BYTES, limit))


def read_tail(path: str | os.PathLike, length: int, encoding: str = "utf-8") -> str:
    """At least the last `length` characters of a text file (all of it if shorter), reading only
    the end of a big UTF-8 file."""
    path = Path(path)
    size = path.stat().st_size
    budget = 4 * length + 4                                # a UTF-8 character is at most 4 bytes
    if size <= budget or codecs.lookup(encoding).name != "utf-8":  # read it all, keeping only the end
        tail = ""
        for text, _, _ in _decoded_chunks(path, encoding, CHUNK_BYTES):
            tail = (tail + text)[-budget:]
        return tail
    with _open_regular(path) as f:
        f.seek(size - budget)
        raw = f.read(budget)
    start = 0
    while start < len(raw) and 0x80 <= raw[start] < 0xC0:  # skip the rest of a character cut in two
        start += 1
    return raw[start:].decode(encoding)


# --------------------------------------------------------------------------------------------
# Vocabulary


MAX_CODE_POINT = 0x10FFFF


def narrow_bytes(text: str) -> bytes | None:
    """Text whose characters are all below U+0100 (ASCII, Latin-1) as one byte per character;
    None for any other text."""
    if text.isascii():
        return text.encode("ascii")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def code_points(text: str) -> np.ndarray:
    """The code points of text as an array, in the narrowest type that holds them: one byte per
    character for ASCII and Latin-1 text, two for the rest of the Basic Multilingual Plane."""
    narrow = narrow_bytes(text)
    return np.frombuffer(narrow, dtype=np.uint8) if narrow is not None else _wide_code_points(text)


def _wide_code_points(text: str) -> np.ndarray:
    """`code_points` of text known to have a character at or above U+0100."""
    utf16 = text.encode("utf-16-le")
    if len(utf16) == 2 * len(text):  # no surrogate pairs: every character is one 16-bit unit
        return np.frombuffer(utf16, dtype=np.uint16)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharSet:
    """The distinct characters of a text that arrives in pieces, and how often each occurs, at memory speed.

    ASCII and Latin-1 pieces (most corpora) are counted with one bincount of their bytes; other
    text through a bincount of its code points, in cache-sized slices."""

    _SLICE = 1 << 18

    def __init__(self) -> None:
        self._counts = np.zeros(MAX_CODE_POINT + 1, dtype=np.int64)   # occurrences of every code point (9 MB)

    def add(self, text: str) -> None:
        narrow = narrow_bytes(text)
        if narrow is not None:
            self._counts[:256] += np.bincount(np.frombuffer(narrow, dtype=np.uint8), minlength=256)
            return
        codes = _wide_code_points(text)
        for start in range(0, len(codes), self._SLICE):
            counts = np.bincount(codes[start : start + self._SLICE])
            self._counts[: len(counts)] += counts

    def chars(self) -> list[str]:
        """The characters seen, sorted by code point."""
        return [chr(c) for c in np.flatnonzero(self._counts)]

    def counts(self) -> dict[str, int]:
        """How often each character seen occurs."""
        seen = np.flatnonzero(self._counts)
        return {chr(c): int(n) for c, n in zip(seen, self._counts[seen])}

    def vocab(self, min_count: int | None = None) -> "Vocab":
        """The vocabulary of the text: every character, or the characters seen at least `min_count`
        times and UNKNOWN standing for the rest (None: `rare_threshold` chooses the count)."""
        counts = self.counts()
        least = rare_threshold(np.fromiter(counts.values(), dtype=np.int64)) if min_count is None else min_count
        kept = [c for c, n in counts.items() if n >= least]
        if len(kept) == len(counts):
            return Vocab(kept)
        if not kept:
            raise CorpusError(f"no character occurs {least} times or more; lower --min-char-count")
        return Vocab(sorted({*kept, UNKNOWN}), unknown=UNKNOWN)


#: The symbol rare characters are read as (when a vocabulary folds them): U+FFFD REPLACEMENT CHARACTER,
#: which is also how a sample shows it.
UNKNOWN = "\ufffd"
#: A vocabulary counts as large above this many distinct characters: then the softmax over it costs
#: as much as the recurrent layers of a default model, and its rarest characters may be folded …
LARGE_VOCAB = 256
#: … those rarer than the largest of these counts at which the folded characters are at most …
RARE_COUNTS = (2, 3, 5, 10, 20, 50)
#: … this share of the text (1 character in 500).
RARE_SHARE = 0.002


def rare_threshold(counts: np.ndarray) -> int:
    """The default fold, from how often each distinct character occurs: none (1) in an ordinary
    vocabulary; in a large one, characters rarer than the largest of RARE_COUNTS that keeps the
    folded ones within RARE_SHARE of the text. Code with box-drawing tables and emoji folds hundreds
    of characters that together are 0.2 % of it (the softmax shrinks 4×); Chinese poetry, whose rare
    characters are many and each meaningful, keeps nearly all (benchmarks/defaults.py)."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) <= LARGE_VOCAB:
        return 1
    total, least = int(counts.sum()), 1
    for k in RARE_COUNTS:
        if int(counts[counts < k].sum()) > RARE_SHARE * total:
            break
        least = k
    return least


class Vocab:
    """The characters a model knows, in a fixed order; id i is chars[i].

    Built from the characters seen in the corpus (sorted by code point, so the same text always
    gives the same ids) and stored with every checkpoint.
    """

    def __init__(self, chars: Iterable[str], unknown: str | None = None):
        self.chars: list[str] = list(chars)
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("vocabulary entries must be single characters")
        self.index = {c: i for i, c in enumerate(self.chars)}
        if len(self.index) != len(self.chars):
            raise ValueError("vocabulary has repeated characters")
        if unknown is not None and unknown not in self.index:
            raise ValueError("the unknown symbol must be one of the vocabulary's characters")
        #: the character rare and unseen characters are read as (None: the vocabulary has every
        #: character of its corpus, and an unseen one is an error)
        self.unknown_char = unknown
        self._table: np.ndarray | None = None
        self._byte_table: bytes | None = None

    @classmethod
    def from_text(cls, text: str, min_count: int | None = 1) -> "Vocab":
        chars = CharSet()
        chars.add(text)
        return chars.vocab(min_count)

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.chars, self.unknown_char) == (other.chars, other.unknown_char)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def read(self, text: str) -> str:
        """The text as this vocabulary reads it: characters it lacks become its unknown symbol (if
        it has one; otherwise the text is returned as it is)."""
        if self.unknown_char is None:
            return text
        return "".join(c if c in self.index else self.unknown_char for c in text)

    def unknown(self, text: str) -> list[str]:
        """Characters of text the vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def check(self, text: str, what: str = "text") -> None:
        """Raise UnknownCharactersError naming (up to 12 of) the characters of `text` the vocabulary
        lacks; `what` names the text in the message ("prime", "text", "prompts")."""
        missing = self.unknown(text)
        if missing:
            more = f" and {len(missing) - 12} more" if len(missing) > 12 else ""
            shown = ", ".join(repr(c) for c in missing[:12]) + more
            raise UnknownCharactersError(f"the {what} has characters this model never saw: {shown} "
                                         "(use --unknown skip or --unknown replace)")

    def encode(self, text: str) -> np.ndarray:
        """Text to ids through a code-point lookup table: a 1 MB corpus encodes in milliseconds.
        ASCII and Latin-1 text maps byte to byte with `bytes.translate` (about 1 GB/s).
        Unseen characters raise UnknownCharactersError (see `check`)."""
        narrow = narrow_bytes(text)
        if narrow is not None and self._narrow_ids():
            mapped = narrow.translate(self._byte_table)
            if self.unknown_char is None and b"\xff" in mapped:    # 255 marks a character we lack
                self.check(text)
            return np.frombuffer(mapped, dtype=np.uint8).astype(id_dtype(len(self)), copy=False)
        if self._table is None:  # code point -> id, -1 (or the unknown symbol's) where unknown (4.5 MB, built once)
            missing = -1 if self.unknown_char is None else self.index[self.unknown_char]
            self._table = np.full(MAX_CODE_POINT + 1, missing, dtype=np.int32)
            self._table[[ord(c) for c in self.chars]] = np.arange(len(self.chars), dtype=np.int32)
        ids = self._table[np.frombuffer(narrow, dtype=np.uint8) if narrow is not None else _wide_code_points(text)]
        if len(ids) and ids.min() < 0:
            self.check(text)
        return ids.astype(id_dtype(len(self)), copy=False)

    def _narrow_ids(self) -> bool:
        """Build the byte → id table if every character below U+0100 has an id below 255 (255 is
        kept for 'unknown'); False if not, and then encode takes the general route."""
        if self._byte_table is None:
            low = [(ord(c), i) for i, c in enumerate(self.chars) if ord(c) < 256]
            missing = 255 if self.unknown_char is None else self.index[self.unknown_char]
            if any(i >= 255 for _, i in low) or missing > 255:
                self._byte_table = b""
            else:
                table = bytearray(bytes([missing]) * 256)
                for code, i in low:
                    table[code] = i
                self._byte_table = bytes(table)
        return bool(self._byte_table)

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        return "".join(chars[int(i)] for i in ids)


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest integer type for ids: a byte per character for ordinary text."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


# --------------------------------------------------------------------------------------------
# An encoded corpus, and preparing one from files of any size


CHUNK_BYTES = 16 << 20  # bytes decoded at a time while preparing: bounds memory whatever the corpus size


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
    if n_chars < 2:
        raise CorpusError(f"{where}: corpus is empty (need at least a few characters of text)")
    if all(c.isspace() for c in seen.chars()):
        raise CorpusError(f"{where}: corpus holds only whitespace")
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


def _is_plain_utf8(path: str | os.PathLike, encoding: str) -> bool:
    """UTF-8 without a byte-order mark: the file's bytes are exactly its text's UTF-8."""
    try:
        if codecs.lookup(encoding).name != "utf-8":
            return False
        with open(path, "rb") as f:
            return not f.read(3).startswith(codecs.BOM_UTF8)
    except (LookupError, OSError):
        return False


def _stamp(path: str | os.PathLike) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


# --------------------------------------------------------------------------------------------
# Split and batches


def split(ids: np.ndarray, val_fraction: float, min_val: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the last val_fraction of the corpus is held out for validation.

    Contiguous (not shuffled) so the validation text is text the model has never seen, not
    windows that overlap the training text.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1)")
    n_val = int(round(len(ids) * val_fraction))
    if val_fraction > 0:
        n_val = max(n_val, min_val)
    if len(ids) - n_val < 2:
        raise CorpusError(f"corpus too small to split: {len(ids)} characters")
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


@dataclass(frozen=True)
class StreamLayout:
    """How training text is cut for truncated BPTT.

    The training ids are laid out as B parallel streams, each a contiguous slice of the text;
    batch k holds characters [k*T, (k+1)*T) of every stream, so the hidden state at the end of
    batch k is the right starting state for batch k+1:

        text:    a0 a1 a2 ... | b0 b1 b2 ... | c0 c1 c2 ...      (B = 3 streams)
        batch 0: [a0..aT-1]     [b0..bT-1]     [c0..cT-1]
        batch 1: [aT..a2T-1]    [bT..b2T-1]    [cT..c2T-1]

    Each epoch starts the streams at a different offset (0 ≤ offset < T, from the seed and the
    epoch number) so the model does not see the same window boundaries every epoch.
    """

    n_chars: int
    batch_size: int
    seq_len: int
    seed: int = 0

    @property
    def stream_len(self) -> int:
        return self.n_chars // self.batch_size

    @property
    def batches_per_epoch(self) -> int:
        # One character of every stream is needed as the final target; the offset uses up to T-1.
        return max((self.stream_len - self.seq_len) // self.seq_len, 1)

    def offset(self, epoch: int) -> int:
        if epoch == 0:
            return 0
        rng = np.random.default_rng([self.seed, epoch])
        room = self.stream_len - 1 - self.batches_per_epoch * self.seq_len
        return int(rng.integers(0, max(min(room, self.seq_len - 1), 0) + 1))

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of the given global step."""
        return divmod(step, self.batches_per_epoch)


def fit_layout(n_chars: int, batch_size: int, seq_len: int, seed: int = 0) -> StreamLayout:
    """A layout for this much text: fewer streams when the corpus is short; an error when it cannot
    fill two windows of seq_len (there would be nothing to carry state across)."""
    if n_chars < 2 * seq_len + 1:
        raise CorpusError(f"corpus too short: {n_chars} training characters cannot fill two windows of --seq-len "
                          f"{seq_len}; give more text or a smaller --seq-len")
    batch_size = max(1, min(batch_size, n_chars // (2 * seq_len + 1)))
    return StreamLayout(n_chars, batch_size, seq_len, seed)


def stream_batch(ids: np.ndarray, layout: StreamLayout, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (each (B, T)) of the given global step."""
    epoch, k = layout.position(step)
    start = layout.offset(epoch) + k * layout.seq_len
    streams = ids[: layout.stream_len * layout.batch_size].reshape(layout.batch_size, layout.stream_len)
    window = streams[:, start : start + layout.seq_len + 1]  # (B, T+1)
    return window[:, :-1], window[:, 1:]


def eval_streams(ids: np.ndarray, num_streams: int) -> np.ndarray:
    """Validation ids as (S, L) contiguous streams, evaluated chunk by chunk with carried state."""
    num_streams = max(1, min(num_streams, (len(ids) - 1) // 2 or 1))
    length = len(ids) // num_streams
    return ids[: num_streams * length].reshape(num_streams, length)
