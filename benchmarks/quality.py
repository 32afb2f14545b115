"""Validation loss per CPU-minute on Karpathy's tiny-shakespeare (90/10 split).

    python benchmarks/quality.py [--budgets 1,3,5]

Three contenders, the same machine, split and wall-clock budgets (minutes of training):
* charlstm: `charlstm.train` with its defaults, one run per budget (its schedule fits the budget;
  its own periodic evaluations count against the budget);
* reference: the plain 2×256 LSTM of common.py, random windows of 100, batch 64, Adam 2e-3,
  evaluated at each budget mark of a single run (evaluation time not counted);
* nanoGPT-style character transformer with the published CPU settings for shakespeare_char
  (4 layers, 4 heads, 128 embedding, context 64, batch 12, lr 1e-3 → 1e-4 over 2000 iterations,
  warmup 100, no dropout), evaluated at each budget mark of a single run.
The LSTMs are scored on the whole validation text as contiguous streams with carried state, and
again under nanoGPT's own protocol: every non-overlapping 256-character window of the validation
text read from an empty state, the loss averaged over every position (nanoGPT's published 1.4697
for shakespeare_char was measured that way, on windows of 256); the transformer on every
non-overlapping 64-character block (its own context length).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from common import ReferenceLSTM, load_tiny_shakespeare, machine, random_windows

from charlstm.config import ModelConfig, TrainConfig
from charlstm.data.vocab import Vocab
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from charlstm.training.validation import evaluate

LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------- transformer


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width, bias=False), nn.LayerNorm(width, bias=False)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width, bias=False), nn.GELU(), nn.Linear(4 * width, width, bias=False))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, h, T, C/h)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    """A small GPT over characters (pre-norm blocks, learned positions, tied input/output embedding)."""

    def __init__(self, vocab: int, context: int = 64, width: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width, bias=False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.tok.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def nanogpt_lr(it: int) -> float:
    warmup, decay_iters, peak, floor = 100, 2000, 1e-3, 1e-4
    if it < warmup:
        return peak * (it + 1) / (warmup + 1)
    if it > decay_iters:
        return floor
    ratio = (it - warmup) / (decay_iters - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (peak - floor)


@torch.inference_mode()
def transformer_val_loss(model: CharTransformer, val: torch.Tensor, context: int = 64) -> float:
    model.eval()
    n = (len(val) - 1) // context
    x = val[: n * context].view(n, context)
    y = val[1 : n * context + 1].view(n, context)
    total = 0.0
    for i in range(0, n, 256):
        logits = model(x[i : i + 256])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i : i + 256].reshape(-1), reduction="sum").item()
    model.train()
    return total / (n * context)


def run_transformer(train_ids, val_ids, vocab, marks):
    torch.manual_seed(1337)
    model = CharTransformer(vocab)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(0)
    return _timed_loop(model, opt, train_ids, lambda: transformer_val_loss(model, val_ids), marks, gen, batch=12,
                       seq_len=64, lr_at=nanogpt_lr, clip=1.0, forward=lambda x: model(x))


# ------------------------------------------------------------------------------------- reference LSTM


def run_reference(train_ids, val_ids, vocab, marks):
    torch.manual_seed(1337)
    model = ReferenceLSTM(vocab, 64, 256, 2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    val_np = val_ids.numpy()
    def score():
        carried = evaluate(model, val_np, 100, torch.device("cpu")) * LN2
        windowed = windowed_loss(model, val_np)
        model.train()
        return carried, windowed

    return _timed_loop(model, opt, train_ids, score, marks, gen, batch=64, seq_len=100, lr_at=None, clip=None,
                       forward=lambda x: model(x)[0])


def _timed_loop(model, opt, train_ids, score, marks, gen, batch, seq_len, lr_at, clip, forward):
    """Train on random windows; at each budget mark (training seconds) record the validation loss."""
    results, it, spent = [], 0, 0.0
    marks = sorted(marks)
    while marks:
        t = time.perf_counter()
        x, y = random_windows(train_ids, batch, seq_len, gen)
        if lr_at:
            for g in opt.param_groups:
                g["lr"] = lr_at(it)
        logits = forward(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        it += 1
        spent += time.perf_counter() - t
        if spent >= marks[0]:
            results.append((marks.pop(0), score(), it))
    return results


@torch.inference_mode()
def windowed_loss(model, val_ids: np.ndarray, window: int = 256) -> float:
    """nanoGPT's protocol: the mean loss over every position of every non-overlapping `window`-character
    block of the validation text, each read from an empty state (no state carried between blocks)."""
    model.eval()
    ids = torch.as_tensor(np.asarray(val_ids, dtype=np.int64))
    n = (len(ids) - 1) // window
    x, y = ids[: n * window].view(n, window), ids[1 : n * window + 1].view(n, window)   # (n, window) each
    total = 0.0
    for i in range(0, n, 64):
        logits, _ = model(x[i : i + 64])                                                # (b, window, V)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i : i + 64].reshape(-1), reduction="sum").item()
    return total / (n * window)


# ----------------------------------------------------------------------------------------- charlstm


def run_charlstm(text: str, val_ids: np.ndarray, budget_s: float, model_overrides: dict, train_overrides: dict):
    with tempfile.TemporaryDirectory() as out:
        result = train(text, f"{out}/run", ModelConfig(vocab_size=1, **model_overrides),
                       TrainConfig(**{"time_budget": budget_s, "val_fraction": 0.1, "preview_chars": 0, **train_overrides}))
        loaded = ckpt.load(f"{out}/run/{ckpt.BEST}")
        model = loaded.model()
        loss = evaluate(model, val_ids, TrainConfig.seq_len, torch.device("cpu")) * LN2
        return (loss, windowed_loss(model, val_ids)), result.step


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="1,3,5", help="minutes, comma-separated")
    parser.add_argument("--only", default="charlstm,reference,transformer")
    parser.add_argument("--model", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="try charlstm with other ModelConfig values, e.g. hidden_size=384")
    parser.add_argument("--train", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="try charlstm with other TrainConfig values, e.g. batch_size=32")
    args = parser.parse_args()
    model_overrides = {k: _number(v) for k, v in (item.split("=", 1) for item in args.model)}
    train_overrides = {k: _number(v) for k, v in (item.split("=", 1) for item in args.train)}
    budgets = [float(b) for b in args.budgets.split(",")]
    text = load_tiny_shakespeare()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text).astype(np.int64)
    n_train = int(len(ids) * 0.9)
    train_ids, val_ids = torch.from_numpy(ids[:n_train]), torch.from_numpy(ids[n_train:])
    print(f"machine: {machine()}")
    print(f"tiny-shakespeare: {len(ids):,} characters, {len(vocab)} distinct; validation = last {len(val_ids):,}\n")
    rows: dict[str, dict[float, tuple[float, int]]] = {}
    only = args.only.split(",")
    if "charlstm" in only:
        name = "charlstm " + (" ".join(args.model + args.train) or "defaults")
        rows[name] = {}
        for b in budgets:
            loss, steps = run_charlstm(text, ids[n_train:], b * 60, model_overrides, train_overrides)
            rows[name][b] = (loss, steps)
            print(f"  charlstm, {b:g} min: {loss[0]:.4f} nats carried, {loss[1]:.4f} windowed ({steps} steps)",
                  flush=True)
    if "reference" in only:
        rows["reference 2x256 LSTM"] = {m / 60: (l, it) for m, l, it in run_reference(train_ids, val_ids, len(vocab), [b * 60 for b in budgets])}
        print("  reference done", flush=True)
    if "transformer" in only:
        rows["nanoGPT-style transformer"] = {m / 60: (l, it) for m, l, it in run_transformer(train_ids, val_ids, len(vocab), [b * 60 for b in budgets])}
        print("  transformer done", flush=True)
    print()
    header = "".join(f"{f'{b:g} min':>20}" for b in budgets)
    print(f"{'validation loss':40}{header}")
    for name, by_budget in rows.items():
        protocols = ("carried", "windowed") if isinstance(next(iter(by_budget.values()))[0], tuple) else ("",)
        for k, protocol in enumerate(protocols):
            label = f"{name}, {protocol}" if protocol else name
            losses = [by_budget[b][0][k] if protocol else by_budget[b][0] for b in budgets]
            print(f"{label:40}" + "".join(f"{loss:8.3f} nats {loss / LN2:5.3f} b" for loss in losses))
    print("\n(nats per character; b = bits per character; lower is better. carried: the validation text as")
    print("contiguous streams, state carried; windowed: nanoGPT's protocol, 256-character windows from an empty state)")


if __name__ == "__main__":
    main()
