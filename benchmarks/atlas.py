"""The neuron atlas vs one --find per feature, on a freshly initialised model, in the same run.

    python benchmarks/atlas.py [--chars 20000] [--hidden 512] [--layers 2]

Times what `charlstm inspect --atlas` does after loading (trace the text through the model and an
untrained twin, compute every feature, the built-in ones and those proposed from the text, one
vectorised pass of every unit against every feature with chance levels, labels beyond the character
read and on held-out halves, contexts; then every unit held at its mean, the ablation) against the
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    corpus = load_tiny_shakespeare()
    text = corpus[: args.chars]
    vocab = Vocab.from_text(corpus)
    torch.manual_seed(0)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_layers=args.layers)).eval()
    print(f"machine: {machine()}")
    print(f"model {args.layers}×{args.hidden} LSTM, freshly initialised; {len(text):,} characters; vector hidden\n")

    t0 = time.perf_counter()
    result = trace(model, vocab, text, vectors=["hidden"])
    t_trace = time.perf_counter() - t0
    baseline = trace(untrained_like(model), vocab, text, vectors=["hidden"])
    t_baseline = time.perf_counter() - t0 - t_trace
    t1 = time.perf_counter()
    features = atlas_features(text)
    t_features = time.perf_counter() - t1
    t2 = time.perf_counter()
    atlas = build_atlas(result, features, ["hidden"], baseline=baseline)
    t_atlas = time.perf_counter() - t2
    without = time.perf_counter() - t0
    t4 = time.perf_counter()
    effects = unit_effects(model, vocab, text, atlas.keys, atlas.means, leading=atlas.rows(atlas.units))
    t_ablation = time.perf_counter() - t4

    t3 = time.perf_counter()
    searches = {name: find_neurons(result, values, "hidden", top=1) for name, values in features.items()
                if np.ptp(values) > 0}
    t_find = time.perf_counter() - t3
    agree = sum(atlas.ranking(name, 1)[0][2] == s.ranked[0].unit and atlas.ranking(name, 1)[0][0] == s.ranked[0].layer
                for name, s in searches.items())

    units = len(atlas.units)
    print(f"{'step':48} {'seconds':>8}")
    print(f"{'trace (shared by both routes)':48} {t_trace:8.2f}")
    print(f"{'trace of the untrained twin (atlas chance)':48} {t_baseline:8.2f}")
    print(f"{'features (' + str(len(features)) + ': built-in and proposed)':48} {t_features:8.2f}")
    print(f"{'atlas: ' + str(units) + ' units × ' + str(len(atlas.features)) + ' features, chance, contexts':48} "
          f"{t_atlas:8.2f}")
    print(f"{'atlas, everything above (no ablation)':48} {without:8.2f}")
    print(f"{'ablation: ' + str(units) + ' units × ' + str(effects.characters) + ' chars, first 15 × ' + str(int(effects.per_unit.max())):48} {t_ablation:8.2f}")
    print(f"{'atlas with ablation':48} {without + t_ablation:8.2f}   ({(without + t_ablation) / without:.2f}× without)")
    print(f"{'find_neurons once per feature (' + str(len(searches)) + ', 8 shifts each)':48} {t_find:8.2f}")
    print(f"\natlas pass vs per-feature search on the same trace: {t_find / t_atlas:.1f}× "
          f"(the atlas also does 16 shifts, an untrained baseline, saturation and contexts)")
    print(f"one `inspect --find` call per feature would also redo the trace: ≈ {len(searches)} × {t_trace:.1f} s "
          f"= {len(searches) * t_trace:.0f} s")
    print(f"best unit per feature, atlas vs find_neurons: {agree}/{len(searches)} agree")


if __name__ == "__main__":
    main()
