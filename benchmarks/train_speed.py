"""Training throughput: charlstm's real training loop vs the plain reference loop, 2×256 and 2×512.

    python benchmarks/train_speed.py [--steps 12] [--rounds 2]

Prints chars/s, achieved GFLOP/s and the fraction of the fp32 matmul roofline measured in this
process. The two loops are interleaved round by round and each keeps its best round.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from common import (
    ReferenceLSTM,
    load_tiny_shakespeare,
    lstm_train_flops_per_char,
    machine,
    matmul_roofline,
    random_windows,
)

from charlstm.config import ModelConfig, TrainConfig
from charlstm.training.loop import train

EMBEDDING, SEQ_LEN, REF_BATCH = 64, 100, 64


def reference_rate(ids: torch.Tensor, vocab: int, hidden: int, steps: int) -> float:
    """Random windows, zero initial state, Adam(lr=2e-3): what most tutorials do."""
    torch.manual_seed(0)
    model = ReferenceLSTM(vocab, EMBEDDING, hidden, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)

    def step():
        x, y = random_windows(ids, REF_BATCH, SEQ_LEN, gen)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return REF_BATCH * SEQ_LEN * steps / (time.perf_counter() - t)


def charlstm_rate(text: str, hidden: int, steps: int, batch_size: int) -> float:
    """The real `charlstm.train` loop (data, TBPTT, AdamW, clipping), timed between step events."""
    stamps: list[float] = []
    warmup = 2

    def on_event(event):
        if event.kind == "step":
            stamps.append(time.perf_counter())

    config = TrainConfig(batch_size=batch_size, max_steps=steps + warmup, time_budget=None, eval_every=10**9,
                         eval_seconds=None, preview_chars=0, val_fraction=0.1)
    with tempfile.TemporaryDirectory() as out:
        train(text, f"{out}/run", ModelConfig(vocab_size=1, hidden_size=hidden, embedding_size=EMBEDDING), config,
              on_event=on_event)
    chars = batch_size * config.seq_len
    return chars * (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args()

    text = load_tiny_shakespeare()
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text[:200_000]])
    vocab = len(chars)
    print(f"machine: {machine()}")
    roofline = matmul_roofline()
    print(f"fp32 matmul roofline (1024³ GEMM, best of 1.5 s): {roofline:.1f} GFLOP/s\n")
    batch = TrainConfig.batch_size
    print(f"{'model':8} {'loop':34} {'chars/s':>9} {'GFLOP/s':>8} {'roofline':>9} {'vs ref':>7}")
    for hidden in [int(h) for h in args.sizes.split(",")]:
        flops = lstm_train_flops_per_char(EMBEDDING, hidden, 2, vocab)
        ref, ours = 0.0, 0.0
        for _ in range(args.rounds):
            ref = max(ref, reference_rate(ids, vocab, hidden, args.steps))
            ours = max(ours, charlstm_rate(text, hidden, args.steps, batch))
        for name, rate in ((f"reference (B={REF_BATCH}, Adam, windows)", ref), (f"charlstm train (B={batch}, TBPTT)", ours)):
            gflops = rate * flops / 1e9
            print(f"2x{hidden:<6} {name:34} {rate:9.0f} {gflops:8.1f} {gflops / roofline:8.0%} {rate / ref:6.2f}x")


if __name__ == "__main__":
    main()
