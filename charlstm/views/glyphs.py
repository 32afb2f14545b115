"""How characters that cannot be seen are shown."""

from __future__ import annotations

#: How invisible characters are shown in a strip (a line break still ends the line after its ↵).
VISIBLE = {"\n": "↵", "\t": "→", "\r": "␍", " ": " "}


def visible(char: str) -> str:
    if char in VISIBLE:
        return VISIBLE[char]
    if ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029":
        return "·"
    return char


def visible_text(text: str) -> str:
    return "".join(visible(c) for c in text)
