"""model/growth.py: a model's vocabulary grown — the base's rows kept exactly, the new rows started as
asked (the mean or zeros for the embedding; zero output weights with the mean bias or a bias from each
character's frequency), and a layout it does not know refused in one line rather than guessed at."""

from __future__ import annotations

import math

import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.errors import ConfigError
from charlstm.model.growth import EMBEDDING, HEAD_BIAS, HEAD_WEIGHT, grown_state
from charlstm.model.network import CharModel


def states(old: int = 5, new: int = 8):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=old, hidden_size=6, embedding_size=3, num_layers=1)
    base = CharModel(config).state_dict()
    fresh = CharModel(ModelConfig(**{**config.to_dict(), "vocab_size": new})).state_dict()
    return base, fresh


@pytest.mark.parametrize("embedding, head", [("mean", "frequency"), ("zero", "mean"), ("fresh", "fresh")])
def test_the_base_rows_are_kept_and_the_new_ones_start_as_asked(embedding, head):
    base, fresh = states()
    counts = torch.tensor([10, 20, 0, 5, 40, 80, 5, 0])
    grown = grown_state(base, fresh, counts, embedding=embedding, head=head)
    for name, tensor in base.items():
        assert torch.equal(grown[name][: len(tensor)], tensor), name
    new = grown[EMBEDDING][5:]
    want = {"mean": base[EMBEDDING].mean(0).expand(3, -1), "zero": torch.zeros(3, 3), "fresh": fresh[EMBEDDING][5:]}
    assert torch.equal(new, want[embedding])
    if head == "fresh":
        assert torch.equal(grown[HEAD_WEIGHT][5:], fresh[HEAD_WEIGHT][5:])
        assert torch.equal(grown[HEAD_BIAS][5:], fresh[HEAD_BIAS][5:])
        return
    assert not grown[HEAD_WEIGHT][5:].any()
    bias = grown[HEAD_BIAS][5:]
    if head == "mean":
        assert torch.allclose(bias, base[HEAD_BIAS].mean().expand(3))
    else:  # log frequency plus the median shift of the base characters the text has (ids 0, 1, 3, 4)
        shared = [0, 1, 3, 4]
        shift = torch.tensor([base[HEAD_BIAS][i].item() - math.log(counts[i] / 160) for i in shared]).median()
        want = torch.tensor([math.log(80 / 160), math.log(5 / 160), math.log(0.5 / 160)]) + shift
        torch.testing.assert_close(bias, want.float())


def test_without_a_shared_character_the_frequency_rows_take_the_mean_bias():
    base, fresh = states()
    grown = grown_state(base, fresh, torch.tensor([0, 0, 0, 0, 0, 7, 3, 1]))
    assert torch.allclose(grown[HEAD_BIAS][5:], base[HEAD_BIAS].mean().expand(3))


def test_a_layout_it_does_not_know_is_one_line():
    base, fresh = states()
    wider = CharModel(ModelConfig(vocab_size=8, hidden_size=7, embedding_size=3, num_layers=1)).state_dict()
    with pytest.raises(ConfigError, match=r"cannot grow this model's vocabulary: its rnn.weight_ih_l0 is \(24, 3\)"):
        grown_state(base, wider)
    with pytest.raises(ConfigError, match="cannot grow this model's vocabulary: extra has no place in it"):
        grown_state({**base, "extra": torch.zeros(5, 2)}, fresh)
    smaller = CharModel(ModelConfig(vocab_size=3, hidden_size=6, embedding_size=3, num_layers=1)).state_dict()
    with pytest.raises(ConfigError, match="cannot grow"):
        grown_state(base, smaller)
