"""model/growth.py: a model's vocabulary grown — the base's rows kept exactly, the new rows started as
asked (the mean or zeros for the embedding; zero output weights with the mean bias or a bias from each
character's frequency), and a layout it does not know refused in one line rather than guessed at."""

from __future__ import annotations

import pytest
import torch

from charlstm.config import ModelConfig
from charlstm.errors import ConfigError
from charlstm.model.growth import EMBEDDING, HEAD_BIAS, HEAD_WEIGHT, frequency_biases, grown_state
from charlstm.model.network import CharModel


def states(old: int = 5, new: int = 8):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=old, hidden_size=6, embedding_size=3, num_layers=1)
    base = CharModel(config).state_dict()
    fresh = CharModel(ModelConfig(**{**config.to_dict(), "vocab_size": new})).state_dict()
    return base, fresh


@pytest.mark.parametrize("embedding, head", [("spread", "frequency"), ("mean", "frequency"), ("zero", "mean"),
                                             ("fresh", "fresh")])
def test_the_base_rows_are_kept_and_the_new_ones_start_as_asked(embedding, head):
    base, fresh = states()
    torch.manual_seed(7)
    grown = grown_state(base, fresh, embedding=embedding, head=head)
    for name, tensor in base.items():
        assert torch.equal(grown[name][: len(tensor)], tensor), name
    new = grown[EMBEDDING][5:]
    torch.manual_seed(7)
    table = base[EMBEDDING]
    want = {"spread": table.mean(0) + table.std(0, correction=0) * torch.randn(3, 3),
            "mean": table.mean(0).expand(3, -1), "zero": torch.zeros(3, 3), "fresh": fresh[EMBEDDING][5:]}
    assert torch.equal(new, want[embedding])
    if head == "fresh":
        assert torch.equal(grown[HEAD_WEIGHT][5:], fresh[HEAD_WEIGHT][5:])
        assert torch.equal(grown[HEAD_BIAS][5:], fresh[HEAD_BIAS][5:])
    else:  # "frequency" starts as "mean"; its biases come from frequency_biases
        assert not grown[HEAD_WEIGHT][5:].any()
        assert torch.allclose(grown[HEAD_BIAS][5:], base[HEAD_BIAS].mean().expand(3))


def test_frequency_biases_give_each_new_character_its_share_of_the_text():
    """Where the base's characters' logits sum to the same Z everywhere, zero new weights and these
    biases make every new character's probability its share of the text, exactly (the base's
    characters keep their proportions among the rest)."""
    counts = torch.tensor([10, 20, 0, 5, 40, 80, 5, 0])                # ids 5, 6, 7 are new (7: in the text only later)
    log_z = 2.5
    biases = frequency_biases(counts, torch.full((30,), log_z), 5)
    base_logits = torch.log(torch.tensor([0.1, 0.3, 0.2, 0.15, 0.25])) + log_z   # logsumexp = log_z
    p = torch.softmax(torch.cat([base_logits, biases]), 0)
    share = torch.tensor([80, 5, 0.5]) / 160
    torch.testing.assert_close(p[5:], share, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(p[:5] / p[:5].sum(), torch.softmax(base_logits, 0))
    assert frequency_biases(torch.tensor([0, 0, 0, 0, 0, 7, 3, 1]), torch.zeros(4), 5) is None   # no base character
    assert frequency_biases(counts, torch.zeros(0), 5) is None


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
