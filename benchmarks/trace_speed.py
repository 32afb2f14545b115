"""Tracing throughput: every gate and state of every layer, per character, for inspection.

    python benchmarks/trace_speed.py [--chars 100000] [--sizes 256,512]

Compares `charlstm.trace` (what `charlstm inspect` runs) with the naive route — the explicit step
called once per character, recording everything — on the same text and weights, and checks that
both give the same numbers.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import load_tiny_shakespeare, machine

import charlstm
from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel


@torch.inference_mode()
def naive_trace(model: CharModel, vocab: Vocab, text: str) -> dict[str, torch.Tensor]:
    stepper = model.stepper()
    state = stepper.init_state(1)
    ids = torch.as_tensor(vocab.encode(text).astype("int64"))
    cells = []
    for t in range(len(text)):
        _, state, gates = stepper.step(ids[t : t + 1], state, record=True)
        cells.append(gates[-1]["cell"] if "cell" in gates[-1] else gates[-1]["hidden"])
    return {"last": torch.cat(cells)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=100_000)
    parser.add_argument("--naive-chars", type=int, default=5_000, help="the naive route is timed on a prefix")
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args()
    text = load_tiny_shakespeare()[: args.chars]
    vocab = Vocab.from_text(load_tiny_shakespeare())
    print(f"machine: {machine()}\n")
    print(f"{'model':7} {'chars':>8} {'charlstm.trace':>15} {'chars/s':>9} {'naive step':>11} {'speed-up':>9} {'max |diff|':>11}")
    for hidden in [int(h) for h in args.sizes.split(",")]:
        torch.manual_seed(0)
        model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=hidden)).eval()
        t = time.perf_counter()
        full = charlstm.trace(model, vocab, text)
        fast_s = time.perf_counter() - t
        prefix = text[: args.naive_chars]
        t = time.perf_counter()
        naive = naive_trace(model, vocab, prefix)
        naive_rate = len(prefix) / (time.perf_counter() - t)
        last = full.layers[-1]["cell"] if "cell" in full.layers[-1] else full.layers[-1]["hidden"]
        diff = (last[: len(prefix)] - naive["last"]).abs().max().item()
        rate = len(text) / fast_s
        print(f"2x{hidden:<5} {len(text):8d} {fast_s:14.2f}s {rate:9.0f} {naive_rate:11.0f} {rate / naive_rate:8.1f}x {diff:11.2e}")
    print("\nall six vectors (input, forget, candidate, output, cell, hidden) of every layer are recorded.")


if __name__ == "__main__":
    main()
