"""Named per-character features of text, for "find the neuron that tracks X".

Each feature maps a text to a float64 numpy array with one value per character (per Python
code point), so it can be correlated directly with the hidden state the model produces while
reading that character. Holds the feature functions, a registry of them by name, and the
parsing of parameterised names ("count:a", "regex:[0-9]+"). Holds no model code, no torch, no
correlation or ranking of neurons, and no I/O.

Position convention -- one rule for every feature:

    value[i] is the state while the model reads character i, i.e. the state that holds
    once character i has been consumed, where a delimiter counts as part of what it delimits.

So the opening and the closing quote of "..." are both 1 (inside) and the character after the
closing quote is 0; an opening bracket already has the inner depth and a closing bracket still
has it; `#`, `//`, `/*` and `*/` are part of their comment; the `#` of a hashtag and the `@` of
a mention are part of the tag. Terminators that are not part of the span (the newline ending a
line comment or a single-quoted string, the space ending a URL or a hashtag) are 0.

Lines: a line ends with "\\n"; in "\\r\\n" the "\\r" belongs to the line it ends. Properties of
a line (indent, column, count:CHAR) count its line terminator as part of that line; spans that
a line end closes (line comments, single-quoted strings) exclude the terminator, both the "\\r"
and the "\\n". A lone "\\r" is an ordinary whitespace character, not a line end.

All features are heuristics over raw text, not parsers: each documents its limits.
"""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import numpy as np

#: dtype of every feature array: float64 so correlations with activations lose nothing.
FEATURE_DTYPE = np.float64

#: Indentation columns a tab counts for in `indent_level`.
TAB_WIDTH = 4

FeatureFunction = Callable[[str], np.ndarray]


class FeatureSpec(NamedTuple):
    """A registered feature: the function computing it and a one-line description."""

    compute: FeatureFunction
    description: str


# --------------------------------------------------------------------------------------------
# Shared helpers


def _code_points(text: str) -> np.ndarray:
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
    distinct, inverse = np.unique(_code_points(text), return_inverse=True)
    table = np.array([predicate(chr(code)) for code in distinct], dtype=FEATURE_DTYPE)
    return table[inverse.reshape(-1)]


def _from_mask(mask: bytearray) -> np.ndarray:
    return np.frombuffer(bytes(mask), dtype=np.uint8).astype(FEATURE_DTYPE)


def _line_start_index(text: str) -> np.ndarray:
    """For every position, the index of the first character of the line it is on."""
    codes = _code_points(text)
    starts = np.zeros(len(codes), dtype=np.int64)
    if len(codes) == 0:
        return starts
    after_newline = np.flatnonzero(codes[:-1] == ord("\n")) + 1
    starts[after_newline] = after_newline
    return np.maximum.accumulate(starts)


def _is_line_terminator(text: str, i: int) -> bool:
    """True for "\\n" and for the "\\r" of "\\r\\n"."""
    char = text[i]
    return char == "\n" or (char == "\r" and text.startswith("\n", i + 1))


def _is_letter(char: str) -> bool:
    # Combining marks (category M*) count as letters so that decomposed accents and the vowel
    # signs of Indic scripts do not split a word in two.
    return char.isalpha() or unicodedata.category(char).startswith("M")


def _is_word_char(char: str) -> bool:
    """A character that may continue a hashtag or a mention (Unicode-aware, like \\w)."""
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


# --------------------------------------------------------------------------------------------
# Quotes


def _next_line_is_blank(text: str, newline_index: int) -> bool:
    """Whether the line after the "\\n" at newline_index holds only whitespace (and exists)."""
    start = newline_index + 1
    if start >= len(text):
        return False
    end = text.find("\n", start)
    return not text[start : len(text) if end == -1 else end].strip()


def inside_double_quote(text: str) -> np.ndarray:
    """1 inside a double-quoted string "...", both quote characters included, else 0.

    - Opening quotes are `"` and the typographic `“`; closing quotes are `"` and `”`.
    - Double quotes may span lines, because quotations in prose do, but a blank line (one holding
      only whitespace) ends an open quote: in prose a quotation running over several paragraphs
      reopens each paragraph with a fresh quote and closes only the last one, and the reset also
      stops one stray quote from inverting the rest of a document. The blank line itself is 0.
    - `\"\"\"` opens a triple-quoted string that only the next `\"\"\"` closes, ignoring blank
      lines, so Python docstrings are inside as a whole.
    - Inside a string a backslash escapes the next character, so `\\"` does not close it.
    """
    length = len(text)
    mask = bytearray(length)
    plain, triple = 1, 2
    state = 0
    escaped = False
    i = 0
    while i < length:
        char = text[i]
        if state == 0:
            if char == '"' and text.startswith('"""', i):
                mask[i : i + 3] = b"\x01\x01\x01"
                state = triple
                i += 3
                continue
            if char == '"' or char == "“":
                mask[i] = 1
                state = plain
        else:
            mask[i] = 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif state == triple:
                if char == '"' and text.startswith('"""', i):
                    mask[i + 1 : i + 3] = b"\x01\x01"
                    state = 0
                    i += 3
                    continue
            elif char == '"' or char == "”":
                state = 0
            elif char == "\n" and _next_line_is_blank(text, i):
                state = 0
        i += 1
    return _from_mask(mask)


