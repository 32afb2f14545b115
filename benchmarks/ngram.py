"""Building the n-gram baseline of `charlstm score --baseline ngram:N`: seconds and characters/s.

    python benchmarks/ngram.py [--chars 0] [--order 20] [--small-order 5] [--hidden 256] [--rounds 2]

On the bundled corpora/shakespeare.txt (or its first --chars characters): the build of an order
--order model against the same build at --small-order, and an LSTM (--hidden × 2, random weights:
speed does not depend on training) scoring the same text through `score.score_text`, interleaved
round by round in one process so a busy neighbour slows all three alike. Also the size of the
tables and the bits per character of each n-gram on the last 5% (held out of its build).
"""

from __future__ import annotations

import argparse
import time

import torch

from common import ROOT, machine

from charlstm.data import Vocab
from charlstm.model import CharModel, ModelConfig
from charlstm.ngram import NgramModel
from charlstm.score import score_text


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=0, help="characters of the corpus to use (0: all)")
    parser.add_argument("--order", type=int, default=20)
    parser.add_argument("--small-order", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    text = (ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")
    text = text[: args.chars] if args.chars else text
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    cut = len(ids) - len(ids) // 20
    train, held = ids[:cut], ids[cut:]
    torch.manual_seed(0)
    lstm = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_layers=2)).eval()
    print(machine())
    print(f"corpus: {len(text):,} characters of shakespeare.txt, {len(vocab)} distinct; n-grams built on the first "
          f"{len(train):,}, scored on the last {len(held):,}; LSTM 2×{args.hidden} scores all {len(text):,}")

    best: dict[str, float] = {}
    models: dict[int, NgramModel] = {}
    for _ in range(args.rounds):
        for name, work in ((f"ngram:{args.order} build", lambda: NgramModel.build(train, len(vocab), args.order)),
                           (f"ngram:{args.small_order} build",
                            lambda: NgramModel.build(train, len(vocab), args.small_order)),
                           (f"LSTM 2×{args.hidden} score", lambda: score_text(lstm, vocab, text))):
            seconds, result = timed(work)
            best[name] = min(best.get(name, float("inf")), seconds)
            if isinstance(result, NgramModel):
                models[result.order] = result

    base = best[f"ngram:{args.small_order} build"]
    print(f"\n{'':24} {'best s':>8} {'kchars/s':>9} {'× ngram:' + str(args.small_order):>10}")
    for name, seconds in best.items():
        chars = len(text) if name.startswith("LSTM") else len(train)
        print(f"{name:24} {seconds:8.2f} {chars / seconds / 1e3:9.1f} {seconds / base:10.2f}")
    print()
    for order, model in sorted(models.items()):
        seconds, score = timed(lambda: model.score(held))
        print(f"ngram:{order}: tables {model.nbytes / 2**20:.0f} MiB ({model.buckets:,} buckets a table), "
              f"{score.bits_per_char:.3f} bits/char on the held-out 5%, scored in {seconds:.2f} s")


if __name__ == "__main__":
    main()
