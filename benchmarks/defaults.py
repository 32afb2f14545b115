"""charlstm's fitted defaults against the fixed 2×256 it used to train whatever the corpus and budget.

    python benchmarks/defaults.py [--minutes 2 8] [--corpora shakespeare code chinese messages]
                                  [--seeds 1] [--parallel]

For every corpus and budget, `charlstm train CORPUS --time Nm` runs twice, as a user would run it:
once with charlstm's own defaults (the model and its dropout fitted to the corpus and budget by fit.py, the rare-
character policy of data.rare_threshold) and once with the old fixed choice (`--hidden-size 256
--num-layers 2 --embedding-size 64 --min-char-count 1`). Each run's best checkpoint is then scored
on the same held-out text — the corpus's last 5 %, which neither trained on — in honest bits per
character: a character a model reads as its unknown symbol costs −log2 p(unknown) plus −log2 of its
share among the folded characters (counted in the corpus), so a smaller vocabulary earns nothing
by merging characters. The two runs of a cell go one after the other, in alternating order; with
--parallel they run at the same time, each on one core with one thread (half the wall time, equal
conditions for both, lower absolute figures).

Corpora: the bundled Shakespeare (corpora/shakespeare.txt), a code corpus (the Python sources of
the installed `rich` and `click` packages: 1.6 MB, 1,939 distinct characters, box-drawing tables
and emoji included), the bundled Chinese Song ci (corpora/chinese-poetry.txt, 4,257 distinct
characters in 359k), the bundled one-line messages (corpora/fortunes.txt), and `chinese-30k`, the
first 30,000 characters of the Song ci (2,200 distinct): a small corpus, where the fit is sized by
the data. A cell whose fitted model and vocabulary are exactly the fixed ones is reported as such
and not trained (the two runs would be the same run).

    python benchmarks/defaults.py --widths 64 128 [--minutes 2] [--corpora ...] [--parallel]

The learning rate that follows the width (fit.fitted_rate): `charlstm train CORPUS --hidden-size W
--time Nm` as a user types it (the rate fitted to W) against the same with `--lr 5e-3`, the rate every
width took before, scored the same way.

    python benchmarks/defaults.py --probes [--seeds 3]

The seeds' probe tasks with the defaults: `charlstm corpus TASK --out F --seed 1`, then `charlstm train
F --hidden-size 10 --num-layers 1 --max-steps 1500 --seq-len 64 --batch-size 32 --seed S` with the rate
fitted to 10 units (2.5e-2) and with `--lr 5e-3`; each model then answers one prompt per length
(counter, selective counter: N = 1..10; memorizer: A and B over gaps 1..10), each read from a zero
state after a line break as `charlstm sample --prime $'\\naaaX' --temperature 0` reads it, and 200
held-out lines each after another held-out line, as in the training stream.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

FIXED = ["--hidden-size", "256", "--num-layers", "2", "--embedding-size", "64", "--min-char-count", "1"]
VAL_FRACTION = 0.05


def code_corpus(work: Path) -> Path:
    """The Python sources of the installed rich and click, concatenated in sorted order."""
    import click
    import rich

    out = work / "rich-click.py.txt"
    with open(out, "w", encoding="utf-8") as f:
        for package in (rich, click):
            for path in sorted(Path(package.__file__).parent.rglob("*.py")):
                f.write(path.read_text(encoding="utf-8"))
    return out


def corpus_path(name: str, work: Path) -> Path:
    bundled = {"shakespeare": "shakespeare.txt", "chinese": "chinese-poetry.txt", "messages": "fortunes.txt"}
    if name == "code":
        return code_corpus(work)
    if name == "shakespeare-10k":   # small enough that the fit picks a smaller model (the data cap)
        out = work / "shakespeare-10k.txt"
        out.write_text((ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")[:10_000], encoding="utf-8")
        return out
    if name == "chinese-30k":
        out = work / "chinese-30k.txt"
        out.write_text((ROOT / "corpora" / "chinese-poetry.txt").read_text(encoding="utf-8")[:30_000], encoding="utf-8")
        return out
    return ROOT / "corpora" / bundled[name]


def fitted_choice(corpus: Path, minutes: float) -> tuple[str, int, bool]:
    """What charlstm's defaults train on this corpus and budget: (L×H, vocabulary size, folds)."""
    from charlstm.config import TrainConfig
    from charlstm.data.vocab import Vocab
    from charlstm.training.fit import fit_model

    text = corpus.read_text(encoding="utf-8")
    vocab = Vocab.from_text(text, None)
    config = TrainConfig(time_budget=minutes * 60)
    train_chars = len(text) - max(int(round(len(text) * config.val_fraction)), 2)
    fitted = fit_model(train_chars, len(vocab), config.time_budget, None, config.batch_size * config.seq_len)
    same_model = (fitted.num_layers, fitted.hidden_size, fitted.embedding_size, fitted.dropout) == (2, 256, 64, 0.0)
    shape = f"{fitted.num_layers}×{fitted.hidden_size}" + (f" dropout {fitted.dropout:g}" if fitted.dropout else "")
    return shape, len(vocab), same_model and vocab.unknown_char is None


