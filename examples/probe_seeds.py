"""How much do the probe findings depend on the training seed? Train each task's recipe
(charlstm.probes.recipes.RECIPES) with several seeds and print one line per model.

    python examples/probe_seeds.py counter memorizer --seeds 1 2 3 4 5

Trains into a temporary directory that is removed afterwards; one CPU thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import charlstm  # noqa: E402
from charlstm.probes import recipes, reports  # noqa: E402


def measure(task: str, model, vocab) -> str:
    if task in ("counter", "selective-counter"):
        r = reports.counter_report(model, vocab, task)
        line = (f"in range {r.in_range:6.1%}   exact up to N = {r.extrapolates_to:>2}   unit {r.unit.unit}: "
                f"r(owed) {r.unit.r:+.3f}, r(a's) {r.r_count:+.3f}   runner-up |r| {abs(r.runner_up.r):.3f}")
        if task == "selective-counter":
            g = reports.selective_gate_report(model, vocab, r.unit)
            line += f"   input gate on a {g.input_on_a:.3f}, on X {g.input_on_x:.3f}"
        return line
    if task == "memorizer":
        r = reports.memorizer_report(model, vocab)
        best = max(r.a_unit, r.b_unit, key=lambda u: u.d_prime)
        flips = [e for e in reports.memorizer_edits(model, vocab, r) if e.unit == best.unit and e.value != 0.0]
        return (f"accuracy {r.overall:6.1%}   strongest unit {best.unit}: d′ {best.d_prime:5.2f}, held {best.held:4.0%}   "
                f"other unit d′ {min(r.a_unit, r.b_unit, key=lambda u: u.d_prime).d_prime:5.2f}   "
                f"clamp flips {' / '.join(f'{e.effect.target:.0%}' for e in flips)}")
    r = reports.copy_report(model, vocab)
    best = r.units[0]
    return (f"accuracy {r.accuracy:6.1%}   best unit {best.unit}: η²(next) {best.eta_next:.3f}, η²(slot) {best.eta_slot:.3f}   "
            f"{len(r.next_char_units)}/{len(r.units)} units next-character-like")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tasks", nargs="+", choices=list(recipes.RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    with recipes.torch_threads(1), tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            recipe = recipes.RECIPES[task]
            print(f"{task}: {recipe.lines} lines, {recipe.model.num_layers} × {recipe.model.hidden_size} LSTM, "
                  f"{recipe.train.max_steps} steps at lr {recipe.train.learning_rate:g}")
            for seed in args.seeds:
                started = time.perf_counter()
                recipes.train_probe(task, Path(tmp) / f"{task}-{seed}", seed=seed)
                seconds = time.perf_counter() - started
                model, vocab = charlstm.load(Path(tmp) / f"{task}-{seed}")
                print(f"  seed {seed}  ({seconds:4.1f} s)   {measure(task, model, vocab)}", flush=True)


if __name__ == "__main__":
    main()
