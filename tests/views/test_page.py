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
from charlstm.config import ModelConfig
from charlstm.inspection.tracing import trace
from charlstm.views.page import PAGE_VALUE_BUDGET, build_page, page_chars, read_page, redraw
from charlstm.views.colours import value_rgb
from chromium import close_to, open_browser
from conftest import ROOT, run_cli

HOSTILE = 'A "quote" & <b>bold</b>\n</script><script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\n\tend'


@pytest.fixture(scope="module")
def hostile_trace():
    """A small random model whose vocabulary holds every character HTML cares about."""
    torch.manual_seed(0)
    vocab = Vocab.from_text(HOSTILE + "abcdefghijklmnopqrstuvwxyz")
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2)).eval()
    return trace(model, vocab, HOSTILE)


def _embedded_json(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="charlstm-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_page_escapes_the_text_and_embeds_json_safely(hostile_trace):
    page = build_page(hostile_trace, "run <1>", layer=2, vector="cell", neuron=3)
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


def test_page_values_survive_quantisation(hostile_trace):
    data = _embedded_json(build_page(hostile_trace, "t", layer=1, vector="hidden", neuron=0))
    T, H = data["length"], data["hiddenSize"]
    for layer in (1, 2):
        for vector in ("cell", "forget", "hidden"):
            packed = data["traces"][str(layer)][vector]
            codes = np.frombuffer(base64.b64decode(packed["q"]), dtype="<u2").reshape(H, T)
            lo, hi = np.array(packed["lo"]), np.array(packed["hi"])
            decoded = lo[:, None] + codes / 65535.0 * (hi - lo)[:, None]               # (H, T)
            exact = hostile_trace.layers[layer - 1][vector].numpy().T
            assert np.abs(decoded - exact).max() <= (hi - lo).max() / 65535 + 1e-6


def test_page_budget():
    assert page_chars(100, 2, 6, 256) == 100
    assert page_chars(100_000, 2, 6, 256) == PAGE_VALUE_BUDGET // (2 * 6 * 256)
    assert page_chars(100_000, 2, 1, 256, budget=5120) == 10


def test_a_page_is_drawn_again_from_the_facts_it_embeds(hostile_trace):
    page = build_page(hostile_trace, "run <1>", layer=2, vector="cell", neuron=3, notice="cut <here> & there")
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


def test_redraw_command_brings_a_stale_page_up_to_date(hostile_trace, tmp_path):
    page = build_page(hostile_trace, "t", layer=1, vector="hidden", neuron=0)
    stale = tmp_path / "stale.html"
    stale.write_text(page.replace('"use strict";', '"use strict"; // an older script'), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "charlstm.views.page", str(stale)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert stale.read_text(encoding="utf-8") == page and sorted(p.name for p in tmp_path.iterdir()) == ["stale.html"]


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

    monkeypatch.setattr(charlstm.views.page, "PAGE_VALUE_BUDGET", 20 * 2 * 48)      # 20 characters of 2 vectors
    result = run_cli("inspect", str(trained_run), "--html", str(out), "--vector", "cell,hidden",
                                       "--layer", "1", "--text", "To be, or not to be: that is the question.")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    data = _embedded_json(page)
    assert data["length"] == 20 and data["layers"] == [1] and data["vectors"] == ["cell", "hidden"]
    assert "first 20 of 42 characters" in result.stderr and "first 20 of 42 characters" in page


# ----------------------------------------------------------------------------------- a real browser


def test_page_in_headless_chromium(hostile_trace, tmp_path):
    """Open the page, switch neuron with a real click, hover a character, and check colours and values."""
    browser = open_browser(tmp_path / "profile")
    path = tmp_path / "page.html"
    path.write_text(build_page(hostile_trace, "hostile", layer=2, vector="cell", neuron=3), encoding="utf-8")
    try:
        browser.open(path.as_uri() + "#layer=1&vector=hidden&neuron=2")
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
