"""views/glyphs.py and views/output.py: how characters that do not print are shown. One glyph table
serves every view (and is the only place that writes a glyph); control characters are exactly
Unicode's; TSV escapes every character and reads back exactly."""

from __future__ import annotations

from charlstm.views import glyphs
from charlstm.views.output import escape_text, records_tsv
from charlstm.views.traces import strip
from conftest import plain, unescape_text

def test_one_glyph_table_for_every_way_text_is_shown():
    text = "a b\tc\r\nd\x1b[2J\u2028e\xa0"
    assert "".join(map(glyphs.glyph, text)) == "a b→c␍↵d·[2J·e\xa0"             # one cell per character
    assert glyphs.single_line(text) == "a b→c␍↵d·[2J·e\xa0"
    assert glyphs.keeping_lines(text) == "a b\tc\nd·[2J·e\xa0"                 # breaks (CRLF too) and tabs keep their effect
    assert glyphs.keeping_lines("a\rb\r\r\nc") == "a␍b␍\nc"                       # a lone carriage return is seen
    assert [glyphs.alone(c) for c in " \n\t\r\x1b\xa0\u200bé"] == ["␣", "↵", "→", "␍", "\\x1b", "\\xa0", "\\u200b", "é"]
    # The views draw through it.
    assert plain(strip("x\ty\x07", [0.1] * 4, gate=True)).startswith("x→y·")


def test_control_characters_are_exactly_the_unicode_categories():
    import sys
    import unicodedata

    wrong = [c for c in map(chr, range(sys.maxunicode + 1))
             if glyphs.is_control(c) != (unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs"))]
    assert not wrong, [hex(ord(c)) for c in wrong[:5]]


def test_each_glyph_is_written_in_one_place():
    """The glyph table is the only place in the package that writes a line break's (or a carriage
    return's, or a lone space's) glyph: the page's script gets them as data."""
    from pathlib import Path

    package = Path(glyphs.__file__).resolve().parent.parent
    sources = [p for p in package.rglob("*") if p.suffix in (".py", ".js", ".css", ".html")]
    for mark in ("↵", "␍", "␣", "⇥", "␠"):
        holders = sorted(str(p.relative_to(package)) for p in sources if mark in p.read_text(encoding="utf-8"))
        assert holders in ([], ["views/glyphs.py"]), (mark, holders)


def test_tsv_escaping_round_trips_every_character():
    text = 'a\\n\n\t\r\x0b\x85\u2028 中😀"\\'
    escaped = escape_text(text)
    assert len(escaped.splitlines()) == 1 and "\t" not in escaped and unescape_text(escaped) == text
    lines = list(records_tsv(({"position": i, "char": c, "v": 0.123456789} for i, c in enumerate(text)),
                             ["position", "char", "v"]))
    assert lines[0] == "position\tchar\tv" and len(lines) == 1 + len(text)
    assert "".join(unescape_text(line.split("\t")[1]) for line in lines[1:]) == text
    assert lines[1].split("\t")[2] == "0.123457"
