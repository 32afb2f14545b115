"""model/cells.py, the explicit LSTM variants: hand-derived backward checked numerically, pinned to
nn.LSTM, and their defining identities (zero peepholes = standard cell; coupled: i = 1 − f exactly)."""

from __future__ import annotations

import json

import pytest
import torch

from charlstm.model.cells import CELL_MATH, GATES, ExplicitLSTM, lstm_step, recurrence
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.inspection.tracing import trace

from conftest import TINY, run_cli


@pytest.mark.parametrize("kind", sorted(GATES))
def test_hand_derived_backward_passes_gradcheck(kind):
    torch.manual_seed(0)
    T, B, H = 5, 3, 4
    G = GATES[kind]
    args = [torch.randn(T, B, G * H, dtype=torch.float64, requires_grad=True),    # xa
            torch.randn(B, H, dtype=torch.float64, requires_grad=True),           # h0
            torch.randn(B, H, dtype=torch.float64, requires_grad=True),           # c0
            (0.5 * torch.randn(G * H, H, dtype=torch.float64)).requires_grad_()]  # w_hh
    peep = (0.5 * torch.randn(3, H, dtype=torch.float64)).requires_grad_() if kind == "peephole" else None
    assert torch.autograd.gradcheck(lambda *a: recurrence(kind, *a, peep), args, eps=1e-6, atol=1e-6)
    if peep is not None:  # and the peephole weights' own gradient
        assert torch.autograd.gradcheck(lambda p: recurrence(kind, *[a.detach() for a in args], p), [peep])


def gate_step(kind: str, a: torch.Tensor, c_prev: torch.Tensor, peep: torch.Tensor | None = None):
    """The reference: one time step of one layer, preactivations a (B, G·H) and c' (B, H) → i, f, g, o, c, h."""
    step_math = CELL_MATH[kind]
    i, f, g, o, c, _, h = lstm_step(step_math, a, c_prev, peep, None)
    return step_math.input_gate(i, f), f, g, o, c, h


@pytest.mark.parametrize("kind", sorted(GATES))
def test_backward_equals_autograd_through_the_step(kind):
    """Gradients of the custom backward = autograd through the plain `gate_step` loop (float32, 2 layers)."""
    torch.manual_seed(1)
    rnn = ExplicitLSTM(kind, 6, 8, num_layers=2)
    x, target = torch.randn(3, 7, 6), torch.randn(3, 7, 8)

    def by_step():
        h = [torch.zeros(3, 8)] * 2
        c = [torch.zeros(3, 8)] * 2
        outs = []
        for t in range(7):
            inp = x[:, t]
            for k in range(2):
                a = rnn._input_side(k, inp) + h[k] @ getattr(rnn, f"weight_hh_l{k}").t()
                *_, c[k], h[k] = gate_step(kind, a, c[k], rnn.peephole(k))
                inp = h[k]
            outs.append(inp)
        return torch.stack(outs, 1), c[1]

    results = []
    for forward in (lambda: (lambda out, s: (out, s[1][1]))(*rnn(x)), by_step):
        rnn.zero_grad()
        out, c_last = forward()
        ((out - target) ** 2).sum().add(c_last.sum()).backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in rnn.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for name in results[0][1]:
        torch.testing.assert_close(results[0][1][name], results[1][1][name], msg=name)


def test_explicit_standard_cell_equals_nn_lstm_forward_and_gradients():
    torch.manual_seed(2)
    fused = torch.nn.LSTM(5, 9, num_layers=3, batch_first=True)
    explicit = ExplicitLSTM("lstm", 5, 9, num_layers=3)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(4, 11, 5)
    state = (torch.randn(3, 4, 9), torch.randn(3, 4, 9))
    outs = []
    for module in (fused, explicit):
        module.zero_grad()
        out, (h, c) = module(x, state)
        (out.pow(2).sum() + h.sum() + 2 * c.sum()).backward()
        outs.append((out, h, c, {n: p.grad for n, p in module.named_parameters()}))
    for a, b in zip(outs[0][:3], outs[1][:3]):
        torch.testing.assert_close(a, b)
    for name, grad in outs[0][3].items():
        torch.testing.assert_close(outs[1][3][name], grad, msg=name)


