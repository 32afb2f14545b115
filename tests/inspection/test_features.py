"""inspection/features.py, feature_chars.py and feature_spans.py: per-character features, exact
expected values on hand-written strings; the registry and its names."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from charlstm.errors import PatternTimeout
from charlstm.inspection import feature_spans, features
from charlstm.inspection.feature_chars import bracket_depth, column, count_since_newline, in_uppercase_run, indent_level, is_digit, is_line_start, is_newline, is_uppercase, is_vowel, is_whitespace, is_word_start, paren_depth
from charlstm.inspection.features import get_feature
from charlstm.inspection.feature_spans import compile_pattern, inside_comment, inside_double_quote, inside_hashtag, inside_mention, inside_single_quote, inside_url, regex_feature


def marks(pattern: str) -> list[float]:
    """Expected values written one digit per character, aligned under the text."""
    return [float(digit) for digit in pattern]


def segments(*parts: tuple[str, float]) -> tuple[str, list[float]]:
    """A text built from pieces, with every character of a piece expected to have its value."""
    text = "".join(piece for piece, _ in parts)
    return text, [float(value) for piece, value in parts for _ in piece]


def assert_feature(values: np.ndarray, text: str, expected: str | list[float]) -> None:
    expected_values = marks(expected) if isinstance(expected, str) else expected
    assert len(expected_values) == len(text), "test bug: expectation not aligned with text"
    assert values.dtype == np.float64
    assert values.tolist() == expected_values


# ------------------------------------------------------------------------------------------
# Quotes


def test_double_quote_marks_both_quote_characters_and_not_the_next() -> None:
    text = 'a "bc" d'
    assert_feature(inside_double_quote(text), text, "00111100")


def test_double_quote_spans_a_line_but_a_blank_line_resets_it() -> None:
    text = '"ab\ncd" e'
    assert_feature(inside_double_quote(text), text, "111111100")
    # An unclosed quote in one paragraph must not invert the next paragraph.
    text = '"a\n\nb "c"'
    assert_feature(inside_double_quote(text), text, "111000111")
    # Whitespace-only lines with CRLF count as blank.
    text = '"a\r\n \r\nb'
    assert_feature(inside_double_quote(text), text, "11110000")


def test_double_quote_escape_and_typographic_quotes() -> None:
    text = r'"a\"b" c'
    assert_feature(inside_double_quote(text), text, "11111100")
    text = "x “yz” w"
    assert_feature(inside_double_quote(text), text, "00111100")


def test_double_quote_triple_quoted_string_ignores_blank_lines() -> None:
    text = 'x"""a\n\nb"""y'
    assert_feature(inside_double_quote(text), text, "011111111110")


def test_single_quote_skips_apostrophes() -> None:
    text = "don't 'hi' Juliet's"
    expected = "00000" + "0" + "1111" + "0" + "00000000"
    assert_feature(inside_single_quote(text), text, expected)


def test_single_quote_apostrophe_inside_a_quotation_does_not_close_it() -> None:
    text = "'I don't' x"
    assert_feature(inside_single_quote(text), text, "11111111100")


def test_single_quote_resets_at_newline_and_crlf_is_outside() -> None:
    text = "'ab\r\ncd'"
    # The quote never closes on its line: "\r\n" is 0 and the next line starts outside; the
    # final ' follows a letter, so it is an apostrophe, not an opening quote.
    assert_feature(inside_single_quote(text), text, "11100000")


def test_single_quote_typographic_apostrophe() -> None:
    text = "‘it’s’ x"
    assert_feature(inside_single_quote(text), text, "11111100")


# ------------------------------------------------------------------------------------------
# Brackets


def test_bracket_depth_opening_and_closing_have_inner_depth() -> None:
    text = "f(a[b]){}c"
    assert_feature(bracket_depth(text), text, [0, 1, 1, 2, 2, 2, 1, 1, 1, 0])


def test_bracket_depth_never_negative_on_unbalanced_text() -> None:
    text = "a))(b]"
    assert_feature(bracket_depth(text), text, "000111")
    text = "((("
    assert_feature(bracket_depth(text), text, "123")


def test_paren_depth_ignores_other_brackets() -> None:
    text = "([x])"
    assert_feature(paren_depth(text), text, "11111")
    assert_feature(bracket_depth(text), text, "12221")


# ------------------------------------------------------------------------------------------
# Lines


def test_indent_covers_the_whole_line_including_its_crlf() -> None:
    text = "a\r\n  b\r\n\tc"
    assert_feature(indent_level(text), text, "000" + "22222" + "44")
    assert_feature(indent_level(text, tab_width=8), text, [0] * 3 + [2] * 5 + [8] * 2)


def test_indent_of_whitespace_only_line_and_trailing_newline() -> None:
    text = "   \n x\n"
    assert_feature(indent_level(text), text, "3333" + "111")


def test_column_and_line_start_with_crlf_and_chinese() -> None:
    text = "ab\r\n中文😀\nx"
    assert_feature(column(text), text, "0123" + "0123" + "0")
    assert_feature(is_line_start(text), text, "1000" + "1000" + "1")


def test_count_since_newline() -> None:
    text = "aab\naXa"
    assert_feature(count_since_newline(text, "a"), text, "1222" + "112")
    assert_feature(get_feature("count:a")(text), text, "1222" + "112")
    assert_feature(get_feature("count:X")(text), text, "0000" + "011")


def test_newline_whitespace_digit_uppercase() -> None:
    text = "A1\r\n É２ж"
    assert_feature(is_newline(text), text, "00010000")
    assert_feature(is_whitespace(text), text, "00111000")
    assert_feature(is_digit(text), text, "01000010")
    assert_feature(is_uppercase(text), text, "10000100")


def test_uppercase_run_needs_two_capitals() -> None:
    text = "ROMEO: I Am OK"
    assert_feature(in_uppercase_run(text), text, "11111" + "0000000" + "11")


def test_word_start() -> None:
    text = "don't 3rd x-y 中文"
    assert_feature(is_word_start(text), text, "10000" + "0" + "010" + "0" + "101" + "0" + "10")


def test_vowel_with_accents() -> None:
    text = "yAé中o"
    assert_feature(is_vowel(text), text, "01101")


# ------------------------------------------------------------------------------------------
# Comments


def test_line_comments_end_before_the_line_terminator() -> None:
    text = "x # c\r\ny // d\nz"
    assert_feature(inside_comment(text), text, "00111" + "00" + "001111" + "0" + "0")


def test_block_comment_spans_lines() -> None:
    text = "a /* b\nc */ d"
    assert_feature(inside_comment(text), text, "00" + "11111" + "1111" + "00")


def test_block_comment_does_not_close_on_its_own_opening_star() -> None:
    text = "/*/ x */y"
    assert_feature(inside_comment(text), text, "111111110")


def test_url_slashes_do_not_start_a_comment() -> None:
    text = "see http://x.io/a // c"
    assert_feature(inside_comment(text), text, "0" * 18 + "1111")
    text = "file:///etc"
    assert_feature(inside_comment(text), text, "0" * 11)


def test_comment_markers_inside_strings_are_ignored() -> None:
    text = "s = \"#/*//\" # c"
    assert_feature(inside_comment(text), text, "0" * 12 + "111")
    text = "c = '#' # x"
    assert_feature(inside_comment(text), text, "0" * 8 + "111")
    # An apostrophe does not open a string, so the comment after it is still found.
    text = "don't # x"
    assert_feature(inside_comment(text), text, "000000111")


# ------------------------------------------------------------------------------------------
# URLs, hashtags, mentions


def test_url_stops_at_whitespace_and_drops_sentence_punctuation() -> None:
    text = "go https://a.b/c?d=1. ok"
    assert_feature(inside_url(text), text, "000" + "1" * 17 + "0000")


def test_url_keeps_balanced_parentheses_and_stops_at_unbalanced_closer() -> None:
    text = "(see www.w.org/F_(b))"
    assert_feature(inside_url(text), text, "00000" + "1" * 15 + "0")


def test_url_stops_at_quote_and_at_chinese() -> None:
    text = 'href="http://a.cn"看http://t.cn/x很'
    expected = "000000" + "1" * 11 + "0" + "0" + "1" * 13 + "0"
    assert_feature(inside_url(text), text, expected)


def test_url_needs_a_word_boundary_before_www() -> None:
    text = "awww.no"
    assert_feature(inside_url(text), text, "0000000")


def test_hashtag_and_mention_in_a_tweet() -> None:
    text, hashtag = segments(
        ("RT @bob_1: ", 0),
        ("#中文", 1),
        (" ", 0),
        ("#go", 1),
        ("! C# a@b.c http://x.co/#f 😀", 0),  # C#, e-mail, URL fragment: no tags
        ("#ok", 1),
    )
    assert_feature(inside_hashtag(text), text, hashtag)
    _, mention = segments(("RT ", 0), ("@bob_1", 1), (text[9:], 0))
    assert_feature(inside_mention(text), text, mention)


def test_hashtag_needs_a_word_character_after_the_sign() -> None:
    text = "# x #"
    assert_feature(inside_hashtag(text), text, "00000")


# ------------------------------------------------------------------------------------------
# Regex and registry


def test_regex_feature_marks_matches_and_not_zero_width_matches() -> None:
    text = "ab12c3"
    assert_feature(regex_feature(text, r"[0-9]+"), text, "001101")
    assert_feature(regex_feature(text, r"\b|(?=c)"), text, "000000")
    assert_feature(get_feature("regex:b1|c")(text), text, "011010")


#: Patterns that backtrack without end over the text beside them in Python's `re`; the last three
#: in the `regex` engine too.
RUNAWAY = [(r"(e+)+$", "e" * 40 + "!"), (r"(\w|\w\w)+$", "e" * 60 + "!"), (r"(a|aa)+$", "a" * 60 + "b"),
           (r"(x+x+)+y", "x" * 5000)]


@pytest.mark.parametrize("pattern, text", RUNAWAY)
def test_a_pattern_that_backtracks_without_end_is_stopped_at_its_time_limit(pattern, text, monkeypatch) -> None:
    """Matched in full when the engine can, else a PatternTimeout naming the pattern, after at most
    the time limit of matching (a quarter of a second here; the real one over the command line in
    test_find.py): never a search that runs on."""
    monkeypatch.setattr(feature_spans, "MAX_PATTERN_SECONDS", 0.25)
    for apply in (lambda: regex_feature(text, pattern), lambda: get_feature("regex:" + pattern)(text)):
        started = time.process_time()
        try:
            values = apply()
        except PatternTimeout as error:
            assert "took longer than 0.25 s" in str(error) and repr(pattern) in str(error)
        else:
            assert not values.any()      # none of them matches: each ends in a character it cannot take
        assert time.process_time() - started < 1.0


def test_user_patterns_compile_once_with_their_flags_and_their_errors() -> None:
    text = "AbA\nb"
    assert_feature(regex_feature(text, re.compile("a", re.IGNORECASE)), text, "10100")
    assert_feature(regex_feature(text, re.compile("^b", re.MULTILINE)), text, "00001")
    assert compile_pattern(compile_pattern("a+")).pattern == "a+"
    with pytest.raises(ValueError, match="missing \\)"):
        compile_pattern("(a")


def test_every_registered_feature_handles_empty_and_mixed_text() -> None:
    text = "Hi \"there\" (x) # c\r\n\t中文😀 http://a.b #t @u 'q'\n"
    for name in features.feature_names():
        compute = get_feature(name)
        assert compute("").shape == (0,), name
        values = compute(text)
        assert values.shape == (len(text),), name
        assert values.dtype == np.float64, name
        assert (values >= 0).all(), name
        assert features.FEATURES[name].description, name


def test_get_feature_rejects_unknown_and_malformed_names() -> None:
    with pytest.raises(ValueError, match="valid names: double-quote.*count:CHAR.*regex:PATTERN"):
        get_feature("quotes")
    with pytest.raises(ValueError, match="exactly one character"):
        get_feature("count:ab")
    with pytest.raises(ValueError, match="exactly one character"):
        get_feature("count:")
    with pytest.raises(ValueError, match="invalid regular expression"):
        get_feature("regex:(")
    with pytest.raises(ValueError, match="needs a pattern"):
        get_feature("regex:")


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        features.FEATURES["new"] = features.FEATURES["digit"]  # type: ignore[index]


def test_all_features_are_fast_on_200k_characters() -> None:
    chunk = 'def f(x):\r\n    return "a#b" + x  # c /* d */ http://e.f @g #h\n中文 don\'t\n'
    text = (chunk * (200_000 // len(chunk) + 1))[:200_000]
    started = time.perf_counter()
    for name in [*features.feature_names(), "count:a", "regex:[a-z]+"]:
        assert get_feature(name)(text).shape == (200_000,)
    # About 0.2 s on a laptop; the bound leaves room for slow CI machines.
    assert time.perf_counter() - started < 2.0
