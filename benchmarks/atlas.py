"""The neuron atlas vs one --find per feature, on a freshly initialised model, in the same run.

    python benchmarks/atlas.py [--chars 20000] [--hidden 512] [--layers 2] [--vectors hidden cell]

Times what `charlstm inspect --atlas` does after loading, for each set of vectors asked (by default
hidden, what it mapped before, and cell, what it maps by default for an LSTM now): trace the text through the model and an
untrained twin, compute every feature, the built-in ones and those proposed from the text, one
vectorised pass of every unit against every feature with chance levels, labels beyond the character
read and on held-out halves, contexts; then every unit held at its mean, the ablation. Against the
per-feature route: `find_neurons` once per built-in feature on
the same trace (what `--find` computes, leaving out the trace each `--find` call would redo; that
cost is printed apart). Checks that both give the same best unit for every feature.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import load_tiny_shakespeare, machine

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.inspection.analysis import find_neurons
from charlstm.inspection.atlas import atlas_features, build_atlas, untrained_like
from charlstm.inspection.effects import unit_effects
from charlstm.inspection.tracing import trace
from charlstm.model.network import CharModel


def time_atlas(model, vocab, text: str, vectors: list[str]) -> dict:
    """What `inspect --atlas --vector V,...` does after loading, step by step, in seconds."""
    t0 = time.perf_counter()
    result = trace(model, vocab, text, vectors=vectors)
    t_trace = time.perf_counter() - t0
    baseline = trace(untrained_like(model), vocab, text, vectors=vectors)
    t_baseline = time.perf_counter() - t0 - t_trace
    t1 = time.perf_counter()
    features = atlas_features(text)
    t_features = time.perf_counter() - t1
    t2 = time.perf_counter()
    atlas = build_atlas(result, features, vectors, baseline=baseline)
    t_atlas = time.perf_counter() - t2
    without = time.perf_counter() - t0
    t4 = time.perf_counter()
    effects = unit_effects(model, vocab, text, atlas.keys, atlas.means, leading=atlas.rows(atlas.units))
    t_ablation = time.perf_counter() - t4
    return {"result": result, "features": features, "atlas": atlas, "effects": effects, "trace": t_trace,
            "baseline": t_baseline, "features_s": t_features, "atlas_s": t_atlas, "without": without,
            "ablation": t_ablation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vectors", nargs="+", default=["hidden", "cell"],
                        help="vector sets to time, one column each (cell: what --atlas maps by default; a,b: both)")
    args = parser.parse_args()
    corpus = load_tiny_shakespeare()
    text = corpus[: args.chars]
    vocab = Vocab.from_text(corpus)
    torch.manual_seed(0)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_layers=args.layers)).eval()
    print(f"machine: {machine()}")
    print(f"model {args.layers}×{args.hidden} LSTM, freshly initialised; {len(text):,} characters\n")
    runs = {spec: time_atlas(model, vocab, text, spec.split(",")) for spec in args.vectors}

    print(f"{'step':48}" + "".join(f"{spec:>14}" for spec in runs))
    rows = [("trace", "trace"), ("trace of the untrained twin (atlas chance)", "baseline"),
            ("features (built-in and proposed)", "features_s"), ("atlas: units × features, chance, contexts", "atlas_s"),
            ("atlas, everything above (no ablation)", "without"), ("ablation", "ablation")]
    for label, key in rows:
        print(f"{label:48}" + "".join(f"{r[key]:14.2f}" for r in runs.values()))
    print(f"{'atlas with ablation':48}" + "".join(f"{r['without'] + r['ablation']:14.2f}" for r in runs.values()))
    for spec, r in runs.items():
        effects = r["effects"]
        print(f"{spec}: {len(r['atlas'].units)} units × {len(r['atlas'].features)} features; ablation over "
              f"{effects.characters} chars a unit, the first listed over {int(effects.per_unit.max())}; "
              f"with ablation {(r['without'] + r['ablation']) / r['without']:.2f}× without")

    hidden = runs.get("hidden") or time_atlas(model, vocab, text, ["hidden"])
    result, features, atlas = hidden["result"], hidden["features"], hidden["atlas"]
    t3 = time.perf_counter()
    searches = {name: find_neurons(result, values, "hidden", top=1) for name, values in features.items()
                if np.ptp(values) > 0}
    t_find = time.perf_counter() - t3
    agree = sum(atlas.ranking(name, 1)[0][2] == s.ranked[0].unit and atlas.ranking(name, 1)[0][0] == s.ranked[0].layer
                for name, s in searches.items())
    print(f"\nfind_neurons once per feature ({len(searches)}, 8 shifts each) on the hidden trace: {t_find:.2f} s; "
          f"the hidden atlas pass: {hidden['atlas_s']:.2f} s ({t_find / hidden['atlas_s']:.1f}×)")
    print(f"one `inspect --find` call per feature would also redo the trace: ≈ {len(searches)} × {hidden['trace']:.1f} s "
          f"= {len(searches) * hidden['trace']:.0f} s")
    print(f"best unit per feature, atlas vs find_neurons: {agree}/{len(searches)} agree")


if __name__ == "__main__":
    main()
