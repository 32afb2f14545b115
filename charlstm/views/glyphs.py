"""How characters that cannot be seen are shown: the one table, and the few ways the views use it.

Every view — terminal strips and tables, the HTML page and its script, the report, the live view,
the co-writer — shows a line break, a tab, a carriage return, a space standing alone or a control
character through this module, so each looks the same everywhere. Four uses:

    glyph(c)          one character in a strip, where each character takes one cell
    single_line(t)    text on one line (a context, a copied span, a continuation)
    keeping_lines(t)  text that keeps its line breaks and tabs (a preview, the co-writer's page)
    alone(c)          a character standing alone (a vocabulary, the next-character guesses):
                      a space as ␣, other characters that print nothing as escapes

Pure string work: knows nothing of values, colours or markup.
"""

from __future__ import annotations

import re

from ..errors import one_line as escaped

#: How each invisible character is drawn. A space is drawn as ␣ only where it stands alone; in
#: running text it is a space (it has its width, and a strip colours its background).
GLYPHS = {"\n": "↵", "\t": "→", "\r": "␍", " ": "␣"}

#: What a control character is in running text (one mark, so a strip keeps one cell per character).
CONTROL_GLYPH = "·"

#: Control characters (Unicode category Cc), line and paragraph separators (Zl, Zp) and lone
#: surrogates (Cs): what could break a line or drive a terminal, so never shown as themselves.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

_IN_TEXT = {char: glyph for char, glyph in GLYPHS.items() if char != " "}
_KEPT = "\n\t"


def is_control(char: str) -> bool:
    """Whether `char` is a control character, a line or paragraph separator or a lone surrogate."""
    return CONTROL.fullmatch(char) is not None


def glyph(char: str) -> str:
    """One character as a strip shows it: the glyph of a line break, tab or carriage return, · for
    any other control character, anything else (a space too) as itself."""
    if char in _IN_TEXT:
        return _IN_TEXT[char]
    return CONTROL_GLYPH if is_control(char) else char


def _in_text(match: re.Match) -> str:
    return _IN_TEXT.get(match.group(), CONTROL_GLYPH)


def single_line(text: str) -> str:
    """`text` on one line: each character as `glyph` shows it."""
    return CONTROL.sub(_in_text, text)


def keeping_lines(text: str) -> str:
    """`text` as running text: its line breaks (a CRLF line end too) and tabs kept as they are; a
    lone carriage return and every other control character shown as `glyph` shows it, so the text
    cannot drive a terminal."""
    return CONTROL.sub(lambda m: m.group() if m.group() in _KEPT else _in_text(m), text.replace("\r\n", "\n"))


def alone(char: str) -> str:
    """A character standing alone: the glyph of a line break, tab, carriage return or space; an
    escape (\\x1b, \\u200b) for any other character that prints nothing; else itself."""
    if char in GLYPHS:
        return GLYPHS[char]
    return char if char.isprintable() else escaped(char)
