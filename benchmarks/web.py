"""The model page (`charlstm export --html`) in headless Chromium vs `charlstm sample`, same model, same run.

    python benchmarks/web.py [--run RUN] [--chars 2000] [--train-seconds 40] [--inspect-chars 20000]

On a 2×256 LSTM (embedding 64; trained for --train-seconds on corpora/shakespeare.txt unless --run
names one): argmax generation in the page's JavaScript and in `charlstm sample --temperature 0`
(its own chars/s line), in characters per second, and their ratio; the time of one keystroke in the
page (reread the changed text, the five guesses, the unit's strip and the cell diagram) after 200
typed characters; and what float16 weights would cost: the largest difference of any unit value
from float32 over the text, and where an argmax sample first parts from float32's. And the inspect
page (`charlstm inspect --html`) of --inspect-chars characters, which carries the model and reads the
text in the browser: its size beside what its traces would take at 16 bits, and the time of its pass.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, machine

sys.path.insert(0, str(ROOT / "tests"))
from chromium import open_browser  # noqa: E402

import charlstm  # noqa: E402
from charlstm.config import ModelConfig, SampleConfig, TrainConfig  # noqa: E402
from charlstm.generation.sampling import sample_text  # noqa: E402
from charlstm.inspection.tracing import trace  # noqa: E402

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 4


def trained(work: Path, seconds: float) -> Path:
    out = work / "run"
    corpus = (ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")
    charlstm.train(corpus, out, ModelConfig(vocab_size=1, hidden_size=256, num_layers=2, embedding_size=64),
                   TrainConfig(time_budget=seconds, eval_every=10_000, eval_seconds=seconds, preview_chars=0))
    return out


def sample_rate(run: Path, chars: int) -> float:
    done = subprocess.run([sys.executable, "-m", "charlstm", "sample", str(run), "--temperature", "0", "--length",
                           str(chars), "--threads", "1"], capture_output=True, text=True, check=True)
    return float(re.search(r"at ([\d,]+) chars/s", done.stderr).group(1).replace(",", ""))


def evaluate(browser, expression: str):
    reply = browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                         timeout=600)
    return reply["result"]["value"]


def page_rates(page: Path, chars: int, profile: Path) -> tuple[float, float, dict]:
    """(argmax chars/s in the page, median ms of one keystroke after 200 characters, every unit's
    values over TEXT as the page computes them: "L1.cell" → (T, H) lists)."""
    browser = open_browser(profile)
    try:
        browser.open(page.as_uri())
        rate = evaluate(browser, "new Promise((done) => { const t = performance.now(); generate({prime: '', length: "
                        f"{chars}, temperature: 0, topK: null, topP: null, seed: '0', stop: [], unknown: 'skip'}}, "
                        f"() => done({chars} / ((performance.now() - t) / 1000))); }})")
        keystroke = evaluate(browser, "(() => { const t = document.getElementById('typed'), times = [];"
                             f" t.value = {TEXT[:200]!r}; update(); sel.pos = 0;"
                             " for (let i = 0; i < 21; i++) { const s = performance.now(); t.value += 'e';"
                             " t.dispatchEvent(new Event('input')); times.push(performance.now() - s); }"
                             " times.sort((a, b) => a - b); return times[10]; })()")
        units = evaluate(browser, f"(() => {{ document.getElementById('typed').value = {TEXT!r}; update();"
                         " return Object.fromEntries([...Array(L).keys()].flatMap((k) => DATA.vectors.map((v) =>"
                         " ['L' + (k + 1) + '.' + v, reading.records.map((r) => Array.from(r[k][v]))]))); })()")
        return rate, keystroke, units
    finally:
        browser.close()


def inspect_page(run: Path, work: Path, chars: int) -> tuple[Path, float]:
    """(the `charlstm inspect --html` page of `chars` characters of Shakespeare's end, the seconds
    from opening it in headless Chromium to the end of its pass over the text)."""
    import time

    text = work / "scene.txt"
    text.write_text((ROOT / "corpora" / "shakespeare.txt").read_text(encoding="utf-8")[-chars:], encoding="utf-8")
    page = work / "inspect.html"
    subprocess.run([sys.executable, "-m", "charlstm", "inspect", str(run), "--html", str(page), "--text-file",
                    str(text)], check=True, capture_output=True)
    browser = open_browser(work / "profile-inspect")
    try:
        started = time.perf_counter()
        browser.open(page.as_uri())
        while browser.js("document.body.dataset.done") != "1":
            time.sleep(0.05)
        return page, time.perf_counter() - started
    finally:
        browser.close()


def float16_cost(run: Path, chars: int) -> tuple[float, int | None]:
    """(largest |unit value difference| over TEXT with float16-rounded weights, first character at
    which a `chars`-long argmax sample differs, or None)."""
    model, vocab = charlstm.load(run)
    half = charlstm.load(run)[0]
    with torch.no_grad():
        for p in half.parameters():
            p.copy_(p.half().float())
    a, b = trace(model, vocab, TEXT), trace(half, vocab, TEXT)
    worst = max((a.layers[k][v] - b.layers[k][v]).abs().max().item() for k in range(len(a.layers)) for v in a.vectors)
    config = SampleConfig(length=chars, temperature=0)
    x, y = sample_text(model, vocab, "", config)[0], sample_text(half, vocab, "", config)[0]
    return worst, next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--train-seconds", type=float, default=40.0)
    parser.add_argument("--inspect-chars", type=int, default=20_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run or trained(work, args.train_seconds)
        page = work / "model.html"
        subprocess.run([sys.executable, "-m", "charlstm", "export", str(run), "--html", str(page)], check=True)
        print(f"page: {page.stat().st_size / 1e6:.2f} MB")
        sampled = sample_rate(run, args.chars)
        in_page, keystroke, units = page_rates(page, args.chars, work / "profile")
        model, vocab = charlstm.load(run)
        exact = trace(model, vocab, TEXT)
        page_worst = max((torch.tensor(units[f"L{k + 1}.{v}"]) - exact.layers[k][v]).abs().max().item()
                         for k in range(len(exact.layers)) for v in exact.vectors)
        print(f"argmax, {args.chars} chars: page {in_page:,.0f} chars/s, charlstm sample {sampled:,.0f} chars/s "
              f"(page / sample = {in_page / sampled:.2f})")
        print(f"keystroke after 200 characters (guesses, strip, diagram): {keystroke:.1f} ms (median of 21)")
        print(f"float32 page vs charlstm's trace over {len(TEXT)} characters: largest unit value difference "
              f"{page_worst:.2e}")
        shown, seconds = inspect_page(run, work, args.inspect_chars)
        config = model.config
        traces = args.inspect_chars * config.num_layers * len(config.vectors) * config.hidden_size * 2 * 4 / 3
        print(f"inspect --html of {args.inspect_chars:,} characters: page {shown.stat().st_size / 1e6:.2f} MB "
              f"(every unit's trace at 16 bits would be {traces / 1e6:.1f} MB); its pass over the text in the browser "
              f"{seconds:.1f} s from opening ({args.inspect_chars / seconds:,.0f} chars/s)")
        worst, parted = float16_cost(run, args.chars)
        print(f"float16 weights: largest unit value difference {worst:.2e}; argmax sample "
              + (f"parts from float32's at character {parted}" if parted is not None else f"same for {args.chars}"))


if __name__ == "__main__":
    main()