def inside_single_quote(text: str) -> np.ndarray:
    """1 inside a single-quoted string '...', both quote characters included, else 0.

    Apostrophes are told apart from quotes by their neighbours:
    - `'` or `‘` opens only when the previous character is not a letter or digit, so the
      apostrophes of "don't" and "Juliet's" never open a quote;
    - `'` or `’` closes only when the next character is not a letter, so "'I don't know'" is
      one quotation (the apostrophe in "don't" is followed by "t" and does not close it).
    Single quotes never span lines, as in code: the line end closes an open quote and is 0.
    A backslash inside the quote escapes the next character.
    Limits: elisions that start a word ('tis, 'em) open a quote that runs to the end of the
    line; a plural possessive inside a quotation (the students' books) closes it early.
    """
    length = len(text)
    mask = bytearray(length)
    inside = False
    escaped = False
    for i, char in enumerate(text):
        if _is_line_terminator(text, i):
            inside = False
            escaped = False
            continue
        if not inside:
            if (char == "'" or char == "‘") and not (i > 0 and text[i - 1].isalnum()):
                mask[i] = 1
                inside = True
            continue
        mask[i] = 1
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif (char == "'" or char == "’") and not (i + 1 < length and text[i + 1].isalpha()):
            inside = False
    return _from_mask(mask)


# --------------------------------------------------------------------------------------------
# Brackets


def _nesting_depth(text: str, openers: str, closers: str) -> np.ndarray:
    if not text:
        return np.zeros(0, dtype=FEATURE_DTYPE)
    codes = _code_points(text)
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


# --------------------------------------------------------------------------------------------
# Lines


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
    codes = _code_points(text)
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


# --------------------------------------------------------------------------------------------
# Comments


def inside_comment(text: str) -> np.ndarray:
    """1 inside a comment: `#` or `//` to the end of the line, or `/* ... */` across lines.

    The comment markers are part of the comment; the line terminator ending a line comment is
    not. Best effort, not a parser:
    - `#`, `//` and `/*` inside a string literal on the same line do not start a comment. Strings
      are tracked per line: `"` toggles, `'` opens only after a non-alphanumeric character (so
      apostrophes in prose do not hide a comment) and closes at the next `'`, and a backslash
      escapes. Multi-line strings (Python triple quotes) are not tracked across lines.
    - `//` right after `:` or `/` is a URL (http://x, file:///x), not a comment.
    - Every language's comment syntax applies at once: C preprocessor lines (#include), Python
      floor division (a // b) and hashtags all read as comments.
    """
    length = len(text)
    mask = bytearray(length)
    i = 0
    string_quote = ""  # the quote character of the string literal we are in, if any
    escaped = False
    while i < length:
        char = text[i]
        if char == "\n":
            string_quote = ""
            escaped = False
            i += 1
            continue
        if string_quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == string_quote:
                string_quote = ""
            i += 1
            continue
        if char == '"' or (char == "'" and not (i > 0 and text[i - 1].isalnum())):
            string_quote = char
            i += 1
            continue
        starts_line_comment = char == "#" or (
            char == "/"
            and text.startswith("/", i + 1)
            and not (i > 0 and text[i - 1] in ":/")
        )
        if starts_line_comment:
            end = text.find("\n", i)
            end = length if end == -1 else end
            if end > i and text[end - 1] == "\r" and end < length:
                end -= 1  # the "\r" of "\r\n" is part of the line end, not of the comment
            mask[i:end] = b"\x01" * (end - i)
            i = end
            continue
        if char == "/" and text.startswith("*", i + 1):
            # Search from i + 2 so that "/*/" does not close itself, as in C.
            close = text.find("*/", i + 2)
            end = length if close == -1 else close + 2
            mask[i:end] = b"\x01" * (end - i)
            i = end
            continue
        i += 1
    return _from_mask(mask)


# --------------------------------------------------------------------------------------------
# URLs, hashtags, mentions

