"""model/loss.py: the output layer's cross-entropy taken in pieces of positions is the whole one —
the same loss and the same gradients of the features, the head's weight and its bias — and passes
gradcheck in float64; a piece covering every position is F.cross_entropy itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from charlstm.model.loss import _PiecewiseCrossEntropy, cross_entropy


def _case(dtype=torch.float32):
    torch.manual_seed(0)
    head = nn.Linear(8, 50).to(dtype)
    features = torch.randn(3, 7, 8, dtype=dtype, requires_grad=True)
    targets = torch.randint(50, (3, 7))
    return head, features, targets


def _grads(head, features, targets, piece):
    features.grad = None
    head.zero_grad()
    loss = cross_entropy(features, head, targets, piece)
    loss.backward()
    return loss.detach(), features.grad.clone(), head.weight.grad.clone(), head.bias.grad.clone()


@pytest.mark.parametrize("piece", [1, 4, 20])
def test_pieces_give_the_whole_loss_and_its_gradients(piece):
    head, features, targets = _case()
    whole = _grads(head, features, targets, 21)
    for got, want in zip(_grads(head, features, targets, piece), whole):
        torch.testing.assert_close(got, want)
    reference = F.cross_entropy(head(features).reshape(-1, 50), targets.reshape(-1))
    assert whole[0].item() == reference.item()                  # all positions in one piece: the very same op


def test_the_pieces_pass_gradcheck():
    head, features, targets = _case(torch.float64)
    weight = head.weight.detach().clone().requires_grad_()
    bias = head.bias.detach().clone().requires_grad_()
    loss = lambda f, w, b: _PiecewiseCrossEntropy.apply(f.reshape(-1, 8), w, b, targets.reshape(-1), 5)  # noqa: E731
    assert torch.autograd.gradcheck(loss, (features, weight, bias))
