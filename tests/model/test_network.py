"""model/network.py: the explicit step (the Stepper) is the fused module's math, gate for gate, and an
edit pins a unit of the state it carries."""

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


LSTM = ModelConfig(vocab_size=5, hidden_size=8, num_layers=2)
GRU = ModelConfig(vocab_size=5, cell="gru", hidden_size=8, num_layers=2)


@pytest.mark.parametrize("config, vector", [(LSTM, "cell"), (GRU, "hidden")], ids=["lstm", "gru"])
def test_edits_pin_the_cell_of_an_lstm_and_the_hidden_state_of_a_gru(config, vector):
    """An edit (layer, unit) → value holds the unit at the value after every update, in what is
    recorded and in the state carried to the next step; its neighbours move freely."""
    torch.manual_seed(0)
    stepper = CharModel(config).stepper()
    state = stepper.init_state(3)
    edits = {(1, 5): 0.75, (0, 1): 0.0}                         # clamp 2:5=0.75, ablate 1:1
    for char in (0, 3, 1, 4):
        _, state, gates = stepper.step(torch.full((3,), char), state, record=True, edits=edits)
        assert torch.all(gates[1][vector][:, 5] == 0.75) and torch.all(gates[0][vector][:, 1] == 0.0)
        assert not torch.all(gates[1][vector][:, 4] == 0.75)        # the neighbours move freely
        carried = state[-1]                                          # the cell state (LSTM), the hidden state (GRU)
        assert torch.all(carried[1, :, 5] == 0.75) and torch.all(carried[0, :, 1] == 0.0)