# Scheme or "www." not glued to a preceding ASCII word (so "awww." is no URL); a CJK character
# right before is fine, as in Weibo text.
_URL_START = re.compile(r"(?<![0-9A-Za-z_])(?:https?://|www\.)", re.IGNORECASE)
_URL_STOPPERS = frozenset("\"'<>`")
_URL_OPENERS = "([{"
_URL_CLOSERS = ")]}"
_URL_TRAILING_PUNCTUATION = ".,;:!?"


def _url_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    length = len(text)
    covered_until = 0
    for match in _URL_START.finditer(text):
        start = match.start()
        if start < covered_until:
            continue  # the "www." of "http://www.x" is already inside this URL
        i = match.end()
        depth = 0
        while i < length:
            char = text[i]
            if char.isspace() or ord(char) > 127 or char in _URL_STOPPERS:
                break
            if char in _URL_OPENERS:
                depth += 1
            elif char in _URL_CLOSERS:
                # A closer ends the URL only when it closes something opened before it:
                # "(see http://a.b/c)" stops, "http://w.org/Foo_(bar)" keeps its ")".
                if depth == 0:
                    break
                depth -= 1
            i += 1
        end = i
        while end > match.end() and text[end - 1] in _URL_TRAILING_PUNCTUATION:
            end -= 1  # sentence punctuation after a link is not part of it
        spans.append((start, end))
        covered_until = end
    return spans


def inside_url(text: str) -> np.ndarray:
    """1 inside a URL starting with http://, https:// or www. (case-insensitive), else 0.

    The URL runs until whitespace, a quote (" ' `), < or >, a closing bracket with no matching
    opener inside the URL, or any non-ASCII character (so CJK text written straight after a
    link is not swallowed; the price is that IRIs with non-ASCII paths are cut short).
    Trailing . , ; : ! ? are dropped, as they usually end the sentence, not the link.
    """
    mask = bytearray(len(text))
    for start, end in _url_spans(text):
        mask[start:end] = b"\x01" * (end - start)
    return _from_mask(mask)


def _tag_feature(text: str, sigil: str) -> np.ndarray:
    length = len(text)
    mask = bytearray(length)
    url_mask = None  # computed only if the text holds a candidate tag at all
    start = text.find(sigil)
    while start != -1:
        previous_ok = start == 0 or not (_is_word_char(text[start - 1]) or text[start - 1] == "&")
        next_ok = start + 1 < length and _is_word_char(text[start + 1])
        if previous_ok and next_ok:
            if url_mask is None:
                url_mask = inside_url(text)
            if not url_mask[start]:
                end = start + 1
                while end < length and _is_word_char(text[end]):
                    end += 1
                mask[start:end] = b"\x01" * (end - start)
                start = text.find(sigil, end)
                continue
        start = text.find(sigil, start + 1)
    return _from_mask(mask)


def inside_hashtag(text: str) -> np.ndarray:
    """1 inside a hashtag: `#` followed by word characters, the `#` included.

    The `#` must not follow a word character or `&` (so "C#", "a#b" and the entity "&#39;" are
    no hashtags) and must be followed by a word character; the tag runs while word characters
    continue. Word characters are Unicode letters, digits, combining marks and "_", so "#中文"
    is a hashtag. A `#` inside a URL (a fragment) is not. Limits: the closing `#` of Weibo's
    "#话题#" is not included, and a Weibo tag glued to preceding CJK text is not found.
    """
    return _tag_feature(text, "#")


def inside_mention(text: str) -> np.ndarray:
    """1 inside an @mention: `@` followed by word characters, the `@` included.

    Same rules as inside_hashtag: the `@` must not follow a word character, so the "@" of an
    e-mail address (a@b.com) is no mention; an `@` inside a URL (medium.com/@name) is not either.
    """
    return _tag_feature(text, "@")


# --------------------------------------------------------------------------------------------
# Per-character classes


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
    codes = _code_points(text)
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
    return (_code_points(text) == ord("\n")).astype(FEATURE_DTYPE)


def _is_vowel(char: str) -> bool:
    base = unicodedata.normalize("NFD", char)[0]
    return base in "aeiouAEIOU"


def is_vowel(text: str) -> np.ndarray:
    """1 for a, e, i, o, u in either case, with or without diacritics (é, Ö); "y" is not."""
    return _per_char(text, _is_vowel)


# --------------------------------------------------------------------------------------------
# Regular expressions


def regex_feature(text: str, pattern: str | re.Pattern[str]) -> np.ndarray:
    """1 for every character inside any match of `pattern` (non-overlapping, re.finditer).

    Zero-width matches mark nothing. A str pattern is compiled with default flags; pass a
    compiled pattern for flags.
    """
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    mask = bytearray(len(text))
    for match in compiled.finditer(text):
        start, end = match.span()
        mask[start:end] = b"\x01" * (end - start)
    return _from_mask(mask)


