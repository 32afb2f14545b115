"""Rank every unit of a trained model by |Pearson r| with a per-character feature over held-out text.

    python examples/find_units.py examples/models/python-code indent --text-file examples/models/python-code/heldout.txt
    python examples/find_units.py examples/models/austen column --text-file examples/models/austen/heldout.txt --bins 0,20,40,80

(the two models shipped in examples/models/, each with the held-out text it was never trained on;
docs/findings.md runs it on them).

The same ranking as `charlstm inspect --find FEATURE` (both use neurons.find_neurons), for both the
cell and the hidden state, with the chance level (the best |r| against circularly shifted copies of
the feature) and each top unit's value along a short stretch of the text. Plain text output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import numpy as np  # noqa: E402

import charlstm  # noqa: E402
from charlstm.inspection.analysis import feature_values, find_neurons  # noqa: E402
from charlstm.inspection.tracing import trace  # noqa: E402
from charlstm.probes import recipes  # noqa: E402
from charlstm.runs import checkpoint as ckpt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("feature", help="a features.py name: indent, column, bracket-depth, count:a, regex:…")
    parser.add_argument("--text-file", type=Path, required=True, help="held-out text to trace")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--show", type=int, default=0, help="characters of text to show under the best unit (0: none)")
    parser.add_argument("--show-from", type=int, default=0, help="where that stretch starts")
    parser.add_argument("--bins", default=None,
                        help="edges like 0,10,20,40: the best unit's mean value for each range of the feature")
    args = parser.parse_args()

    with recipes.torch_threads(1):
        saved = ckpt.load(ckpt.resolve(args.checkpoint))
        model, vocab = charlstm.load(args.checkpoint)
        text = args.text_file.read_text(encoding="utf-8")
        text = "".join(c for c in text if c in vocab)              # like --unknown skip
        c, info = saved.config, saved.run_info                   # info: the typed training metadata, or None
        step, seconds = (info.step, info.elapsed_s) if info else (None, 0.0)
        val = info.last_val_bpc if info and info.last_val_bpc is not None else float("nan")
        print(f"{args.checkpoint}: {c.num_layers} × {c.hidden_size} {c.cell.upper()}, {step} steps, "
              f"{seconds:.0f} s, validation {val:.3f} bits/char")
        print(f"feature {args.feature!r} over {len(text):,} characters of {args.text_file}")
        values = feature_values(args.feature, text)
        tr = trace(model, vocab, text, vectors=["cell", "hidden"])
        best = None
        for vector in ("cell", "hidden"):
            search = find_neurons(tr, values, vector, top=args.top)
            print(f"\n  {vector}: {search.num_units} units, chance level |r| = {search.chance:.3f}")
            for rank, u in enumerate(search.ranked, 1):
                print(f"    {rank}. layer {u.layer} unit {u.unit:>3}   r = {u.r:+.3f}")
            if best is None or abs(search.ranked[0].r) > abs(best[1].r):
                best = (vector, search.ranked[0])
        if args.bins:
            vector, u = best
            unit_values = tr.values(u.layer, vector, u.unit).numpy()
            edges = [float(e) for e in args.bins.split(",")]
            print(f"\n  layer {u.layer} {vector} {u.unit}, mean by {args.feature}:")
            for low, high in zip(edges, edges[1:]):
                rows = (values >= low) & (values < high)
                if rows.any():
                    print(f"    {args.feature} {low:g}–{high:g}: mean {unit_values[rows].mean():+.2f}  ({rows.sum():,} chars)")
        if args.show:
            vector, u = best
            start, end = args.show_from, args.show_from + args.show
            stretch = tr.values(u.layer, vector, u.unit).numpy()[start:end]
            print(f"\n  layer {u.layer} {vector} {u.unit} along characters {start}..{end} "
                  f"(feature value | unit value | line):")
            offset = start
            for line in text[start:end].splitlines(keepends=True):
                n = len(line)
                seg, feat = stretch[offset - start : offset - start + n], values[offset : offset + n]
                if n:
                    print(f"    {feat.mean():>5.1f} | {np.mean(seg):+6.2f} | {line.rstrip()}")
                offset += n


if __name__ == "__main__":
    main()
