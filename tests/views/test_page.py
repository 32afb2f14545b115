"""views/page.py, the HTML page: self-contained, escaped, drawn again from the facts it embeds, and
working in a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import CELLS, ModelConfig
from charlstm.inspection.tracing import trace
from charlstm.views.page import (PAGE_MOST_CHARS, PAGE_STATES, PAGE_WORK, build_page, page_chars, page_work,
                                 read_page, redraw)
from charlstm.views.colours import value_rgb
from chromium import close_to, open_browser
from conftest import ROOT, run_cli

HOSTILE = 'A "quote" & <b>bold</b>\n</script><script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\n\tend'


@pytest.fixture(scope="module")
def hostile():
    """A small random model whose vocabulary holds every character HTML cares about, and its vocabulary."""
    torch.manual_seed(0)
    vocab = Vocab.from_text(HOSTILE + "abcdefghijklmnopqrstuvwxyz")
    return CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2)).eval(), vocab


@pytest.fixture(scope="module")
def hostile_trace(hostile):
    model, vocab = hostile
    return trace(model, vocab, HOSTILE)


def hostile_page(hostile, hostile_trace, *args, **kwargs) -> str:
    """build_page of the hostile model reading HOSTILE."""
    model, vocab = hostile
    return build_page(hostile_trace, model, vocab.chars, *args, **kwargs)


def _embedded_json(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="charlstm-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_page_escapes_the_text_and_embeds_json_safely(hostile, hostile_trace):
    page = hostile_page(hostile, hostile_trace, "run <1>", layer=2, vector="cell", neuron=3)
    # The corpus text appears only escaped: no tag from it reaches the page.
    assert "<script>window.pwned" not in page and "<img" not in page and "<b>bold" not in page
    assert "<span>&lt;</span><span>/</span><span>s</span>" in page
    spans = re.search(r'<div id="text">(.*?)</div>', page, re.S).group(1)
    assert html.unescape(re.sub(r"</?span>", "", spans)) == HOSTILE.replace("\n", "↵\n").replace("\t", "→\t")
    # Exactly three script elements (data, the shared colours, code) and nothing in the data can end its block.
    assert page.count("<script") == 3 and page.count("</script>") == 3
    block = re.search(r'id="charlstm-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and ">" not in block and "&" not in block
    data = _embedded_json(page)
    assert "".join(data["chars"]) == HOSTILE and data["title"] == "run <1>"
    assert "run &lt;1&gt;" in page
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page


def test_a_page_holds_the_model_not_its_traces(hostile, hostile_trace):
    """The page embeds the weights as float32 exactly, each unit's colour scale as colours.vector_scale
    chooses it, and no traced value."""
    model, _ = hostile
    data = _embedded_json(hostile_page(hostile, hostile_trace, "t", layer=1, vector="hidden", neuron=0))
    assert "traces" not in data and data["model"]["cell"] == "lstm" and data["model"]["hidden"] == 8
    head = np.frombuffer(base64.b64decode(data["model"]["weights"]["headW"]), dtype="<f4").reshape(model.head.weight.shape)
    assert np.array_equal(head, model.head.weight.detach().numpy())
    for layer in (1, 2):
        cell = hostile_trace.layers[layer - 1]["cell"].abs().amax(dim=0)
        assert np.allclose(data["scales"][str(layer)]["cell"], cell.numpy())
        assert data["scales"][str(layer)]["forget"] == [1.0] * 8 and data["scales"][str(layer)]["hidden"] == [1.0] * 8


def test_page_budget_follows_the_work_the_browser_does():
    lstm = ModelConfig(vocab_size=97, hidden_size=256, num_layers=2, embedding_size=64)
    assert page_work(lstm) == 4 * 256 * 256 * 3               # W_hh of both layers, W_ih of the second
    assert page_chars(20_000, lstm) == 20_000                 # charlstm's default shape: the whole analysed text
    assert page_chars(10**6, lstm) == min(PAGE_MOST_CHARS, PAGE_WORK // page_work(lstm), PAGE_STATES // (2 * 256 * 2))
    wide = ModelConfig(vocab_size=97, hidden_size=1024, num_layers=3, embedding_size=64)
    assert page_chars(20_000, wide) == PAGE_WORK // (4 * 1024 * 1024 * 5) < 20_000     # more work a character, fewer
    tiny = ModelConfig(vocab_size=97, hidden_size=8, num_layers=1, embedding_size=4, cell="rnn")
    assert page_chars(10**7, tiny) == PAGE_MOST_CHARS and page_chars(100, tiny) == 100


def test_a_page_is_drawn_again_from_the_facts_it_embeds(hostile, hostile_trace):
    page = hostile_page(hostile, hostile_trace, "run <1>", layer=2, vector="cell", neuron=3, notice="cut <here> & there")
    facts, notice = read_page(page)
    assert notice == "cut <here> & there" and facts["chars"] == list(HOSTILE)
    assert "drawn" not in facts and set(facts["vectors"]) == set(hostile_trace.vectors)     # drawing adds the rest
    assert redraw(page) == page


def test_committed_findings_pages_are_what_page_py_draws_today():
    """docs/findings/*.html carry page.py's script, style and glyphs: each must be what page.py draws
    from the facts it embeds now, so a change to the drawing code cannot leave them behind."""
    pages = sorted((ROOT / "docs" / "findings").glob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        committed = page.read_text(encoding="utf-8")
        assert read_page(committed)[0]["predict"] is not None and read_page(committed)[0]["atlas"] is not None
        assert redraw(committed) == committed, (
            f"{page.name} was drawn by an older page.py; redraw it: python -m charlstm.views.page docs/findings/*.html")


def test_redraw_command_brings_a_stale_page_up_to_date(hostile, hostile_trace, tmp_path):
    page = hostile_page(hostile, hostile_trace, "t", layer=1, vector="hidden", neuron=0)
    stale = tmp_path / "stale.html"
    stale.write_text(page.replace('"use strict";', '"use strict"; // an older script'), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "charlstm.views.page", str(stale)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert stale.read_text(encoding="utf-8") == page and sorted(p.name for p in tmp_path.iterdir()) == ["stale.html"]


def test_redraw_refuses_a_page_that_holds_traces_in_one_line(hostile, hostile_trace, tmp_path):
    """A page drawn from traces (before pages ran the model) cannot be drawn again: one line naming the
    command that draws it anew, a non-zero exit, the page untouched."""
    data = _embedded_json(hostile_page(hostile, hostile_trace, "t", layer=1, vector="hidden", neuron=0))
    del data["model"]
    data["traces"] = {}
    old = tmp_path / "old.html"
    old.write_text('<script type="application/json" id="charlstm-data">' + json.dumps(data) + "</script>",
                   encoding="utf-8")
    before = old.read_bytes()
    done = subprocess.run([sys.executable, "-m", "charlstm.views.page", str(old)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "holds traces, not a model" in done.stderr and "charlstm inspect CHECKPOINT --html" in done.stderr
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.html"]


def test_cli_writes_a_page_and_says_when_it_cuts_the_text(trained_run, tmp_path, monkeypatch):
    out = tmp_path / "page.html"
    result = run_cli("inspect", str(trained_run), "--html", str(out), "--neuron", "5",
                                       "--text", "To be, or not to be: that is the question.")
    assert result.exit_code == 0, result.output
    data = _embedded_json(out.read_text(encoding="utf-8"))
    assert data["layers"] == [1, 2] and data["vectors"] == ["input", "forget", "candidate", "output", "cell", "hidden"]
    assert data["initial"] == {"layer": 2, "vector": "hidden", "neuron": 5}
    assert "wrote" in result.stderr and result.stdout == ""

    import charlstm.views.page

    monkeypatch.setattr(charlstm.views.page, "PAGE_MOST_CHARS", 20)
    result = run_cli("inspect", str(trained_run), "--html", str(out), "--vector", "cell,hidden",
                                       "--layer", "1", "--text", "To be, or not to be: that is the question.")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    data = _embedded_json(page)
    assert data["length"] == 20 and data["layers"] == [1] and data["vectors"] == ["cell", "hidden"]
    assert "first 20 of 42 characters" in result.stderr and "first 20 of 42 characters" in page


# ----------------------------------------------------------------------------------- a real browser


def test_page_in_headless_chromium(hostile, hostile_trace, tmp_path):
    """Open the page, switch neuron with a real click, hover a character, and check colours and values."""
    browser = open_browser(tmp_path / "profile")
    path = tmp_path / "page.html"
    path.write_text(hostile_page(hostile, hostile_trace, "hostile", layer=2, vector="cell", neuron=3), encoding="utf-8")
    try:
        browser.open(path.as_uri() + "#layer=1&vector=hidden&neuron=2")
        browser.until("document.body.dataset.done === '1'")
        colours = "Array.from(document.querySelectorAll('#text span')).map(s => s.style.backgroundColor)"

        def expected(layer, vector, neuron):
            values = hostile_trace.values(layer, vector, neuron).tolist()
            scale = max(abs(v) for v in values) if vector == "cell" else 1.0
            return [value_rgb(v, vector == "forget", scale) for v in values]

        # The hash chose the view; every character's background is the terminal's colour for its value.
        assert browser.js("location.hash") == "#layer=1&vector=hidden&neuron=2"
        first = browser.js(colours)
        assert close_to(first, expected(1, "hidden", 2)), first[:5]

        # A real click on "next neuron" switches to neuron 3: new colours, and the address follows.
        browser.click("#next")
        second = browser.js(colours)
        assert browser.js("document.getElementById('neuron').value") == "3"
        assert browser.js("location.hash") == "#layer=1&vector=hidden&neuron=3"
        assert second != first and close_to(second, expected(1, "hidden", 3))

        # Choosing another vector and layer in the selects.
        browser.js("(() => { const v = document.getElementById('vector'); v.value = 'forget';"
                   " v.dispatchEvent(new Event('change')); const l = document.getElementById('layer'); l.value = '2';"
                   " l.dispatchEvent(new Event('change')); })()")
        assert close_to(browser.js(colours), expected(2, "forget", 3))

        # Hovering a character shows its value to three decimals.
        x, y = browser.centre("#text span", 4)
        browser.mouse("mouseMoved", x, y)
        info = browser.js("document.getElementById('info').textContent")
        value = hostile_trace.values(2, "forget", 3)[4].item()
        assert info.startswith(f"position 4 {json.dumps(HOSTILE[4])}") and f"▸forget {value:+.3f}" in info, info

        # The corpus's <script> and onerror never ran; they are text on the page.
        assert browser.js("typeof window.pwned") == "undefined"
        assert browser.js("document.querySelectorAll('img, b').length") == 0
        assert "</script><script>window.pwned = 1</script>" in browser.js("document.getElementById('text').textContent")

        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
        (tmp_path / "page.png").write_bytes(shot)            # kept out of git, in pytest's tmp dir
        assert shot.startswith(b"\x89PNG")
    finally:
        browser.close()


# ------------------------------------------------------------- every cell kind, computed in the browser

#: Every unit of every vector of every layer the page offers, at every character, as the page computes them.
ALL_UNITS = ("JSON.stringify(Object.fromEntries(DATA.layers.flatMap((l) => DATA.vectors.flatMap((v) =>"
             " Array.from({length: H}, (_, n) => ['L' + l + '.' + v + '[' + n + ']',"
             " Array.from({length: T}, (_, t) => unitAt(l, v, n, t))])))))")
#: The probabilities the page shows under each character: the head over the last layer's kept state.
ALL_GUESSES = "JSON.stringify(Array.from({length: T}, (_, t) => Array.from(softmax(NET.logits(stateAt(states[NET.L - 1].h, t))))))"
DONE = "document.body.dataset.done === '1'"


@pytest.mark.parametrize("cell", CELLS)
def test_every_unit_and_guess_is_what_python_computes(cell_runs, browser, cell, tmp_path):
    """The page computes every unit of every vector (hidden and cell read from the states it keeps, the
    rest computed for one unit at a time) within 1e-3 of `inspect --format json`, and its guesses as
    the model's softmax: the same likeliest character, every probability within 1e-3."""
    import charlstm

    out, page = cell_runs[cell], tmp_path / "page.html"
    text = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer"
    made = run_cli("inspect", out, "--html", page, "--text", text)
    assert made.exit_code == 0, made.output
    record = json.loads(run_cli("inspect", out, "--text", text, "--layer", "all", "--vector", "all", "--neuron", "all",
                                "--format", "json").stdout)
    browser.open(page.as_uri())
    browser.until(DONE)
    shown, inspected = json.loads(browser.js(ALL_UNITS)), record["traces"]
    assert set(shown) == set(inspected) and len(inspected) == 2 * 24 * len(record["vectors"])
    worst = max(abs(a - b) for key in inspected for a, b in zip(shown[key], inspected[key], strict=True))
    assert worst <= 1e-3, worst
    model, vocab = charlstm.load(out)
    probs = torch.softmax(trace(model, vocab, text).logits.double(), dim=-1).numpy()         # (T, V)
    guessed = np.array(json.loads(browser.js(ALL_GUESSES)))
    assert guessed.shape == probs.shape and np.abs(guessed - probs).max() <= 1e-3
    assert (guessed.argmax(axis=1) == probs.argmax(axis=1)).all()


def test_a_2x256_lstm_page_of_20000_characters_is_small_and_shows_them_all(shakespeare_text, browser, tmp_path):
    """charlstm's default shape on 20,000 characters (what `inspect --html` reads by default): every
    character shown, the page at most 6 MB, and the browser's pass over it reaches the last character."""
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text, encoding="utf-8")
    run = tmp_path / "run"
    trained = run_cli("train", corpus, "--out", run, "--hidden-size", "256", "--num-layers", "2", "--embedding-size",
                      "64", "--batch-size", "4", "--seq-len", "32", "--max-steps", "2", "--eval-every", "2",
                      "--preview", "0")
    assert trained.exit_code == 0, trained.output
    page, text = tmp_path / "page.html", tmp_path / "text.txt"
    text.write_text(shakespeare_text[-20_000:], encoding="utf-8")
    made = run_cli("inspect", run, "--html", page, "--text-file", text)
    assert made.exit_code == 0, made.output
    data = _embedded_json(page.read_text(encoding="utf-8"))
    assert data["length"] == 20_000 and "".join(data["chars"]) == shakespeare_text[-20_000:]
    assert data["model"]["hidden"] == 256 and data["atlas"] is not None and "shows the first" not in made.stderr
    assert page.stat().st_size <= 6_000_000, page.stat().st_size
    browser.open(page.as_uri() + "#layer=2&vector=forget&neuron=7")
    browser.until(DONE, timeout=600)
    assert browser.js("document.querySelectorAll('#text span').length") == 20_000
    assert browser.js("document.querySelectorAll('#text span')[19999].style.backgroundColor") != ""
    assert browser.js("document.getElementById('stats').textContent").startswith("min ")


_DRAW = r"""
import sys, torch
from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.inspection.tracing import trace
from charlstm.model.network import CharModel
from charlstm.views.page import build_page, page_need, scaled_vectors

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

torch.manual_seed(0)
text = ("Er sprach: \"中文 诗 🙂\" & <b>bold</b>\n" * 200)[:6_000]
vocab = Vocab.from_text(text)
config = ModelConfig(vocab_size=len(vocab), hidden_size=512, embedding_size=64, num_layers=2)
model = CharModel(config).eval()
result = trace(model, vocab, text, vectors=scaled_vectors(config.vectors))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                   # the peak from here on: drawing the page alone
before = status("VmRSS")
page = build_page(result, model, vocab.chars, "t", 1, "hidden", 0, vectors=config.vectors).encode("utf-8")
print(status("VmHWM") - before, page_need(config).total(len(text)), len(page))
"""


def test_drawing_a_page_holds_no_more_than_the_memory_check_counts(tmp_path):
    """The bytes `inspect --html` weighs up front for drawing a page (page_need) cover what drawing one
    holds at its peak (RSS), for a 2×512 LSTM on a text beyond Latin-1 (four bytes a character)."""
    done = subprocess.run([sys.executable, "-c", _DRAW], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    peak, counted, size = map(int, done.stdout.split())
    assert size > 4_000_000 and 0 < peak <= counted, (peak, counted, size)
