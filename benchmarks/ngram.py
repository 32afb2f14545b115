"""The n-gram baseline of `charlstm score --baseline ngram:N`: held-out bits per character and build time by order.

    python benchmarks/ngram.py [--orders 3,5,7,10,15,20] [--against REV] [--python-mb 4] [--rounds 1]

Each n-gram is built on the first 95% of a corpus and scored on the held-out last 5%: the bundled
corpora/shakespeare.txt and, once fetched (`python corpora/build.py fetch python-code`), the first
--python-mb MB of corpora/fetched/python-code.txt. With --against REV the charlstm/ngram.py of that git
revision (read with `git show`; e0d53b7 is the Witten–Bell model that Kneser–Ney replaced) is built and
scored on the same texts, build for build in turn in one process so a busy neighbour slows both alike, and
the last column is the ratio of build times. Build times are the best of --rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types

from common import ROOT, machine

from charlstm.data.vocab import Vocab
from charlstm.scoring.ngram import NgramModel


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def module_at(rev: str) -> types.ModuleType:
    """charlstm/ngram.py as it was at git revision `rev`, loaded as a module of the charlstm package
    (so its relative imports resolve) without touching the checkout."""
    source = subprocess.run(["git", "show", f"{rev}:charlstm/ngram.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    name = f"charlstm._ngram_at_{rev}"
    module = types.ModuleType(name)
    module.__package__ = "charlstm"
    sys.modules[name] = module                    # dataclasses look their module up while the source runs
    exec(compile(source, f"{rev}:charlstm/ngram.py", "exec"), module.__dict__)
    return module


def corpora(python_mb: float) -> list[tuple[str, str]]:
    """(label, text) of each corpus present."""
    found = [("shakespeare", (ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8"))]
    code = ROOT / "corpora" / "fetched" / "python-code.txt"
    if code.is_file():
        found.append((f"python {python_mb:g} MB", code.read_text(encoding="utf-8")[: int(python_mb * 1e6)]))
    else:
        print(f"{code.relative_to(ROOT)} not fetched: python corpora/build.py fetch python-code", file=sys.stderr)
    return found


def measure(model_class, train, held, vocab_size: int, order: int, rounds: int) -> tuple[float, float, float, object]:
    """(best build seconds, held-out bits/char, score seconds, model) of one n-gram."""
    best, model = float("inf"), None
    for _ in range(rounds):
        seconds, model = timed(lambda: model_class.build(train, vocab_size, order))
        best = min(best, seconds)
    seconds, score = timed(lambda: model.score(held))
    return best, score.bits_per_char, seconds, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="3,5,7,10,15,20", help="comma-separated N")
    parser.add_argument("--against", default=None, help="a git revision whose charlstm/ngram.py to compare with")
    parser.add_argument("--python-mb", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    orders = [int(n) for n in args.orders.split(",")]
    before = module_at(args.against) if args.against else None

    print(machine())
    print(f"load average at start: {load()}")
    columns = f"{'bits/char':>9} {'build s':>8} {'score s':>8}"
    if before:
        print(f"\nleft: this checkout's charlstm/ngram.py; right: {args.against}'s; build ×: left / right")
    other = f" | {columns} | {'build ×':>7}" if before else ""
    print(f"\n{'corpus':18} {'N':>3} {columns} {'tables MiB':>10}{other}")
    for label, text in corpora(args.python_mb):
        vocab = Vocab.from_text(text)
        ids = vocab.encode(text)
        cut = len(ids) - len(ids) // 20
        train, held = ids[:cut], ids[cut:]
        for order in orders:
            build, bpc, score, model = measure(NgramModel, train, held, len(vocab), order, args.rounds)
            line = f"{label:18} {order:3} {bpc:9.3f} {build:8.2f} {score:8.2f} {model.nbytes / 2**20:10.0f}"
            del model
            if before:
                old_build, old_bpc, old_score, _ = measure(before.NgramModel, train, held, len(vocab), order,
                                                           args.rounds)
                line += f" | {old_bpc:9.3f} {old_build:8.2f} {old_score:8.2f} | {build / old_build:7.2f}"
            print(line, flush=True)
        print(f"{'':18} ({len(train):,} characters built on, {len(held):,} held out, {len(vocab)} distinct)")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
