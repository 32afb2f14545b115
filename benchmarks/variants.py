"""LSTM variants side by side: a small replication of Greff et al. 2015 ("LSTM: A Search Space Odyssey").

    python benchmarks/variants.py [--minutes 3] [--cells lstm,gru,rnn,peephole,coupled] [--speed-only]

1. Speed: training steps (B 64, T 100, AdamW, same data) of every cell at the parameter-matched
   size below, interleaved round by round in this process, best round each; plus the explicit
   standard LSTM of cells.py (same weights as nn.LSTM, hand-derived backward) to show what the
   explicit route costs against PyTorch's fused kernel.
2. Quality: `charlstm.train` with its defaults, a fixed wall-clock budget per cell (evaluation
   included, as for users), on Karpathy's tiny-shakespeare (90/10 split); the best checkpoint is
   scored on the whole validation text.

Every cell gets the hidden size that brings its parameter count closest to the 2×256 LSTM's
(embedding 64, two layers), so each comparison is at (nearly) equal parameters; the counts are
printed.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import load_tiny_shakespeare, machine, random_windows
from quality import run_charlstm

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.model.cells import ExplicitLSTM
from charlstm.model.network import CharModel

LN2 = math.log(2.0)
BATCH, SEQ = 64, 100
TARGET = dict(embedding_size=64, num_layers=2)


def matched_size(cell: str, vocab: int, target: int) -> int:
    """The hidden size whose parameter count is closest to `target`."""
    def count(h: int) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            return CharModel(ModelConfig(vocab_size=vocab, cell=cell, hidden_size=h, **TARGET)).num_parameters
    return min(range(64, 1024), key=lambda h: abs(count(h) - target))


def step_rate(model: CharModel, ids: torch.Tensor, steps: int) -> float:
    """chars/s of forward + backward + fused AdamW on random (B, T) windows."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(0)
    V = model.config.vocab_size

    def one():
        x, y = random_windows(ids, BATCH, SEQ, gen)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    return BATCH * SEQ * steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per cell")
    parser.add_argument("--cells", default="lstm,gru,rnn,peephole,coupled")
    parser.add_argument("--steps", type=int, default=8, help="steps per speed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    cells = args.cells.split(",")

    text = load_tiny_shakespeare()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text).astype(np.int64)
    n_train = int(len(ids) * 0.9)
    V = len(vocab)
    target = CharModel(ModelConfig(vocab_size=V, hidden_size=256, **TARGET)).num_parameters
    sizes = {cell: 256 if cell == "lstm" else matched_size(cell, V, target) for cell in cells}
    print(f"machine: {machine()}")
    print(f"tiny-shakespeare: {len(ids):,} characters, {V} distinct; 2 layers, embedding 64, "
          f"target {target:,} parameters (the 2×256 LSTM)\n")

    # ---- speed, interleaved
    train_ids = torch.from_numpy(ids[:n_train])
    models = {}
    for cell in cells:
        torch.manual_seed(0)
        models[cell] = CharModel(ModelConfig(vocab_size=V, cell=cell, hidden_size=sizes[cell], **TARGET))
    params = {cell: models[cell].num_parameters for cell in cells}
    if "lstm" in cells:  # the same LSTM through the explicit cell: what the fused kernel is worth
        torch.manual_seed(0)
        explicit = CharModel(ModelConfig(vocab_size=V, hidden_size=256, **TARGET))
        fused_rnn = explicit.rnn
        explicit.rnn = ExplicitLSTM("lstm", 64, 256, 2)
        explicit.rnn.load_state_dict(fused_rnn.state_dict())
        models["lstm (explicit)"] = explicit
    rates = {name: 0.0 for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name] = max(rates[name], step_rate(model, train_ids, args.steps))
    print(f"{'cell':16} {'hidden':>6} {'parameters':>11} {'train chars/s':>14} {'vs fused lstm':>14}  kernel")
    base = rates.get("lstm")
    for name, rate in rates.items():
        cell = name.split()[0]
        kernel = "explicit (cells.py)" if name != cell or cell in ("peephole", "coupled") else "fused (PyTorch)"
        ratio = f"{rate / base:13.2f}x" if base else f"{'-':>14}"
        print(f"{name:16} {sizes[cell]:6} {params[cell]:11,} {rate:14,.0f} {ratio}  {kernel}")
    if args.speed_only:
        return

    # ---- quality at equal wall-clock budget
    print(f"\nvalidation after {args.minutes:g} min of `charlstm train` (defaults, evaluation included):", flush=True)
    results = {}
    for cell in cells:
        loss, steps = run_charlstm(text, ids[n_train:], args.minutes * 60, {"cell": cell, "hidden_size": sizes[cell]}, {})
        results[cell] = (loss, steps)
        print(f"  {cell:9} {loss:.4f} nats  {loss / LN2:.3f} bits/char  ({steps} steps)", flush=True)
    print(f"\n{'cell':10} {'hidden':>6} {'parameters':>11} {'steps':>6} {'val nats':>9} {'val bpc':>8}")
    for cell, (loss, steps) in sorted(results.items(), key=lambda item: item[1][0]):
        print(f"{cell:10} {sizes[cell]:6} {params[cell]:11,} {steps:6} {loss:9.4f} {loss / LN2:8.3f}")


if __name__ == "__main__":
    main()