def train(corpus: Path, out: Path, minutes: float, extra: list[str], seed: int, core: int | None) -> dict:
    command = [sys.executable, "-m", "charlstm", "train", str(corpus), "--out", str(out), "--time", f"{minutes}m",
               "--seed", str(seed), *extra]
    if core is not None:
        command = ["taskset", "-c", str(core), *command, "--threads", "1"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"charlstm train failed:\n{done.stderr[-2000:]}")
    return {"wall_s": time.perf_counter() - started, "stderr": done.stderr}


def honest_bpc(checkpoint: Path, text: str, counts: collections.Counter) -> tuple[float, dict]:
    """Bits per character of text[1:] under the checkpoint, folded characters charged their share."""
    import torch

    from charlstm.runs import checkpoint as ckpt
    from charlstm.scoring.bits import score_text

    loaded = ckpt.load(checkpoint)
    vocab = loaded.vocab
    model = loaded.model(torch.device("cpu"))
    read = vocab.read(text)
    if any(c not in vocab for c in read):
        raise SystemExit(f"{checkpoint}: the held-out text has characters the model lacks and it has no unknown symbol")
    bits = score_text(model, vocab, read).bits                                         # (T − 1,)
    folded = {c: n for c, n in counts.items() if c not in vocab}
    total_folded = sum(folded.values())
    extra = sum(-math.log2(folded[c] / total_folded) for c in text[1:] if c in folded)
    info = {"model": f"{loaded.config.num_layers}×{loaded.config.hidden_size}", "vocab": len(vocab),
            "parameters": sum(v.numel() for v in loaded.model_state.values()), "step": loaded.run_info.step,
            "folded_share": sum(1 for c in text[1:] if c in folded) / max(len(text) - 1, 1)}
    return (float(bits.sum()) + extra) / len(bits), info


def cell(name: str, corpus: Path, minutes: float, seed: int, work: Path, parallel: bool, flip: bool) -> dict:
    text = corpus.read_text(encoding="utf-8")
    counts = collections.Counter(text)
    n_val = max(int(round(len(text) * VAL_FRACTION)), 2)
    held_out = text[len(text) - n_val :]
    runs = {"fitted": [], "fixed": FIXED}
    order = list(runs)[::-1] if flip else list(runs)
    outs = {kind: work / f"{name}-{minutes}m-{seed}-{kind}" for kind in runs}
    if parallel:
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(2) as pool:
            futures = {kind: pool.submit(train, corpus, outs[kind], minutes, runs[kind], seed, core)
                       for core, kind in enumerate(order)}
            results = {kind: f.result() for kind, f in futures.items()}
    else:
        results = {kind: train(corpus, outs[kind], minutes, runs[kind], seed, None) for kind in order}
    row = {"corpus": name, "minutes": minutes, "seed": seed, "distinct": len(counts), "chars": len(text)}
    for kind in runs:
        bpc, info = honest_bpc(outs[kind] / "best.safetensors", held_out, counts)
        row[kind] = {"bpc": round(bpc, 4), **info, "wall_s": round(results[kind]["wall_s"], 1)}
    return row


OLD_RATE = ["--lr", "5e-3"]


def width_cell(name: str, corpus: Path, minutes: float, width: int, seed: int, work: Path, parallel: bool,
               flip: bool) -> dict:
    """One corpus at one width: the rate fitted to the width against the old fixed rate."""
    from charlstm.training.fit import fitted_rate

    text = corpus.read_text(encoding="utf-8")
    counts = collections.Counter(text)
    held_out = text[len(text) - max(int(round(len(text) * VAL_FRACTION)), 2):]
    shape = ["--hidden-size", str(width)]
    runs = {"fitted": shape, "old": shape + OLD_RATE}
    order = list(runs)[::-1] if flip else list(runs)
    outs = {kind: work / f"{name}-{minutes}m-w{width}-{seed}-{kind}" for kind in runs}
    if parallel:
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(2) as pool:
            futures = {kind: pool.submit(train, corpus, outs[kind], minutes, runs[kind], seed, core)
                       for core, kind in enumerate(order)}
            for future in futures.values():
                future.result()
    else:
        for kind in order:
            train(corpus, outs[kind], minutes, runs[kind], seed, None)
    row = {"corpus": name, "minutes": minutes, "width": width, "seed": seed, "rate": fitted_rate(width)}
    for kind in runs:
        bpc, info = honest_bpc(outs[kind] / "best.safetensors", held_out, counts)
        row[kind] = {"bpc": round(bpc, 4), **info}
    return row


