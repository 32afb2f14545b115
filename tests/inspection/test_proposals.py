"""inspection/proposals.py: the features the atlas proposes from the text itself — pairs that open and
close together detected from the text, counts and distances since a delimiter — bounded by
config.ATLAS_PROPOSED_FEATURES, each a name `--find` takes again; and since:CHAR."""

from __future__ import annotations

import numpy as np
import pytest

from charlstm.config import ATLAS_PROPOSED_FEATURES
from charlstm.inspection.analysis import feature_values
from charlstm.inspection.proposals import propose_features, proposed_names
from charlstm.probes import tasks


def test_the_counter_pair_is_detected_from_the_text():
    text = "".join(line + "\n" for line in tasks.generate("counter", 300, 0))
    names = [name for name, _ in proposed_names(text)]
    assert names[0] == "balance:ab" and {"count:a", "count:b"} <= set(names)
    noisy = "".join(line + "\n" for line in tasks.generate("selective-counter", 300, 0))
    assert [name for name, _ in proposed_names(noisy)][0] == "balance:ab"


def test_brackets_pair_up_in_code_and_letters_do_not():
    rng = np.random.default_rng(1)
    word = lambda: "".join(rng.choice(list("abcdefghxyz_"), size=rng.integers(1, 8)))  # noqa: E731
    call = lambda: f"{word()}({word()}[{word()}][{word()}], {{{word()}: ({word()} + {word()})}})"  # noqa: E731
    lines = [f"{word()} = " + " + ".join(call() for _ in range(rng.integers(1, 3))) + ";" if rng.random() < 0.5
             else f"    {word()} {word()}.{word()} {word()};" for _ in range(300)]
    code = "\n".join(lines) + "\nx = [\n  1,\n]\n"
    names = [name for name, _ in proposed_names(code)]
    assert {"balance:()", "balance:[]", "balance:{}"} <= set(names)
    # The closer never opens: no ")(" pair; two characters merely once per line in one order ("=" and ";")
    # are no pair either; nor are two letters.
    assert "balance:)(" not in names and "balance:=;" not in names
    assert not [n for n in names if n.startswith("balance:") and n[-2:].isalpha()]


def test_proposals_are_capped_names_find_takes_and_values_it_computes():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefghij ,.;:-!?()\n"), size=20_000))
    proposed = propose_features(text)
    assert len(proposed) == ATLAS_PROPOSED_FEATURES
    assert len(propose_features(text, cap=3)) == 3 and propose_features(text, cap=0) == {}
    for name, values in proposed.items():
        np.testing.assert_array_equal(values, feature_values(name, text))
    assert any(n.startswith("since:") for n in proposed) and any(n.startswith("count:") for n in proposed)
    assert not [n for n in proposed if n.endswith("\n")]        # the newline's distance is `column`


def test_since_counts_characters_since_the_last_one():
    np.testing.assert_array_equal(feature_values("since: ", "ab a  c"), [1, 2, 0, 1, 0, 0, 1])
    assert feature_values("since:x", "").shape == (0,)
    with pytest.raises(Exception, match="since:CHAR needs exactly one character"):
        feature_values("since:ab", "abc")


def test_pairs_are_detected_on_a_bounded_number_of_lines():
    from charlstm.inspection import proposals

    text = "".join(line + "\n" for line in tasks.generate("counter", 400, 0))
    assert proposals._pairs(np.frombuffer(text.encode("utf-32-le"), "<u4"), [ord("a"), ord("b")]) == [(97, 98)]
    cut = text.split("\n")
    late = "\n".join(["x"] * proposals.PAIR_LINES + cut)
    assert "balance:ab" not in [n for n, _ in proposed_names(late)]     # the pairs after the lines looked at
