"""Features the atlas proposes from the text itself, for units nobody knew to look for.

From one pass over the text's lines (per line, how often each frequent character occurs and where
it first does), three families, named as `features.get_feature` parses them so that a proposal can
be asked for again with `inspect --find`:

* balance:UD — for each pair of characters that open and close together, detected from the text:
  U and D occur equally often on at least EQUAL_SHARE of the lines holding either, and U comes
  first on at least OPENS_FIRST_SHARE of those holding both, and both occur more than once on at
  least MIN_PAIR_LINES lines (brackets, typographic quotes, the a…b of the probes: two characters that
  merely occur once per line in the same order, as `=` and `;` in code, are no pair);
* since:C — characters read since the last occurrence of each delimiter (a character that is
  neither a letter nor a digit) making up DELIMITER_SHARE of the text; the newline is left out:
  `column` is its distance;
* count:C — the running count within the line of each character making up FREQUENT_SHARE.

Balances come first, then distances, then counts, the most frequent characters first within each,
up to config.ATLAS_PROPOSED_FEATURES in all. Takes text; holds no model, no correlation.

Shape legend: T time, L lines, M candidate characters.
"""

from __future__ import annotations

import numpy as np

from ..config import ATLAS_PROPOSED_FEATURES
from .feature_chars import balance_since_newline, code_points, count_since_newline, since_last
from .features import BALANCE_PREFIX, COUNT_PREFIX, SINCE_PREFIX

#: A character is a candidate when it occurs at least this often in the text ...
MIN_OCCURRENCES = 8
#: ... and among the this many most frequent characters.
CANDIDATES = 64
#: Share of the lines holding either character of a pair on which both occur equally often (code's
#: calls and prose's parentheses run over a line end now and then) ...
EQUAL_SHARE = 0.7
#: ... and share of those holding both on which the opener comes first, for a pair to be proposed.
OPENS_FIRST_SHARE = 0.9
#: Fewest lines holding a pair, and holding each of its characters more than once, for it to be proposed.
MIN_PAIR_LINES = 5
#: Pairs are detected on the text's first this many lines at most, which bounds the tables of
#: counts per line and candidate (16 bytes a cell) whatever the text's length.
PAIR_LINES = 20_000
#: Share of the text a character must make up to be counted (count:C) ...
FREQUENT_SHARE = 0.01
#: ... and a delimiter to be measured from (since:C).
DELIMITER_SHARE = 0.002


def propose_features(text: str, cap: int = ATLAS_PROPOSED_FEATURES) -> dict[str, np.ndarray]:
    """Up to `cap` proposed features of `text`: name → (T,) float64, balances first."""
    return {name: compute(text) for name, compute in proposed_names(text, cap)}


def proposed_names(text: str, cap: int = ATLAS_PROPOSED_FEATURES) -> list[tuple[str, object]]:
    """The proposals as (name, function of the text), in the order propose_features keeps them."""
    codes = code_points(text)
    if cap <= 0 or len(codes) == 0:
        return []
    chars, counts = np.unique(codes, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept = [int(chars[k]) for k in order[:CANDIDATES] if counts[k] >= MIN_OCCURRENCES and chars[k] != ord("\n")]
    proposals: list[tuple[str, object]] = []
    for up, down in _pairs(codes, kept):
        proposals.append((f"{BALANCE_PREFIX}{chr(up)}{chr(down)}", _bind(balance_since_newline, up=chr(up),
                                                                         down=chr(down))))
    often = lambda share: [chr(c) for c, n in zip(chars[order], counts[order])  # noqa: E731
                           if n >= max(MIN_OCCURRENCES, share * len(codes)) and c != ord("\n")]
    proposals += [(f"{SINCE_PREFIX}{char}", _bind(since_last, char=char))
                  for char in often(DELIMITER_SHARE) if not char.isalnum()]
    proposals += [(f"{COUNT_PREFIX}{char}", _bind(count_since_newline, char=char)) for char in often(FREQUENT_SHARE)]
    return proposals[:cap]


def _bind(function, **kwargs):
    return lambda text: function(text, **kwargs)


def _pairs(codes: np.ndarray, candidates: list[int]) -> list[tuple[int, int]]:
    """(up, down) code points of the candidate pairs that balance line by line and open first."""
    if len(candidates) < 2:
        return []
    ends = np.flatnonzero(codes == ord("\n"))
    if len(ends) >= PAIR_LINES:
        codes = codes[: ends[PAIR_LINES - 1] + 1]
    index = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    index[candidates] = np.arange(len(candidates))
    line = np.concatenate(([0], np.cumsum(codes[:-1] == ord("\n"))))                   # (T,)
    which = index[codes]
    hit = which >= 0
    L, M = int(line[-1]) + 1, len(candidates)
    per_line = np.zeros((L, M), dtype=np.int64)
    np.add.at(per_line, (line[hit], which[hit]), 1)
    first = np.full((L, M), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, (line[hit], which[hit]), np.flatnonzero(hit))
    totals = per_line.sum(axis=0)
    pairs = []
    for u in range(M):
        for d in range(M):
            if u == d or abs(totals[u] - totals[d]) > (1 - EQUAL_SHARE) * max(totals[u], totals[d]):
                continue
            either = (per_line[:, u] + per_line[:, d]) > 0
            both = (per_line[:, u] > 0) & (per_line[:, d] > 0)
            if both.sum() < MIN_PAIR_LINES or ((per_line[:, u] > 1) & (per_line[:, d] > 1)).sum() < MIN_PAIR_LINES:
                continue
            equal = (per_line[either, u] == per_line[either, d]).mean()
            opens_first = (first[both, u] < first[both, d]).mean()
            if equal >= EQUAL_SHARE and opens_first >= OPENS_FIRST_SHARE:
                pairs.append((totals[u] + totals[d], candidates[u], candidates[d]))
    return [(up, down) for _, up, down in sorted(pairs, key=lambda p: -p[0])]