def test_peephole_cell_with_zero_peepholes_equals_the_standard_cell():
    torch.manual_seed(3)
    standard = ExplicitLSTM("lstm", 5, 7, num_layers=2)
    peephole = ExplicitLSTM("peephole", 5, 7, num_layers=2)
    peephole.load_state_dict({**standard.state_dict(), "peephole_l0": torch.zeros(3, 7), "peephole_l1": torch.zeros(3, 7)})
    x = torch.randn(2, 13, 5)
    torch.testing.assert_close(peephole(x)[0], standard(x)[0])  # equal up to float rounding (vectorised sigmoid)
    # and with nonzero peepholes it is a different function
    with torch.no_grad():
        peephole.peephole_l0.fill_(0.5)
    assert not torch.allclose(peephole(x)[0], standard(x)[0])


def test_coupled_cell_obeys_input_equals_one_minus_forget_exactly():
    torch.manual_seed(4)
    vocab = Vocab(list("abc xyz\n"))
    model = CharModel(ModelConfig(vocab_size=len(vocab), cell="coupled", embedding_size=4, hidden_size=10, num_layers=2))
    tr = trace(model, vocab, "abc zyx\nxx a" * 5)
    stepper = model.stepper()
    state = stepper.init_state(1)
    for layer in tr.layers:
        assert torch.equal(layer["input"], 1.0 - layer["forget"])
    for ch in "abc z":
        prev_c = state[1]
        _, state, rec = stepper.step(torch.tensor([vocab.index[ch]]), state, record=True)
        for k, g in enumerate(rec):
            assert torch.equal(g["input"], 1.0 - g["forget"])
            torch.testing.assert_close(g["cell"], g["forget"] * prev_c[k] + (1 - g["forget"]) * g["candidate"])
    # a coupled cell has a quarter fewer recurrent weights than a standard one of the same width
    assert model.rnn.weight_hh_l0.shape == (3 * 10, 10)


def test_forget_bias_option_sets_the_forget_gate_of_every_lstm_like_cell():
    for cell, block in (("lstm", 1), ("peephole", 1), ("coupled", 0)):
        model = CharModel(ModelConfig(vocab_size=5, cell=cell, hidden_size=8, num_layers=2, forget_bias=1.0))
        for k in range(2):
            total = getattr(model.rnn, f"bias_ih_l{k}") + getattr(model.rnn, f"bias_hh_l{k}")
            torch.testing.assert_close(total[block * 8 : (block + 1) * 8], torch.ones(8))
            assert not torch.allclose(total[(1 - block) * 8 : (2 - block) * 8], torch.ones(8))   # only the forget gate


@pytest.mark.parametrize("cell", ["peephole", "coupled"])
def test_variant_trains_samples_and_inspects_from_the_cli(cell, tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:30_000], encoding="utf-8")
    out = tmp_path / cell
    trained = run_cli("train", str(corpus), "--out", str(out), "--cell", cell, "--max-steps", "60",
                      "--eval-every", "30", "--log-every", "10", *TINY)
    assert trained.exit_code == 0, trained.output
    losses = [json.loads(line)["train_loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if "train_loss" in line]
    assert losses[-1] < losses[0] - 0.5            # it learns: from ~ln(V) ≈ 4 nats well down
    sampled = run_cli("sample", str(out), "--length", "120", "--seed", "3", "--prime", "ROMEO:")
    assert sampled.exit_code == 0 and sampled.stdout.startswith("ROMEO:") and len(sampled.stdout) >= 126
    dumped = run_cli("inspect", str(out), "--text", "To be, or not", "--layer", "1", "--neuron", "0-2",
                     "--all-vectors", "--format", "json")
    assert dumped.exit_code == 0, dumped.output
    traces = json.loads(dumped.stdout)["traces"]
    assert {"L1.input[0]", "L1.forget[1]", "L1.candidate[2]", "L1.output[0]", "L1.cell[0]", "L1.hidden[2]"} <= set(traces)
    if cell == "coupled":
        for u in range(3):
            assert traces[f"L1.input[{u}]"] == pytest.approx([1 - f for f in traces[f"L1.forget[{u}]"]], abs=2.1e-6)  # 6-decimal JSON
    clamped = run_cli("sample", str(out), "--length", "40", "--seed", "3", "--clamp", "2:5=3")
    assert clamped.exit_code == 0 and "L2.cell[5] = 3" in clamped.stderr
