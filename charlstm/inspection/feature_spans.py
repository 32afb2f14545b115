"""Features of spans of text: quotes, comments, URLs, hashtags, mentions and regular-expression matches.

Each is 1 inside its span and 0 outside, following the position and line conventions of features.py.
A user's regular expression is compiled by `compile_pattern` and applied by `regex_feature` alone,
with the `regex` engine (Python's syntax, and a time limit on matching): a pattern that backtracks
without end is refused after MAX_PATTERN_SECONDS, not left to run."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import regex

from ..config import MAX_PATTERN_SECONDS
from ..errors import PatternTimeout
from .feature_chars import from_mask


def _is_line_terminator(text: str, i: int) -> bool:
    """True for "\\n" and for the "\\r" of "\\r\\n"."""
    char = text[i]
    return char == "\n" or (char == "\r" and text.startswith("\n", i + 1))


def _is_word_char(char: str) -> bool:
    """A character that may continue a hashtag or a mention (Unicode-aware, like \\w)."""
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


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
    return from_mask(mask)


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
    return from_mask(mask)


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
    return from_mask(mask)


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
    return from_mask(mask)


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
    return from_mask(mask)


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


def compile_pattern(pattern: str | re.Pattern[str]) -> regex.Pattern:
    """A user's regular expression (a str, or a pattern `re` compiled, its flags kept) compiled for
    `regex_feature`; a ValueError with the engine's reason for one that does not compile."""
    if isinstance(pattern, regex.Pattern):
        return pattern
    flags = 0
    if isinstance(pattern, re.Pattern):
        flags = sum(getattr(regex, name) for name in _FLAGS if pattern.flags & getattr(re, name))
        pattern = pattern.pattern
    try:
        return regex.compile(pattern, flags)
    except regex.error as error:
        raise ValueError(str(error)) from None


#: The flags of a pattern `re` compiled that `compile_pattern` carries over (`re` and `regex` number them apart).
_FLAGS = ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII")


def regex_feature(text: str, pattern: str | re.Pattern[str] | regex.Pattern) -> np.ndarray:
    """1 for every character inside any match of `pattern` (non-overlapping, as re.finditer finds them).

    Zero-width matches mark nothing. A str pattern is compiled with default flags (`compile_pattern`);
    pass a compiled pattern for flags. Matching that runs past MAX_PATTERN_SECONDS in all is a
    PatternTimeout.
    """
    compiled = compile_pattern(pattern)
    mask = bytearray(len(text))
    try:
        for match in compiled.finditer(text, timeout=MAX_PATTERN_SECONDS):
            start, end = match.span()
            mask[start:end] = b"\x01" * (end - start)
    except TimeoutError:
        raise PatternTimeout(f"the regular expression {compiled.pattern!r} took longer than {MAX_PATTERN_SECONDS:g} s "
                             f"over {len(text):,} characters and was stopped: a repeat inside a repeat, as in (a+)+, "
                             f"can backtrack without end; simplify it") from None
    return from_mask(mask)
