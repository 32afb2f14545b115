"""errors.py: every message is one line, whatever the text it quotes (a file name with a line break or
control characters is shown escaped). (That the command line prints each refusal through it:
tests/cli/test_messages.py.)"""

from __future__ import annotations

from charlstm.errors import one_line


def test_one_line_escapes_what_is_not_printable():
    assert one_line("plain: ok") == "plain: ok"
    assert one_line("we\nird/x.txt: no such file") == "we\\nird/x.txt: no such file"
    assert one_line("a\rb\tc\x1b[31md\udcff\u2028") == "a\\rb\\tc\\x1b[31md\\udcff\\u2028"
    assert one_line("床前明月光") == "床前明月光"
