"""The vocabulary: the characters a model knows, the ids it reads, and what becomes of the rest."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..config import UNKNOWN_POLICIES
from ..errors import CorpusError, UnknownCharactersError

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


def _wide_code_points(text: str) -> np.ndarray:
    """The code points of text known to have a character at or above U+0100, two bytes each where
    every character is in the Basic Multilingual Plane, else four."""
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

    def vocab(self, min_count: int | None = None, base: "Vocab | None" = None) -> "Vocab":
        """The vocabulary of the text: every character, or the characters seen at least `min_count`
        times and UNKNOWN standing for the rest (None: `rare_threshold` chooses the count). With a
        `base` vocabulary (a model the run starts from), `base.extended` by the text's characters."""
        counts = self.counts()
        least = rare_threshold(np.fromiter(counts.values(), dtype=np.int64)) if min_count is None else min_count
        if base is not None:
            return base.extended(counts, least)
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
    folded ones within RARE_SHARE of the text. So a text whose many rare characters are a sliver of
    it (box-drawing tables, emoji in code) folds them, and one whose rare characters are many and
    together common (Chinese poetry) keeps them (benchmarks/defaults.py measures both)."""
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
    def from_text(cls, text: str, min_count: int | None = 1, base: "Vocab | None" = None) -> "Vocab":
        chars = CharSet()
        chars.add(text)
        return chars.vocab(min_count, base)

    def extended(self, counts: dict[str, int], min_count: int) -> "Vocab":
        """This vocabulary grown by the characters of a text (`counts`: how often each occurs, in
        code point order): every character of this one keeps its id, whether the text has it or
        not; the text's other characters follow in code point order, those seen fewer than
        `min_count` times read as this vocabulary's unknown symbol (UNKNOWN, added, when it has none)."""
        new = [c for c in counts if c not in self.index]
        kept = [c for c in new if counts[c] >= min_count]
        chars, unknown = [*self.chars, *kept], self.unknown_char
        if len(kept) < len(new) and unknown is None:
            unknown = UNKNOWN
            if UNKNOWN not in self.index and UNKNOWN not in kept:
                chars.append(UNKNOWN)
        return Vocab(chars, unknown)

    def prefix(self, size: int) -> "Vocab":
        """The vocabulary of the first `size` characters (what a grown vocabulary was grown from);
        the unknown symbol is kept when it is among them."""
        chars = self.chars[:size]
        return Vocab(chars, self.unknown_char if self.unknown_char in chars else None)

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.chars, self.unknown_char) == (other.chars, other.unknown_char)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    @property
    def substitute(self) -> str:
        """What the "replace" policy reads a character this vocabulary lacks as: its unknown symbol
        if it has one, else a space, else its first character."""
        return self.unknown_char or (" " if " " in self.index else self.chars[0])

    def admit(self, text: str, policy: str = "error", what: str = "text") -> str:
        """`text` as the model will read it under an unknown-character policy (config.UNKNOWN_POLICIES):
        "error" refuses it if it holds characters the vocabulary lacks (`check`), "skip" drops them,
        "replace" puts `substitute` in their place. Every command and API path that takes text from
        a user admits it here."""
        if policy not in UNKNOWN_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(UNKNOWN_POLICIES)}, not {policy!r:.40}")
        if policy == "error":
            self.check(text, what)
            return text
        missing = set(text).difference(self.index)
        if not missing:
            return text
        into = None if policy == "skip" else self.substitute
        return text.translate({ord(c): into for c in missing})

    def read(self, text: str) -> str:
        """The text under the "replace" policy: characters the vocabulary lacks read as `substitute`."""
        return self.admit(text, "replace")

    def unknown(self, text: str) -> list[str]:
        """Characters of text the vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def check(self, text: str, what: str = "text") -> None:
        """Raise UnknownCharactersError naming (up to 12 of) the characters of `text` the vocabulary
        lacks; `what` names the text in the message ("prime", "text", "typed text")."""
        missing = self.unknown(text)
        if missing:
            more = f" and {len(missing) - 12} more" if len(missing) > 12 else ""
            shown = ", ".join(repr(c) for c in missing[:12]) + more
            raise UnknownCharactersError(f"the {what} has characters this model never saw: {shown}")

    def encode(self, text: str) -> np.ndarray:
        """Text to ids through a code-point lookup table; ASCII and Latin-1 text maps byte to byte
        with `bytes.translate`. A character the vocabulary lacks reads as its unknown symbol when it
        has one, else raises UnknownCharactersError (see `check`)."""
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
