"""The explicit step is the fused module's math, gate for gate."""

from __future__ import annotations

import pytest
import torch

from charlstm.model.network import CharModel
from charlstm.config import ModelConfig


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole", "coupled"])
def test_explicit_step_matches_fused_forward(cell):
    torch.manual_seed(0)
    model = CharModel(ModelConfig(vocab_size=30, cell=cell, embedding_size=12, hidden_size=24, num_layers=3)).eval()
    ids = torch.randint(0, 30, (4, 25))
    logits, (h_last, *_rest) = model(ids)
    stepper = model.stepper()
    state = stepper.init_state(4)
    step_logits, hidden = [], []
    for t in range(ids.shape[1]):
        out, state, gates = stepper.step(ids[:, t], state, record=True)
        step_logits.append(out)
        hidden.append(gates[-1]["hidden"])
    torch.testing.assert_close(torch.stack(step_logits, 1), logits)
    torch.testing.assert_close(state[0], h_last)
    # The top layer's recorded hidden state is what the head reads.
    torch.testing.assert_close(model.head(torch.stack(hidden, 1)), logits)


def test_lstm_gates_are_consistent():
    torch.manual_seed(1)
    model = CharModel(ModelConfig(vocab_size=10, hidden_size=16, embedding_size=8, num_layers=2)).eval()
    stepper = model.stepper()
    state = stepper.init_state(2)
    prev_c = state[1][0]
    _, state, gates = stepper.step(torch.tensor([1, 2]), state, record=True)
    g = gates[0]
    for name in ("input", "forget", "output"):
        assert ((g[name] > 0) & (g[name] < 1)).all()
    torch.testing.assert_close(g["cell"], g["forget"] * prev_c + g["input"] * g["candidate"])
    torch.testing.assert_close(g["hidden"], g["output"] * torch.tanh(g["cell"]))


def test_edits_pin_a_unit():
    torch.manual_seed(2)
    model = CharModel(ModelConfig(vocab_size=10, hidden_size=8, embedding_size=4, num_layers=2)).eval()
    stepper = model.stepper()
    state = stepper.init_state(1)
    for t in range(5):
        _, state, gates = stepper.step(torch.tensor([t]), state, record=True, edits={(1, 3): 0.75})
        assert gates[1]["cell"][0, 3].item() == 0.75
    assert state[1][1, 0, 3].item() == 0.75