# --------------------------------------------------------------------------------------------
# Registry

#: Fixed features by name. Parameterised ones ("count:CHAR", "regex:PATTERN") are built by
#: get_feature.
FEATURES: Mapping[str, FeatureSpec] = MappingProxyType(
    {
        "double-quote": FeatureSpec(inside_double_quote, 'inside "..." (may span lines)'),
        "single-quote": FeatureSpec(
            inside_single_quote, "inside '...' on one line, apostrophes excluded"
        ),
        "bracket-depth": FeatureSpec(bracket_depth, "nesting depth of (), [] and {}"),
        "paren-depth": FeatureSpec(paren_depth, "nesting depth of ()"),
        "indent": FeatureSpec(indent_level, "leading spaces of the line (a tab counts 4)"),
        "column": FeatureSpec(column, "position within the line, 0 after a newline"),
        "line-start": FeatureSpec(is_line_start, "first character of a line"),
        "comment": FeatureSpec(inside_comment, "inside a # or // line comment or a /* */ block"),
        "url": FeatureSpec(inside_url, "inside a URL (http://, https://, www.)"),
        "hashtag": FeatureSpec(inside_hashtag, "inside a #hashtag"),
        "mention": FeatureSpec(inside_mention, "inside an @mention"),
        "uppercase": FeatureSpec(is_uppercase, "uppercase letter"),
        "uppercase-run": FeatureSpec(in_uppercase_run, "letter of an ALL-CAPS run"),
        "word-start": FeatureSpec(is_word_start, "first letter of a word"),
        "whitespace": FeatureSpec(is_whitespace, "whitespace character"),
        "digit": FeatureSpec(is_digit, "decimal digit"),
        "newline": FeatureSpec(is_newline, 'the "\\n" character'),
        "vowel": FeatureSpec(is_vowel, "vowel a e i o u, any case or accent"),
    }
)

COUNT_PREFIX = "count:"
BALANCE_PREFIX = "balance:"
REGEX_PREFIX = "regex:"

#: Descriptions of the parameterised feature forms, for help texts.
PARAMETERISED_FEATURES: Mapping[str, str] = MappingProxyType(
    {
        COUNT_PREFIX + "CHAR": "running count of CHAR since the last newline",
        BALANCE_PREFIX + "UPDOWN": "count of UP minus count of DOWN since the last newline (balance:ab for a^n X b^n)",
        REGEX_PREFIX + "PATTERN": "inside a match of the regular expression PATTERN",
    }
)


def feature_names() -> list[str]:
    """Names of the fixed features, in registry order (parameterised forms not included)."""
    return list(FEATURES)


def _valid_names_hint() -> str:
    return ", ".join([*FEATURES, *PARAMETERISED_FEATURES])


def get_feature(name: str) -> FeatureFunction:
    """The function text -> per-character array for a feature name.

    Accepts every name of FEATURES, "count:CHAR" for exactly one character CHAR (e.g.
    "count:a", "count: "), and "regex:PATTERN" for any Python regular expression (everything
    after the first colon, e.g. "regex:[0-9]+"). Raises ValueError naming the valid names for
    an unknown name, and explaining the problem for a bad CHAR or PATTERN.
    """
    if name in FEATURES:
        return FEATURES[name].compute
    if name.startswith(COUNT_PREFIX):
        char = name[len(COUNT_PREFIX) :]
        if len(char) != 1:
            raise ValueError(
                f"feature {name!r}: count:CHAR needs exactly one character after 'count:', "
                f"got {char!r}"
            )
        return partial(count_since_newline, char=char)
    if name.startswith(BALANCE_PREFIX):
        pair = name[len(BALANCE_PREFIX) :]
        if len(pair) != 2:
            raise ValueError(f"feature {name!r}: balance:UPDOWN needs exactly two characters, e.g. balance:ab")
        return partial(balance_since_newline, up=pair[0], down=pair[1])
    if name.startswith(REGEX_PREFIX):
        pattern = name[len(REGEX_PREFIX) :]
        if not pattern:
            raise ValueError(f"feature {name!r}: regex:PATTERN needs a pattern after 'regex:'")
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"feature {name!r}: invalid regular expression: {error}") from None
        return partial(regex_feature, pattern=compiled)
    raise ValueError(f"unknown feature {name!r}; valid names: {_valid_names_hint()}")


def compute_feature(name: str, text: str) -> np.ndarray:
    """Shorthand for get_feature(name)(text)."""
    return get_feature(name)(text)
