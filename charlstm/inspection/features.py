"""Named per-character features of text, for "find the neuron that tracks X".

Each feature maps a text to a float64 numpy array with one value per character (per Python
code point), so it can be correlated directly with the hidden state the model produces while
reading that character. Holds the registry of features by name, the parsing of parameterised
names ("count:a", "regex:[0-9]+"), and the conventions every feature follows; the functions
themselves are in feature_chars.py (characters and lines) and feature_spans.py (quotes, comments,
URLs, tags, regex matches). Holds no model code, no torch, no correlation or ranking of neurons,
and no I/O.

Position convention -- one rule for every feature:

    value[i] is the state while the model reads character i, i.e. the state that holds
    once character i has been consumed, where a delimiter counts as part of what it delimits.

So the opening and the closing quote of "..." are both 1 (inside) and the character after the
closing quote is 0; an opening bracket already has the inner depth and a closing bracket still
has it; `#`, `//`, `/*` and `*/` are part of their comment; the `#` of a hashtag and the `@` of
a mention are part of the tag. Terminators that are not part of the span (the newline ending a
line comment or a single-quoted string, the space ending a URL or a hashtag) are 0.

Lines: a line ends with "\n"; in "\r\n" the "\r" belongs to the line it ends. Properties of
a line (indent, column, count:CHAR) count its line terminator as part of that line; spans that
a line end closes (line comments, single-quoted strings) exclude the terminator, both the "\r"
and the "\n". A lone "\r" is an ordinary whitespace character, not a line end.

All features are heuristics over raw text, not parsers: each documents its limits.
"""

from __future__ import annotations

from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import numpy as np

from .feature_chars import (
    balance_since_newline,
    bracket_depth,
    column,
    count_since_newline,
    in_uppercase_run,
    indent_level,
    is_digit,
    is_line_start,
    is_newline,
    is_uppercase,
    is_vowel,
    is_whitespace,
    is_word_start,
    paren_depth,
    since_last,
)
from .feature_spans import (
    compile_pattern,
    inside_comment,
    inside_double_quote,
    inside_hashtag,
    inside_mention,
    inside_single_quote,
    inside_url,
    regex_feature,
)

FeatureFunction = Callable[[str], np.ndarray]


class FeatureSpec(NamedTuple):
    """A registered feature: the function computing it and a one-line description."""

    compute: FeatureFunction
    description: str


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


#: Prefixes of the parameterised feature names.
COUNT_PREFIX = "count:"
BALANCE_PREFIX = "balance:"
SINCE_PREFIX = "since:"
REGEX_PREFIX = "regex:"


#: Descriptions of the parameterised feature forms, for help texts.
PARAMETERISED_FEATURES: Mapping[str, str] = MappingProxyType(
    {
        COUNT_PREFIX + "CHAR": "running count of CHAR since the last newline",
        BALANCE_PREFIX + "UPDOWN": "count of UP minus count of DOWN since the last newline (balance:ab for a^n X b^n)",
        SINCE_PREFIX + "CHAR": "characters read since the last CHAR (0 at CHAR)",
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
    "count:a", "count: "), "balance:UPDOWN" for two characters, "since:CHAR" for one, and
    "regex:PATTERN" for any Python regular expression (everything after the first colon, e.g.
    "regex:[0-9]+"). Raises ValueError naming the valid names for
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
    if name.startswith(SINCE_PREFIX):
        char = name[len(SINCE_PREFIX) :]
        if len(char) != 1:
            raise ValueError(f"feature {name!r}: since:CHAR needs exactly one character after 'since:', got {char!r}")
        return partial(since_last, char=char)
    if name.startswith(REGEX_PREFIX):
        pattern = name[len(REGEX_PREFIX) :]
        if not pattern:
            raise ValueError(f"feature {name!r}: regex:PATTERN needs a pattern after 'regex:'")
        try:
            compiled = compile_pattern(pattern)
        except ValueError as error:
            raise ValueError(f"feature {name!r}: invalid regular expression: {error}") from None
        return partial(regex_feature, pattern=compiled)
    raise ValueError(f"unknown feature {name!r}; valid names: {_valid_names_hint()}")


def compute_feature(name: str, text: str) -> np.ndarray:
    """Shorthand for get_feature(name)(text)."""
    return get_feature(name)(text)