def probe_cell(task: str, seed: int, work: Path, extra: list[str]) -> dict:
    """A probe model trained with the defaults (+ extra), and how many answers it gets exactly right."""
    import random

    import torch

    from charlstm.probes import recipes, tasks
    from charlstm.runs import checkpoint as ckpt

    corpus = work / f"{task}.txt"
    if not corpus.exists():
        subprocess.run([sys.executable, "-m", "charlstm", "corpus", task, "--out", str(corpus), "--seed", "1"],
                       check=True, capture_output=True, cwd=ROOT)
    out = work / f"{task}-{seed}-{'old' if extra else 'fitted'}"
    command = [sys.executable, "-m", "charlstm", "train", str(corpus), "--out", str(out), "--hidden-size", "10",
               "--num-layers", "1", "--max-steps", "1500", "--seq-len", "64", "--batch-size", "32", "--seed", str(seed),
               "--threads", "1", *extra]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    saved = ckpt.load(out / "best.safetensors")
    model, vocab = saved.model(torch.device("cpu")), saved.vocab
    rng = random.Random(7)
    if task == "memorizer":
        lines = [letter + "x" * gap + "Y" + letter.lower() for gap in range(1, 11) for letter in "AB"]
    elif task == "counter":
        lines = ["a" * n + "X" + "b" * n for n in range(1, 11)]
    else:
        lines = []
        for n in range(1, 11):
            noise = [0] * n
            for _ in range(rng.randint(0, 5)):
                noise[rng.randrange(n)] += 1
            lines.append("".join("a" + "X" * k for k in noise) + "Y" + "b" * n)
    with torch.inference_mode():
        fresh, _ = recipes.solves(model, vocab, task, lines, ["\n"] * len(lines))
        held = tasks.generate(task, 200, 99)
        in_stream, _ = recipes.solves(model, vocab, task, held, recipes.prompt_contexts(task, 201, 98)[1:])
    return {"task": task, "seed": seed, "fresh": sum(fresh), "of": len(lines), "in_stream": sum(in_stream) / len(held),
            "val_bpc": saved.run_info.last_val_bpc, "lr": saved.run_info.train_config.learning_rate}


def probes(seeds: int, as_json: Path | None) -> None:
    print(f"{'task':<19}{'seed':>5}   {'rate fitted to 10 units':<42}{'--lr 5e-3'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("counter", "selective-counter", "memorizer"):
            for seed in range(1, seeds + 1):
                pair = [probe_cell(task, seed, Path(tmp), extra) for extra in ([], OLD_RATE)]
                rows.append(pair)
                said = [f"lr {r['lr']:g}: {r['fresh']:>2}/{r['of']} fresh, {r['in_stream']:6.1%} in stream"
                        for r in pair]
                print(f"{task:<19}{seed:>5}   {said[0]:<42}{said[1]}", flush=True)
    if as_json:
        as_json.write_text(json.dumps(rows, indent=1))


def widths(args) -> None:
    print(f"{'corpus':<12}{'budget':>7}{'width':>6}{'seed':>5}   {'fitted rate':>11}{'bpc':>8}   {'lr 5e-3 bpc':>11}"
          f"{'fitted − old':>14}")
    rows = []
    flip = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for minutes in args.minutes:
            for name in args.corpora:
                corpus = corpus_path(name, work)
                for width in args.widths:
                    for seed in range(1, args.seeds + 1):
                        row = width_cell(name, corpus, minutes, width, seed, work, args.parallel, flip)
                        flip = not flip
                        rows.append(row)
                        f, o = row["fitted"]["bpc"], row["old"]["bpc"]
                        print(f"{name:<12}{minutes:>6g}m{width:>6}{seed:>5}   {row['rate']:>11g}{f:>8.3f}   {o:>11.3f}"
                              f"{f - o:>+14.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 8])
    parser.add_argument("--corpora", nargs="+", default=["shakespeare", "code", "chinese", "messages", "chinese-30k"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--widths", type=int, nargs="+", default=None,
                        help="compare the rate fitted to each width against --lr 5e-3 instead")
    parser.add_argument("--probes", action="store_true", help="train the probe tasks with the defaults instead")
    args = parser.parse_args()
    print(machine())
    if args.probes:
        return probes(args.seeds, args.json)
    if args.widths:
        return widths(args)
    print(f"{'corpus':<12}{'budget':>7}{'seed':>5}   {'fitted model':<34}{'bpc':>7}   {'fixed 2×256':<28}{'bpc':>7}"
          f"{'fitted − fixed':>16}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        flip = False
        for minutes in args.minutes:
            for name in args.corpora:
                corpus = corpus_path(name, work)
                shape, vocab_size, same = fitted_choice(corpus, minutes)
                if same:
                    print(f"{name:<12}{minutes:>6g}m        the fitted model is the fixed one ({shape}, all {vocab_size} "
                          f"characters): nothing to compare", flush=True)
                    rows.append({"corpus": name, "minutes": minutes, "same_as_fixed": shape})
                    continue
                for seed in range(1, args.seeds + 1):
                    row = cell(name, corpus, minutes, seed, work, args.parallel, flip)
                    flip = not flip
                    rows.append(row)
                    f, x = row["fitted"], row["fixed"]
                    describe = lambda r: f"{r['model']} V={r['vocab']} {r['parameters'] / 1e6:.2f}M st={r['step']}"  # noqa: E731
                    print(f"{name:<12}{minutes:>6g}m{seed:>5}   {describe(f):<34}{f['bpc']:>7.3f}   {describe(x):<28}"
                          f"{x['bpc']:>7.3f}{f['bpc'] - x['bpc']:>+16.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
