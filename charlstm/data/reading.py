"""Reading user text strictly: which files a corpus argument names, and their text.

One reader (`_decoded_chunks`) decodes every file or standard input in pieces: regular files only,
strict decoding with the exact byte offset of an error, binary content refused wherever it is, a
size cap for what is read whole. `check_corpus_text` is the rule of what text is a corpus. A
directory corpus leaves hidden files, checkpoints and charlstm's run folders out (files.py knows
their names). Knows nothing of vocabularies, ids, models or the terminal.
"""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import os
import sys
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from ..errors import CorpusError
from ..files import CHECKPOINT_SUFFIX, is_regular, is_run_dir, open_regular

DEFAULT_CORPUS = "shakespeare.txt"


def bundled_corpora_dir() -> Path:
    """Where the bundled corpora live: charlstm/corpora/ inside a wheel (pyproject.toml puts them
    there), else corpora/ of the source checkout the package sits in."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "corpora"
    return packaged if packaged.is_dir() else package.parent / "corpora"


def default_corpus_path() -> Path:
    return bundled_corpora_dir() / DEFAULT_CORPUS


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
    """`path` opened for reading if it is a regular file (files.open_regular: a device, a FIFO, a
    socket or a directory is refused before a byte is read); links are followed."""
    try:
        return open_regular(path, CorpusError, follow=True)
    except FileNotFoundError:
        raise CorpusError(f"{path}: cannot read (no such file)") from None


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
        elif is_regular(path, CorpusError, follow=True):
            files.append(path)
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
            if name.endswith(CHECKPOINT_SUFFIX):
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
    check_corpus_text(str(files[0]) if len(files) == 1 else f"{len(files)} files", len(text), text)
    return text


def check_corpus_text(where: str, length: int, characters: str) -> None:
    """The one rule of what text is a corpus, for every reader of one: at least two characters, not
    all of them whitespace. `characters`: the text, or its distinct characters; `where` names it."""
    if length < 2:
        raise CorpusError(f"{where}: corpus is empty (need at least a few characters of text)")
    if characters.isspace():
        raise CorpusError(f"{where}: corpus holds only whitespace")


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


CHUNK_BYTES = 16 << 20  # bytes decoded at a time while preparing: bounds memory whatever the corpus size


def _is_plain_utf8(path: str | os.PathLike, encoding: str) -> bool:
    """UTF-8 without a byte-order mark: the file's bytes are exactly its text's UTF-8."""
    try:
        if codecs.lookup(encoding).name != "utf-8":
            return False
        with _open_regular(path) as f:
            return not f.read(3).startswith(codecs.BOM_UTF8)
    except (LookupError, OSError, CorpusError):
        return False


def _stamp(path: str | os.PathLike) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
