"""The training loss of the output layer: the cross-entropy of the next character, taken in
pieces of positions when the logits of a whole batch would not fit in memory.

`cross_entropy(features, head, targets, piece)` is F.cross_entropy(head(features), targets) — the
very same computation when `piece` covers every position. Below that, no (positions, V) tensor of
the whole batch is ever held: the forward keeps only each position's log-sum-exp, and the backward
recomputes the logits of one piece at a time, turns them into softmax − one-hot in place, and adds
that piece's share to the gradients of the features and of the head. Imports no data, click, rich
or tqdm.

Shape legend: N positions, H hidden, V vocab.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def cross_entropy(features: torch.Tensor, head: nn.Linear, targets: torch.Tensor, piece: int) -> torch.Tensor:
    """The mean cross-entropy (nats, float32) of `targets` (..., ) under head(features) (..., H),
    its logits made at most `piece` positions at a time."""
    H, V = features.shape[-1], head.out_features
    features, targets = features.reshape(-1, H), targets.reshape(-1)                  # (N, H), (N,)
    if piece >= len(targets):
        return F.cross_entropy(head(features).reshape(-1, V).float(), targets)
    return _PiecewiseCrossEntropy.apply(features, head.weight, head.bias, targets, piece)


class _PiecewiseCrossEntropy(torch.autograd.Function):
    """mean over N of logsumexp(z_n) − z_n[y_n], z = features @ Wᵀ + b, `piece` rows of z at a time."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, features, weight, bias, targets, piece):
        N = len(targets)
        lse = torch.empty(N, dtype=features.dtype, device=features.device)             # (N,)
        total = features.new_zeros(())
        for start in range(0, N, piece):
            rows = slice(start, start + piece)
            logits = torch.addmm(bias, features[rows], weight.t())                    # (n, V)
            lse[rows] = torch.logsumexp(logits, dim=1)
            total += (lse[rows] - logits.gather(1, targets[rows, None])[:, 0]).sum()
            del logits
        ctx.save_for_backward(features, weight, bias, targets, lse)
        ctx.piece = piece
        return total / N

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        features, weight, bias, targets, lse = ctx.saved_tensors
        N, piece = len(targets), ctx.piece
        grad_features = torch.empty_like(features)
        grad_weight, grad_bias = torch.zeros_like(weight), torch.zeros_like(bias)
        scale = grad / N
        for start in range(0, N, piece):
            rows = slice(start, start + piece)
            p = torch.addmm(bias, features[rows], weight.t())                         # (n, V) logits …
            p.sub_(lse[rows, None]).exp_()                                             # … softmax …
            p[torch.arange(len(p), device=p.device), targets[rows]] -= 1.0            # … − one-hot
            p.mul_(scale)
            torch.mm(p, weight, out=grad_features[rows])                               # (n, H)
            grad_weight.addmm_(p.t(), features[rows])                                  # (V, H)
            grad_bias += p.sum(dim=0)
            del p
        return grad_features, grad_weight, grad_bias, None, None
