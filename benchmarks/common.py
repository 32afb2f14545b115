"""What every benchmark shares: the machine, the matmul roofline, FLOP counts, and the plain
reference model a tutorial would write (nn.Embedding → nn.LSTM → nn.Linear, Adam, defaults).

Benchmarks compare charlstm with the reference *in the same process, interleaved*, so a busy
neighbour slows both alike and the ratio still means something.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TINY_SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"Python {platform.python_version()}")


def matmul_roofline(n: int = 1024, seconds: float = 1.5) -> float:
    """Best fp32 GEMM GFLOP/s of this process on an n×n×n product (the ceiling a training step can reach)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def gemv_limit(hidden: int, layers: int, vocab: int, seconds: float = 1.5) -> float:
    """Characters/s if a batch-1 step were nothing but its matrix-vector products, timed on this machine
    with torch.mv on the step's own matrix shapes (and no Python in between)."""
    mats = [torch.randn(4 * hidden, hidden)] + [torch.randn(4 * hidden, 2 * hidden) for _ in range(layers - 1)]
    mats.append(torch.randn(vocab, hidden))
    vecs = [torch.randn(m.shape[1]) for m in mats]
    for m, v in zip(mats, vecs):
        torch.mv(m, v)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(20):
            for m, v in zip(mats, vecs):
                torch.mv(m, v)
        best = min(best, (time.perf_counter() - t) / 20)
    return 1.0 / best


def lstm_train_flops_per_char(embedding: int, hidden: int, layers: int, vocab: int) -> float:
    """Matmul FLOPs per character of one training step (forward ×3 for forward + backward)."""
    forward = 2 * 4 * hidden * (embedding + hidden)
    forward += (layers - 1) * 2 * 4 * hidden * (2 * hidden)
    forward += 2 * hidden * vocab
    return 3.0 * forward


class ReferenceLSTM(nn.Module):
    """The obvious tutorial char-LSTM: nothing tuned, nothing fused by hand."""

    def __init__(self, vocab: int, embedding: int = 64, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def random_windows(ids: torch.Tensor, batch: int, seq_len: int, generator: torch.Generator):
    """A batch of `batch` windows at random places in ids: inputs and next-character targets, (B, T) each."""
    starts = torch.randint(0, len(ids) - seq_len - 1, (batch,), generator=generator).tolist()
    x = torch.stack([ids[s : s + seq_len] for s in starts])
    y = torch.stack([ids[s + 1 : s + seq_len + 1] for s in starts])
    return x, y


def load_tiny_shakespeare() -> str:
    if not TINY_SHAKESPEARE.is_file():
        sys.exit(f"benchmark corpus missing: {TINY_SHAKESPEARE} (see ../shared/CORPORA.md)")
    return TINY_SHAKESPEARE.read_text(encoding="utf-8")
