"""Training choices at an equal number of steps: how charlstm's defaults were chosen.

    python benchmarks/tune.py SPEC [SPEC ...] [--steps 500] [--threads N] [--eval-every N]

Each SPEC trains a 2×256 LSTM (embedding 64, batch 64, windows of 100) on Karpathy's
tiny-shakespeare (90/10 split) for --steps steps and scores the whole validation text with the
same evaluator; the runs go one after another in this process. A SPEC is one of

    ref                          the plain loop of common.py: Adam 2e-3, random windows, fresh state
    ref:tbptt                    the same loop on charlstm's carried-state streams (TBPTT)
    ref:forget1                  the plain loop with the forget-gate bias set to 1 (char-rnn's init)
    charlstm                     `charlstm.train` with its defaults (its schedule fitted to --steps)
    charlstm:lr=2e-3,decay=0.2   … with TrainConfig fields changed (short names below, or full ones)
    charlstm:model.dropout=0.2   … with ModelConfig fields changed (model.FIELD)

The score is of the run's last model: the better of its weights and their moving average
(`charlstm:ema_decay=0` for the weights alone). --eval-every N prints the evaluations on the way.

Short names: lr=learning_rate, decay=decay_fraction, floor=min_lr_ratio, warmup=warmup_steps,
wd=weight_decay, clip=grad_clip, batch=batch_size, seq=seq_len, short=short_windows, steps=max_steps
(this spec's own step count: `charlstm:steps=1320` trains as many characters as 1,100 steps of
whole windows, a third of them in half windows).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import ReferenceLSTM, load_tiny_shakespeare, machine, random_windows

from charlstm.config import ModelConfig, TrainConfig
from charlstm.data.streams import fit_layout, stream_batch
from charlstm.data.vocab import Vocab
from charlstm.files import METRICS
from charlstm.model.network import CharModel
from charlstm.runs import checkpoint as ckpt
from charlstm.training.loop import train
from charlstm.training.validation import evaluate

LN2 = math.log(2.0)
SHORT = {"lr": "learning_rate", "decay": "decay_fraction", "floor": "min_lr_ratio", "warmup": "warmup_steps",
         "wd": "weight_decay", "clip": "grad_clip", "batch": "batch_size", "seq": "seq_len",
         "short": "short_windows", "steps": "max_steps"}


def reference(train_ids: np.ndarray, vocab: int, steps: int, tbptt: bool, forget1: bool) -> torch.nn.Module:
    torch.manual_seed(1337)
    # The same layers built in the same order, so the same weights; charlstm's model sets the forget bias.
    model = CharModel(ModelConfig(vocab_size=vocab, forget_bias=1.0)) if forget1 else ReferenceLSTM(vocab)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    ids = torch.from_numpy(train_ids)
    layout = fit_layout(len(train_ids), 64, 100, 1337)
    state = None
    for step in range(steps):
        if tbptt:
            if layout.position(step)[1] == 0:      # a new epoch: new stream offsets, stale state
                state = None
            x, y = (torch.from_numpy(a.astype(np.int64)) for a in stream_batch(train_ids, layout, step))
        else:
            x, y = random_windows(ids, 64, 100, gen)
        logits, new_state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = tuple(s.detach() for s in new_state) if tbptt else None
    return model


def charlstm(text: str, steps: int, overrides: dict, threads: int | None = None,
             eval_every: int | None = None) -> torch.nn.Module:
    """The run's last model (the better of the weights and their average, see charlstm/average.py);
    with `eval_every`, each evaluation on the way is printed: the model's figure and, when the
    average is kept, the training weights' (the same 10% validation text as the final score)."""
    model = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
    overrides = {k: v for k, v in overrides.items() if not k.startswith("model.")}
    config = TrainConfig(**{"max_steps": steps, "time_budget": None, "val_fraction": 0.1, "preview_chars": 0,
                            "eval_every": eval_every or 10**9, "eval_seconds": None, **overrides})
    with tempfile.TemporaryDirectory() as out:
        train(text, f"{out}/run", ModelConfig(vocab_size=1, **model), config, threads=threads)
        for line in open(f"{out}/run/{METRICS}", encoding="utf-8") if eval_every else ():
            record = json.loads(line)
            if record.get("val_loss") is not None:
                kept = "the average" if record.get("averaged") else "the weights"
                other = (f", training weights {record['training_val_bpc'] * LN2:.4f}"
                         if "training_val_bpc" in record else "")
                print(f"    step {record['step']:>6}: {record['val_loss']:.4f} nats ({kept}){other}", flush=True)
        return ckpt.load(f"{out}/run/{ckpt.LATEST}").model()


def parse(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    if name == "ref":
        flags = set(filter(None, rest.split(",")))
        unknown = flags - {"tbptt", "forget1"}
        if unknown:
            raise SystemExit(f"unknown ref option(s): {', '.join(sorted(unknown))}")
        return name, {"tbptt": "tbptt" in flags, "forget1": "forget1" in flags}
    if name != "charlstm":
        raise SystemExit(f"a SPEC starts with ref or charlstm, not {name!r}")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key.startswith("model."):
            if key[len("model."):] not in ModelConfig.__dataclass_fields__:
                raise SystemExit(f"unknown ModelConfig field {key!r}")
            default = getattr(ModelConfig, key[len("model."):])
            overrides[key] = value if isinstance(default, str) else type(default)(float(value))
            continue
        field = SHORT.get(key, key)
        default = getattr(TrainConfig, field, None)
        if field not in TrainConfig.__dataclass_fields__:
            raise SystemExit(f"unknown TrainConfig field {key!r}")
        if field == "max_steps":
            overrides[field] = int(value)
            continue
        overrides[field] = type(default)(float(value)) if isinstance(default, (int, float)) else float(value)
    return name, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None,
                        help="pin charlstm's thread count (default: chosen by timing; 1 lets two specs run side by side)")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="also evaluate charlstm specs every N steps on the way and print the figures")
    args = parser.parse_args()
    specs = [(spec, *parse(spec)) for spec in args.specs]
    text = load_tiny_shakespeare()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text).astype(np.int64)
    n_train = int(len(ids) * 0.9)
    print(f"machine: {machine()}")
    print(f"tiny-shakespeare 90/10, 2x256 LSTM, {args.steps} steps of 64 x 100 characters\n")
    for spec, name, options in specs:
        start = time.perf_counter()
        if name == "ref":
            model = reference(ids[:n_train], len(vocab), args.steps, **options)
        else:
            model = charlstm(text, args.steps, options, args.threads, args.eval_every)
        loss = evaluate(model, ids[n_train:], 100, torch.device("cpu")) * LN2
        print(f"{spec:52} {loss:.4f} nats  {loss / LN2:.3f} bpc  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
