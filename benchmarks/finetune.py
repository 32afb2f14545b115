"""From scratch against from the shipped English base: the same time budget on three small texts the
base never read, scored on their held-out parts.

    python corpora/english.py all            # once: builds corpora/fetched/english/
    python benchmarks/finetune.py [--budgets 30s 60s 3m] [--targets prose messages accents]
        [--base english] [--variants OPTIONS ...] [--only scratch base untuned]

For each target and budget, two runs start at the same moment, one thread each, through the real
command line: `charlstm train TARGET --time B --threads 1` (a model sized for the budget, as a user
gets it) and `charlstm train TARGET --init-from BASE --time B --threads 1`. Each is then scored with
`charlstm score RUN --text-file TARGET.heldout.txt --unknown skip` (the held-out tenth of the
target, which neither run trains on; characters a run never saw are skipped, and counted). The
untuned base is scored on the same held-out texts for scale.

The two runs of a pair share the machine alike, so their difference means something on a busy
machine; the absolute figures of a time budget fall as the machine gets busier. A budget may also
be a step count ("40"): the runs are then paired exactly and a rerun prints the same figures.
--variants adds a base column per set of train options (e.g. "--lr 2e-3"), for choosing the recipe.

Targets (corpora/english.py): prose, Persuasion (the sixth Austen novel; the base reads the other
five); messages, fortunes from files the base never reads; accents, Spanish fortunes (á é í ó ú ñ ¿ ¡,
characters the base lacks). Each 50,000 characters, held-out parts 10,000. Two more where the base
is not expected to help, cut the same way from bundled corpora: code (corpora/python-sample.py.txt)
and chinese (corpora/chinese-poetry.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FINETUNE = ROOT / "corpora" / "fetched" / "english" / "finetune"
TARGETS = ("prose", "messages", "accents")
#: Texts where the base is not expected to help, cut from bundled corpora the same way (50,000
#: characters to train on, the next 10,000 to score).
BUNDLED = {"code": "python-sample.py.txt", "chinese": "chinese-poetry.txt"}
TRAIN_CHARS, HELDOUT_CHARS = 50_000, 10_000


def charlstm(*args: str) -> list[str]:
    return [sys.executable, "-m", "charlstm", *map(str, args)]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def budget_args(budget: str) -> list[str]:
    return ["--max-steps", budget] if budget.isdigit() else ["--time", budget]


def score(run: Path | str, heldout: Path) -> float:
    """Held-out bits/char of `run` (characters it never saw skipped); NaN, said on stderr, where
    it cannot score the text (a base that knows almost none of its characters)."""
    done = subprocess.run(charlstm("score", run, "--text-file", heldout, "--unknown", "skip", "--format", "json",
                                   "--threads", "1"), capture_output=True, text=True)
    if done.returncode:
        print(f"# {run} cannot score {heldout.name}: {done.stderr.strip()[:200]}", file=sys.stderr)
        return float("nan")
    return float(json.loads(done.stdout)["bits_per_char"])


def train_pair(commands: dict[str, list[str]]) -> dict[str, str]:
    """Start every command at once; wait for all; each one's closing line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running = {name: subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True) for name, command in commands.items()}
    closing = {}
    for name, process in running.items():
        _, err = process.communicate()
        if process.returncode:
            sys.exit(f"{name}: {' '.join(commands[name])} failed:\n{err[-2000:]}")
        closing[name] = next((line for line in reversed(err.splitlines()) if "Done" in line), "")
    return closing


def paths(target: str, folder: Path, work: Path) -> tuple[Path, Path]:
    """(the text to train on, its held-out part): corpora/english.py's, or cut from a bundled corpus."""
    if target not in BUNDLED:
        return folder / f"{target}.txt", folder / f"{target}.heldout.txt"
    text = (ROOT / "corpora" / BUNDLED[target]).read_text(encoding="utf-8")
    train, heldout = work / f"{target}.txt", work / f"{target}.heldout.txt"
    train.write_text(text[:TRAIN_CHARS], encoding="utf-8")
    heldout.write_text(text[TRAIN_CHARS : TRAIN_CHARS + HELDOUT_CHARS], encoding="utf-8")
    return train, heldout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", nargs="+", default=["30s", "60s", "3m"])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=[*TARGETS, *BUNDLED])
    parser.add_argument("--base", default="english")
    parser.add_argument("--dir", type=Path, default=FINETUNE, help="where the targets are")
    parser.add_argument("--variants", nargs="+", default=[], metavar="OPTIONS",
                        help='extra base columns, each with these train options (e.g. "--lr 2e-3")')
    rows = ["scratch", "base", "untuned"]
    parser.add_argument("--only", nargs="+", default=rows, choices=rows)
    args = parser.parse_args()
    missing = [t for t in args.targets if t not in BUNDLED and not (args.dir / f"{t}.txt").is_file()]
    if missing:
        sys.exit(f"{args.dir}: no {', '.join(missing)}.txt; build them: python corpora/english.py all")

    from common import machine

    print(f"# {machine()}; one thread per run, the runs of a row pair started together")
    print(f"# base: {args.base}; held-out bits/char (lower is better)")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="finetune-"))
    kinds = {"scratch": []} if "scratch" in args.only else {}
    if "base" in args.only:
        kinds["base"] = []
    kinds.update({f"base, {options}": shlex.split(options) for options in args.variants})
    kinds = {name: (extra if name == "scratch" else ["--init-from", args.base, *extra])
             for name, extra in kinds.items()}
    print("\n| target | budget | " + " | ".join(kinds) + " | gain |")
    print("|---|---|" + "---|" * len(kinds) + "---|")
    for target in args.targets:
        text, heldout = paths(target, args.dir, work)
        for budget in args.budgets:
            commands = {name: charlstm("train", text, "--out", work / slug(name), "--threads", "1",
                                       "--seed", "1", *budget_args(budget), *extra)
                        for name, extra in kinds.items()}
            closing = train_pair(commands)
            figures = {name: score(work / slug(name), heldout) for name in kinds}
            gain = (f"{figures['scratch'] - figures['base']:+.3f}" if {"scratch", "base"} <= set(figures) else "")
            print(f"| {target} | {budget} | " + " | ".join(f"{v:.3f}" for v in figures.values()) + f" | {gain} |",
                  flush=True)
            for name, line in closing.items():
                print(f"#   {name}: {line.strip()[:160]}")
            for name in kinds:
                shutil.rmtree(work / slug(name))
    if "untuned" in args.only:
        print("\n| target | the base, untuned |\n|---|---|")
        for target in args.targets:
            print(f"| {target} | {score(args.base, paths(target, args.dir, work)[1]):.3f} |", flush=True)
    shutil.rmtree(work)
    print(f"\n# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
