"""Features of characters and lines: case, digits, whitespace, columns, indentation, depth, counts.

Each follows the position and line conventions of features.py."""

from __future__ import annotations

import unicodedata
from typing import Callable

import numpy as np

#: dtype of every feature array: float64 so correlations with activations lose nothing.
FEATURE_DTYPE = np.float64
#: Indentation columns a tab counts for in `indent_level`.
TAB_WIDTH = 4


def code_points(text: str) -> np.ndarray:
    """The text as an array of code points (uint32), one per character of the str."""
    # surrogatepass keeps lone surrogates (e.g. from surrogateescape decoding) one-per-char
    # instead of raising, so the array always has len(text) entries.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _per_char(text: str, predicate: Callable[[str], float]) -> np.ndarray:
    """Apply a per-character function, evaluating it once per distinct character."""
    if not text:
        return np.zeros(0, dtype=FEATURE_DTYPE)
    # Texts have few distinct characters, so evaluating on the unique ones and scattering
    # back is far faster than a Python call per position.
    distinct, inverse = np.unique(code_points(text), return_inverse=True)
    table = np.array([predicate(chr(code)) for code in distinct], dtype=FEATURE_DTYPE)
    return table[inverse.reshape(-1)]


def from_mask(mask: bytearray) -> np.ndarray:
    """A mark (0 or 1) per character, as a feature array."""
    return np.frombuffer(bytes(mask), dtype=np.uint8).astype(FEATURE_DTYPE)


def _line_start_index(text: str) -> np.ndarray:
    """For every position, the index of the first character of the line it is on."""
    codes = code_points(text)
    starts = np.zeros(len(codes), dtype=np.int64)
    if len(codes) == 0:
        return starts
    after_newline = np.flatnonzero(codes[:-1] == ord("\n")) + 1
    starts[after_newline] = after_newline
    return np.maximum.accumulate(starts)


def _is_letter(char: str) -> bool:
    # Combining marks (category M*) count as letters so that decomposed accents and the vowel
    # signs of Indic scripts do not split a word in two.
    return char.isalpha() or unicodedata.category(char).startswith("M")


def _nesting_depth(text: str, openers: str, closers: str) -> np.ndarray:
    if not text:
        return np.zeros(0, dtype=FEATURE_DTYPE)
    codes = code_points(text)
    opens = np.isin(codes, [ord(c) for c in openers]).astype(np.int64)
    closes = np.isin(codes, [ord(c) for c in closers]).astype(np.int64)
    running_sum = np.cumsum(opens - closes)
    # Depth floored at zero is the running sum minus its running minimum (capped at 0): an
    # unmatched closer then leaves the depth at 0 instead of driving it negative.
    depth_after = running_sum - np.minimum.accumulate(np.minimum(running_sum, 0))
    depth_before = np.concatenate(([0], depth_after[:-1]))
    # An opener already shows the inner depth; a closer still shows it (depth_before).
    return (depth_before + opens).astype(FEATURE_DTYPE)


def bracket_depth(text: str) -> np.ndarray:
    """Nesting depth of (), [] and {} together; both bracket characters have the inner depth.

    "(a)b" -> 1 1 1 0. Brackets of different kinds are counted, not matched: "(]" is 1 1.
    A closer with nothing open is 0 and the depth never goes negative. Brackets inside strings
    and comments count like any other.
    """
    return _nesting_depth(text, "([{", ")]}")


def paren_depth(text: str) -> np.ndarray:
    """Nesting depth of () only, with the same conventions as bracket_depth."""
    return _nesting_depth(text, "(", ")")


def indent_level(text: str, tab_width: int = TAB_WIDTH) -> np.ndarray:
    """Indentation of the line each character is on, for every character of that line.

    Indentation is the leading run of spaces and tabs: a space counts 1, a tab `tab_width`
    (a flat count, not tab stops). Every character of a line, its line terminator included,
    gets the line's value -- the indentation is a property of the line, known in full only once
    its first non-blank character has been read. A line of only spaces counts all of them.
    """
    lines = text.split("\n")
    values = []
    lengths = []
    for number, line in enumerate(lines):
        leading = line[: len(line) - len(line.lstrip(" \t"))]
        values.append(leading.count(" ") + tab_width * leading.count("\t"))
        # Every line but the last is followed by the "\n" that split removed; it belongs here.
        lengths.append(len(line) + (number < len(lines) - 1))
    return np.repeat(np.array(values, dtype=FEATURE_DTYPE), lengths)


def column(text: str) -> np.ndarray:
    """Position within the line: 0 for the first character after a "\\n".

    The line terminator continues the count ("ab\\r\\n" -> 0 1 2 3). Columns are counted in
    code points, so a CJK character or a one-code-point emoji advances by 1.
    """
    positions = np.arange(len(text), dtype=np.int64)
    return (positions - _line_start_index(text)).astype(FEATURE_DTYPE)


