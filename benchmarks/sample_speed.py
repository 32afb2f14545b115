"""Sampling throughput: charlstm's generator vs the reference stepping nn.LSTM, with the GEMV limit.

    python benchmarks/sample_speed.py [--chars 2000] [--rounds 3]

Batch 1 and batch 32, 2×256 and 2×512, temperature 0.8. The GEMV limit is the rate a batch-1
step would reach if it were nothing but its matrix-vector products (torch.mv on the same shapes).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ReferenceLSTM, gemv_limit, machine

from charlstm.config import ModelConfig, SampleConfig
from charlstm.data.vocab import Vocab
from charlstm.generation.sampling import generate
from charlstm.model.network import CharModel

VOCAB = 65


@torch.inference_mode()
def reference_rate(hidden: int, chars: int) -> float:
    """One character at a time through nn.LSTM, as a tutorial's sample() does."""
    torch.manual_seed(0)
    model = ReferenceLSTM(VOCAB, 64, hidden, 2).eval()
    gen = torch.Generator().manual_seed(0)
    x, state = torch.zeros(1, 1, dtype=torch.long), None
    t = time.perf_counter()
    for _ in range(chars):
        logits, state = model(x, state)
        probs = torch.softmax(logits[0, -1] / 0.8, dim=-1)
        x = torch.multinomial(probs, 1, generator=gen).view(1, 1)
    return chars / (time.perf_counter() - t)


def charlstm_rate(model: CharModel, vocab: Vocab, chars: int, batch: int) -> float:
    config = SampleConfig(length=chars, temperature=0.8, num_samples=batch, seed=0)
    t = time.perf_counter()
    n = sum(1 for _ in generate(model, vocab, "", config))
    return n * batch / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    vocab = Vocab([chr(32 + i) for i in range(VOCAB - 1)] + ["\n"])
    print(f"{'model':7} {'GEMV limit':>10} {'reference':>10} {'charlstm b=1':>13} {'of limit':>9} {'vs ref':>7} "
          f"{'charlstm b=32':>14} {'b32 / b1':>9}")
    for hidden in [int(h) for h in args.sizes.split(",")]:
        torch.manual_seed(0)
        model = CharModel(ModelConfig(vocab_size=VOCAB, hidden_size=hidden, embedding_size=64)).eval()
        limit = gemv_limit(hidden, 2, VOCAB)
        ref = one = many = 0.0
        for _ in range(args.rounds):  # interleaved; each keeps its best round
            ref = max(ref, reference_rate(hidden, args.chars // 4))
            one = max(one, charlstm_rate(model, vocab, args.chars, 1))
            many = max(many, charlstm_rate(model, vocab, args.chars // 4, 32))
        print(f"2x{hidden:<5} {limit:10.0f} {ref:10.0f} {one:13.0f} {one / limit:8.0%} {one / ref:6.1f}x "
              f"{many:14.0f} {many / one:8.1f}x")
    print("\nchars/s; b = samples generated together as one batch (b=32 counts all 32 streams).")


if __name__ == "__main__":
    main()
