"""Measure a probe-task model: does it solve the task, and which units do the work?

    python examples/probe.py counter checkpoints/counter
    python examples/probe.py selective-counter checkpoints/selective-counter
    python examples/probe.py memorizer checkpoints/memorizer
    python examples/probe.py copy checkpoints/copy

Train the checkpoints with examples/probe_tasks.sh (the `charlstm corpus` and `charlstm train`
commands of docs/findings.md). Prints plain text; every figure comes from charlstm.probes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import numpy as np  # noqa: E402

import charlstm  # noqa: E402
from charlstm.inspection.tracing import trace  # noqa: E402
from charlstm.probes import recipes, reports, tasks  # noqa: E402
from charlstm.runs import checkpoint as ckpt  # noqa: E402


def unit_along(model, vocab, text: str, layer: int, unit: int, vector: str = "cell") -> str:
    """A line of text with the unit's value under each character (a terminal rendering that survives
    copy and paste into Markdown)."""
    values = trace(model, vocab, text, vectors=[vector]).values(layer, vector, unit).tolist()
    shown = ["↵" if c == "\n" else c for c in text]
    width = max(6, max(len(f"{v:+.2f}") for v in values) + 1)
    return ("    " + "".join(c.ljust(width) for c in shown).rstrip() + "\n"
            + "    " + "".join(f"{v:+.2f}".ljust(width) for v in values).rstrip())


def _same_setting(name: str, stored, recipe) -> bool:
    """Whether a stored training setting is the recipe's. `--eval-seconds 0` on the command line is
    stored as 0 and the recipe says None: both mean evaluations by step count only."""
    if name == "eval_seconds":
        return (stored or None) == (recipe or None)
    return stored == recipe


def recipe_note(path: Path, task: str) -> str:
    """Whether the checkpoint was trained with the settings of recipes.RECIPES[task]."""
    saved = ckpt.load(ckpt.resolve(path))
    recipe = recipes.RECIPES[task]
    info = saved.run_info                                         # the typed training metadata (None: none stored)
    stored = info.train_config.to_dict() if info else {}
    differs = [k for k, v in recipe.train.to_dict().items() if k in stored and not _same_setting(k, stored[k], v)]
    shape = (saved.config.num_layers, saved.config.hidden_size, saved.config.embedding_size)
    if shape != (recipe.model.num_layers, recipe.model.hidden_size, recipe.model.embedding_size):
        differs.append("model size")
    size = f"{saved.config.num_layers} × {saved.config.hidden_size} {saved.config.cell.upper()}"
    note = "trained with the recipes.RECIPES settings" if not differs else f"settings differ from the recipe: {', '.join(differs)}"
    step = info.step if info else None
    val = info.last_val_bpc if info and info.last_val_bpc is not None else float("nan")
    return f"{size}, {step} steps, validation {val:.3f} bits/char; {note}"


def accuracy_table(accuracy: dict[int, float], label: str) -> str:
    keys = sorted(accuracy)
    rows = []
    for start in range(0, len(keys), 15):
        chunk = keys[start : start + 15]
        rows.append(f"    {label:<4}" + "".join(f"{k:>5}" for k in chunk))
        rows.append("    acc " + "".join(f"{accuracy[k]:>5.2f}" for k in chunk))
    return "\n".join(rows)


def ramps_over_the_as(model, vocab, task: str, layer: int) -> str:
    """Every cell at |r| ≥ 0.9 with the number of a's read, over the a's alone, of the held-out lines
    `charlstm corpus TASK --count 300 --seed 99` writes (docs/findings.md's test file). Many cells
    ramp through a run of a's; what singles out the counter is that it also counts the b's down."""
    text = "".join(line + "\n" for line in tasks.generate(task, 300, 99))
    ranked = recipes.rank_units(model, vocab, text, "count:a", vector="cell", layers=[layer],
                               where=lambda t: np.array([c == "a" for c in t]))
    ramps = [f"{u.unit} ({u.r:+.3f})" for u in ranked if abs(u.r) >= 0.9]
    return f"cells at |r| ≥ 0.9 with the a's read, over the a's of 300 other lines (--seed 99): {', '.join(ramps) or 'none'}"


def counter(model, vocab, task: str) -> None:
    report = reports.counter_report(model, vocab, task)
    u = report.unit
    print(f"greedy completion, {report.trials} prompts per N, each after a different held-out line:")
    print(accuracy_table(report.accuracy, "N"))
    low, high = report.train_range
    print(f"  training range {low}..{high}: {report.in_range:.1%} exact; always exact up to N = {report.extrapolates_to}; "
          f"exact beyond the range: {' '.join(map(str, report.correct_beyond)) or 'none'}")
    print(f"\ncounting unit: layer {u.layer}, cell {u.unit}")
    owed = f"r with the b's still owed (balance:ab), whole lines, {report.text_chars:,} chars:"
    print(f"  {owed} {u.r:+.3f}   (runner-up: unit {report.runner_up.unit}, r = {report.runner_up.r:+.3f})")
    counted = "r with the number of a's read, over the a's:"
    print(f"  {counted:<{len(owed)}} {report.r_count:+.3f}")
    print(f"  {ramps_over_the_as(model, vocab, task, u.layer)}")
    line = "\naaaaaXbbbbb\n" if task == "counter" else "\naXaaXXaaYbbbbb\n"
    print(f"  its cell along {line.strip()!r}:")
    print(unit_along(model, vocab, line, u.layer, u.unit))
    ablated = reports.counter_ablation(model, vocab, u, task)
    print(f"  ablated (cell = 0): {ablated.changed:.0%} of {ablated.prompts} completions change, "
          f"{ablated.target:.0%} still exact (N = 1..10)")
    if task == "selective-counter":
        g = reports.selective_gate_report(model, vocab, u)
        print(f"\ninput gate of cell {u.unit}:  on a {g.input_on_a:.3f}   on X {g.input_on_x:.3f}   "
              f"(X below 0.1: {g.x_below_01:.0%} of X's)")
        print(f"  all units, for comparison:  on a {g.input_on_a_all:.3f}   on X {g.input_on_x_all:.3f}")
        print(f"  what it writes into the cell, mean |i·g|:  on a {g.write_on_a:.3f}   on X {g.write_on_x:.3f}")
        print("  its input gate along 'aXaaXXaaYbbbbb':")
        print(unit_along(model, vocab, "\naXaaXXaaYbbbbb\n", u.layer, u.unit, "input"))


def memorizer(model, vocab) -> None:
    report = reports.memorizer_report(model, vocab)
    print(f"answer after Y, {report.trials} prompts per gap and letter, each after a different held-out line:")
    print(accuracy_table(report.accuracy, "gap"))
    print(f"  overall {report.overall:.1%}")
    print("\nmemory units (cell, from the letter to Y inclusive, 400 held-out lines):")
    print("    role     unit   mean on A lines   mean on B lines   at Y (A)   at Y (B)     d′    held")
    for role, m in (("A-unit", report.a_unit), ("B-unit", report.b_unit)):
        print(f"    {role:<8} {m.unit:>4}   {m.mean_a:>15.3f}   {m.mean_b:>15.3f}   {m.at_y_a:>8.3f}   {m.at_y_b:>8.3f}"
              f"   {m.d_prime:>5.2f}   {m.held:>5.0%}")
    print("    (d′: separation in pooled standard deviations; held: lines on which the unit stays on its"
          " letter's side of the midpoint at every character)")
    for m in (report.a_unit, report.b_unit):
        print(f"  cell {m.unit} along 'AxxxxxxYa' and 'BxxxxxxYb':")
        print(unit_along(model, vocab, "\nAxxxxxxYa\n", report.layer, m.unit))
        print(unit_along(model, vocab, "\nBxxxxxxYb\n", report.layer, m.unit))
    print("\nedits (every step of the prompt, greedy answer; 10 gaps × 5 preceding lines = 50 prompts each):")
    for e in reports.memorizer_edits(model, vocab, report):
        what = f"{e.role} (cell {e.unit}) pinned at {e.value:+.3f}" if e.value else f"{e.role} (cell {e.unit}) ablated (0)"
        line = f"    {what:<40} reading {e.reading} lines: answer changes on {e.effect.changed:>4.0%}"
        if e.value:
            line += f", becomes '{'a' if e.reading == 'B' else 'b'}' on {e.effect.target:.0%}"
        print(line)


def copy(model, vocab) -> None:
    for vector in ("hidden", "cell"):
        report = reports.copy_report(model, vocab, vector=vector)
        if vector == "hidden":
            print(f"all {len(report.per_sequence)} sequences × {report.trials} preceding lines copied exactly: "
                  f"{report.accuracy:.1%}")
        print(f"\n{vector} state over the copy phase ({report.positions:,} positions: after X, s0, s1):")
        print("    η²(next): share of a unit's variance explained by the character it is about to write;")
        print("    η²(slot): the most explained by any one stored position s0, s1 or s2.")
        print("    unit  η²(next)  η²(slot)  slot  prefers")
        for u in report.units[:8]:
            print(f"    {u.unit:>4}  {u.eta_next:>8.3f}  {u.eta_slot:>8.3f}  {'s' + str(u.slot):>4}  {u.prefers:>7}")
        print(f"    … {len(report.next_char_units)} of {len(report.units)} units are explained better by the next "
              f"character than by any slot")
        stored = max(report.units, key=lambda u: u.eta_slot)      # the best candidate for a unit that stores a slot
        print(f"    most slot-like: unit {stored.unit}, η²(s{stored.slot}) {stored.eta_slot:.3f}, "
              f"η²(next) {stored.eta_next:.3f}")
        if vector == "hidden":
            top = report.units[:6]
    print("\nablation, teacher-forced (the copy so far is given; does the model write the right next character?):")
    print("    unit  prefers  error where next = preferred   error elsewhere   (no edit: error)")
    for a in reports.copy_ablation(model, vocab, top):
        print(f"    {a.unit:>4}  {a.prefers:>7}  {a.error_on_preferred:>28.1%}   {a.error_elsewhere:>15.1%}   "
              f"({a.baseline_error:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=list(recipes.RECIPES))
    parser.add_argument("checkpoint", type=Path)
    args = parser.parse_args()
    with recipes.torch_threads(1):
        model, vocab = charlstm.load(args.checkpoint)
        print(f"{args.task}: {args.checkpoint} — {recipe_note(args.checkpoint, args.task)}\n")
        if args.task in ("counter", "selective-counter"):
            counter(model, vocab, args.task)
        elif args.task == "memorizer":
            memorizer(model, vocab)
        else:
            copy(model, vocab)


if __name__ == "__main__":
    main()