def is_line_start(text: str) -> np.ndarray:
    """1 for the first character of each line (position 0 and every position after "\\n")."""
    return (column(text) == 0).astype(FEATURE_DTYPE)


def count_since_newline(text: str, char: str) -> np.ndarray:
    """Running count of `char` in the current line, up to and including this position.

    "aab\\naa" with char "a" -> 1 2 2 2 1 2: the "\\n" still belongs to the line it ends and
    the count restarts on the next line.
    """
    if len(char) != 1:
        raise ValueError(f"count_since_newline needs exactly one character, got {char!r}")
    codes = code_points(text)
    matches = (codes == ord(char)).astype(np.int64)
    running = np.cumsum(matches)
    line_starts = _line_start_index(text)
    # Count before the line began = running count at its first char minus that char's match.
    before_line = running[line_starts] - matches[line_starts]
    return (running - before_line).astype(FEATURE_DTYPE)


def balance_since_newline(text: str, up: str, down: str) -> np.ndarray:
    """Running count of `up` minus running count of `down` in the current line: what a counter
    must hold. For the probe task "aaaXbbb" with up "a", down "b" -> 1 2 3 3 2 1 0, the number of
    b's still owed after each character."""
    return count_since_newline(text, up) - count_since_newline(text, down)


def since_last(text: str, char: str) -> np.ndarray:
    """Characters read since the last `char`: 0 at `char` itself, 1 after it, and so on; before
    the first `char` the count runs from the start of the text as if one stood just before it.

    "ab a" with char " " -> 1 2 0 1.
    """
    if len(char) != 1:
        raise ValueError(f"since_last needs exactly one character, got {char!r}")
    codes = code_points(text)
    positions = np.arange(len(codes), dtype=np.int64)
    last = np.where(codes == ord(char), positions, -1)
    return (positions - np.maximum.accumulate(last) if len(codes) else positions).astype(FEATURE_DTYPE)


def is_uppercase(text: str) -> np.ndarray:
    """1 for an uppercase letter in any script that has case (A, É, Ж), else 0."""
    return _per_char(text, str.isupper)


def in_uppercase_run(text: str) -> np.ndarray:
    """1 for an uppercase letter next to another uppercase letter: the capitals of ROMEO or
    NASA, but not the lone capital of "I" or "Romeo"."""
    upper = is_uppercase(text).astype(bool)
    previous_upper = np.concatenate(([False], upper[:-1]))
    next_upper = np.concatenate((upper[1:], [False]))
    return (upper & (previous_upper | next_upper)).astype(FEATURE_DTYPE)


def is_word_start(text: str) -> np.ndarray:
    """1 for the first letter of a word: a letter whose previous character is not a letter.

    Letters are Unicode letters and combining marks. An apostrophe (' or ’) between two letters
    joins them, so "don't" and "Juliet's" are one word each. Digits are not letters: the "r" of
    "3rd" starts a word. CJK text has no spaces, so only the first of a run of CJK characters
    counts.
    """
    letter = _per_char(text, _is_letter).astype(bool)
    if len(letter) == 0:
        return np.zeros(0, dtype=FEATURE_DTYPE)
    codes = code_points(text)
    apostrophe = np.isin(codes, [ord("'"), ord("’")])
    previous_letter = np.concatenate(([False], letter[:-1]))
    next_letter = np.concatenate((letter[1:], [False]))
    joining_apostrophe = apostrophe & previous_letter & next_letter
    part_of_word = letter | joining_apostrophe
    previous_part_of_word = np.concatenate(([False], part_of_word[:-1]))
    return (letter & ~previous_part_of_word).astype(FEATURE_DTYPE)


def is_whitespace(text: str) -> np.ndarray:
    """1 for any Unicode whitespace (space, tab, "\\r", "\\n", ideographic space U+3000)."""
    return _per_char(text, str.isspace)


def is_digit(text: str) -> np.ndarray:
    """1 for a decimal digit of any script (0-9, full-width ０-９, Arabic-Indic ٠-٩), else 0."""
    return _per_char(text, str.isdecimal)


def is_newline(text: str) -> np.ndarray:
    """1 for "\\n" only; the "\\r" of "\\r\\n" is 0 (it is whitespace)."""
    return (code_points(text) == ord("\n")).astype(FEATURE_DTYPE)


def _is_vowel(char: str) -> bool:
    base = unicodedata.normalize("NFD", char)[0]
    return base in "aeiouAEIOU"


def is_vowel(text: str) -> np.ndarray:
    """1 for a, e, i, o, u in either case, with or without diacritics (é, Ö); "y" is not."""
    return _per_char(text, _is_vowel)
