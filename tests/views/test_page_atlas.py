"""views/page.py with inspection/atlas.py, the page that leads somewhere: an atlas index, the most
informative unit first, --find with --html, held-out text by default, next-character guesses under
each character, and LSTMVis-style matching, checked in the embedded data and driven in real headless
Chromium."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch

from charlstm.runs import checkpoint as ckpt
from charlstm.inspection.atlas import atlas_features, build_atlas, builtin_features, untrained_like
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig
from charlstm.views.page import PAGE_GUESSES, build_page, page_chars
from charlstm.views.colours import value_rgb, vector_scale
from charlstm.views.glyphs import alone
from charlstm.inspection.tracing import trace

from conftest import quoted_lines, run_cli
from chromium import close_to, open_browser

UNICODE = 'Er sprach: "中文 诗 🙂" & <b>bold</b></script><script>window.pwned=1</script>\r\n  (ok) 42\n'


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    path = tmp_path_factory.mktemp("probe") / "probe.txt"
    path.write_text(quoted_lines(40, seed=1), encoding="utf-8")
    return path


def _data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="charlstm-data">(.*?)</script>', page, re.S).group(1))


def _reference(run, text):
    """The trace of every vector, and the atlas `inspect --atlas` draws by default (an LSTM's memory: its
    cell units), which the page's index holds."""
    loaded = ckpt.load(ckpt.resolve(run))
    model = loaded.model(torch.device("cpu"))
    result = trace(model, loaded.vocab, text)
    baseline = trace(untrained_like(model), loaded.vocab, text)
    return loaded, result, build_atlas(result, atlas_features(text), loaded.config.kind.memory, baseline=baseline)


def test_page_opens_on_the_most_informative_unit_and_holds_the_atlas(quote_run, probe, tmp_path):
    out = tmp_path / "page.html"
    result = run_cli("inspect", str(quote_run), "--html", str(out), "--text-file", str(probe))
    assert result.exit_code == 0, result.output
    data = _data(out)
    text = probe.read_text(encoding="utf-8")
    loaded, traced, atlas = _reference(quote_run, text)
    best = next(u for u in atlas.units if u.saturation < 0.5)
    assert data["initial"] == {"layer": best.layer, "vector": best.vector, "neuron": best.unit}
    assert best.verdict == "tracks" and data["initial"] != {"layer": 1, "vector": "hidden", "neuron": 0}
    index = data["atlas"]
    assert len(index["units"]) == 16 and index["units"][0][:3] == [atlas.units[0].layer, atlas.units[0].vector,
                                                                      atlas.units[0].unit]
    # One story: the page ranks the units the terminal's atlas ranks, the same way, on the same text, and says so.
    terminal = json.loads(run_cli("inspect", str(quote_run), "--atlas", "--text-file", str(probe), "--format",
                                  "json").stdout)
    assert [u[:3] for u in index["units"]] == [[u["layer"], u["vector"], u["unit"]] for u in terminal["units"]]
    assert [u[9] for u in index["units"]] == [round(u["partial_r"] if u["kind"] == "state" else u["r"], 4)
                                              for u in terminal["units"]]
    assert [u[13] for u in index["units"]] == [None if u["ablation_bpc"] is None else round(u["ablation_bpc"], 4)
                                               for u in terminal["units"]]
    assert index["text"].startswith(f"ranked on {len(text):,} characters of --text-file {probe}; cell units")
    # Each listed unit's histogram counts every character, and its examples sit at rising quantiles.
    detail = index["detail"]
    assert len(detail) == 16 and all(sum(d["counts"]) == len(text) for d in detail)
    assert all([e[0] for e in d["examples"]] == sorted(e[0] for e in d["examples"]) for d in detail)
    quote = index["features"].index("double-quote")
    assert index["ranked"][quote][0][:3] == list(atlas.ranking("double-quote", 1)[0][:3])
    # The page computes the model's guesses under a hovered character: the top five.
    assert data["predict"] == {"k": 5} and PAGE_GUESSES == 5 and "ids" not in data["predict"]


def test_find_and_html_combine(quote_run, probe, tmp_path):
    out = tmp_path / "find.html"
    result = run_cli("inspect", str(quote_run), "--html", str(out), "--text-file", str(probe),
                                       "--find", "double-quote")
    assert result.exit_code == 0, result.output
    data = _data(out)
    _, _, atlas = _reference(quote_run, probe.read_text(encoding="utf-8"))
    layer, vector, unit, r = atlas.ranking("double-quote", 1)[0]
    assert data["initial"] == {"layer": layer, "vector": vector, "neuron": unit} and abs(r) > 0.85
    assert data["filter"] == "double-quote"
    regex = run_cli("inspect", str(quote_run), "--html", str(out), "--text-file", str(probe),
                                      "--find-regex", '"[^"\n]*"', "--vector", "hidden")
    assert regex.exit_code == 0, regex.output
    data = _data(out)
    assert data["filter"] == 'regex:"[^"\n]*"' and data["vectors"] == ["hidden"] and data["initial"]["neuron"] == unit
    # A --find feature that never varies on the text: one line, non-zero exit, no page.
    flat = run_cli("inspect", str(quote_run), "--html", str(tmp_path / "flat.html"), "--text-file",
                                     str(probe), "--find", "digit")
    assert flat.exit_code != 0 and "same at every character" in flat.output and not (tmp_path / "flat.html").exists()
    # --html still refuses what it cannot do.
    both = run_cli("inspect", str(quote_run), "--html", str(out), "--stats")
    assert both.exit_code == 2 and "cannot be combined" in both.output


def test_page_defaults_to_the_tail_of_the_training_corpus(trained_run, shakespeare_text, tmp_path):
    out = tmp_path / "tail.html"
    result = run_cli("inspect", str(trained_run), "--html", str(out), "--vector", "hidden,cell")
    assert result.exit_code == 0, result.output
    assert "training corpus plays.txt" in result.stderr and "held out from training" in result.stderr
    shown = "".join(_data(out)["chars"])
    budget = page_chars(20_000, ckpt.load(ckpt.resolve(trained_run)).config)
    assert shakespeare_text.endswith(shown) and budget - 200 <= len(shown) <= budget   # not a fresh sample
    assert "shows the first" not in result.stderr                                       # the whole analysed text


# ------------------------------------------------------------------------------------ in Chromium


def _select(browser, i: int, j: int) -> None:
    """Select characters i..j of the text as a mouse drag would, and let the page see the mouseup."""
    browser.js(f"(() => {{ const s = document.querySelectorAll('#text span'); const r = document.createRange();"
               f" r.setStart(s[{i}].firstChild, 0); r.setEnd(s[{j}].firstChild, s[{j}].firstChild.length);"
               " const g = getSelection(); g.removeAllRanges(); g.addRange(r);"
               " document.getElementById('text').dispatchEvent(new MouseEvent('mouseup', {bubbles: true})); })()")
    browser.js("new Promise((done) => setTimeout(done, 50))")


def _on_units(result, layer, vector, i, j, threshold):
    values = result.layers[layer - 1][vector].numpy()                                  # (T, H)
    scaled = values / np.asarray(vector_scale(vector, values))
    on = [n for n in range(values.shape[1]) if (scaled[i : j + 1, n] >= threshold).all()]
    together = (scaled[:, on] >= threshold).all(axis=1) if on else np.zeros(len(values), bool)
    return on, int(together.sum())


def test_page_index_predictions_and_match_in_chromium(quote_run, probe, tmp_path):
    out = tmp_path / "page.html"
    assert run_cli("inspect", str(quote_run), "--html", str(out), "--text-file",
                                     str(probe)).exit_code == 0
    data = _data(out)
    text = probe.read_text(encoding="utf-8")
    loaded, result, atlas = _reference(quote_run, text)
    first = data["initial"]
    browser = open_browser(tmp_path / "profile")
    try:
        browser.open(out.as_uri())
        browser.until("document.body.dataset.done === '1'")
        assert browser.js("location.hash") == f"#layer={first['layer']}&vector={first['vector']}&neuron={first['neuron']}"
        label = browser.js("document.getElementById('label').textContent")
        best = next(u for u in atlas.units if u.saturation < 0.5)
        assert label.startswith(f"tracks {best.feature}  r {best.label_r:+.3f} beyond the character (chance "
                                f"{best.label_chance:.2f}, held-out {best.heldout_r:+.3f})  ablation "), label
        assert "bits/char  promotes " in label
        rows = "Array.from(document.querySelectorAll('#atlas-list tbody tr')).map(tr => tr.dataset.key)"
        assert len(browser.js(rows)) == 16
        # A real table: a header, and one cell per column in every row.
        assert browser.js("Array.from(document.querySelectorAll('#atlas-list th')).map(th => th.textContent)") == [
            "unit", "feature", "r", "held-out", "chance", "verdict", "ablation", "promotes"]
        assert browser.js("new Set(Array.from(document.querySelectorAll('#atlas-list tbody tr')).map(tr => "
                          "tr.cells.length)).size") == 1
        # The opened unit's histogram and one example from each quantile, beside its label.
        assert browser.js("document.querySelectorAll('#atlas-unit .example').length") == 5
        assert browser.js("document.querySelector('#atlas-unit .hist').textContent").startswith(
            f"{float(result.values(best.layer, best.vector, best.unit).min()):+.3f}")

        # Filter by a feature: the units of highest |r| with it (all 16 here), the best first.
        browser.js("(() => { const f = document.getElementById('atlas-filter'); f.value = 'uppercase';"
                   " f.dispatchEvent(new Event('change')); })()")
        keys = browser.js(rows)
        assert len(keys) == 16
        assert keys[:3] == ["/".join(map(str, x[:3])) for x in atlas.ranking("uppercase", 3)]

        # A real click on the third row opens that unit: the address, the colours and the current row follow.
        browser.click("#atlas-list tbody tr:nth-child(3)")
        layer, vector, unit = keys[2].split("/")
        layer, unit = int(layer), int(unit)
        assert browser.js("location.hash") == f"#layer={layer}&vector={vector}&neuron={unit}"
        values = result.values(layer, vector, unit).tolist()
        scale = max(abs(v) for v in values) if vector == "cell" else 1.0
        colours = browser.js("Array.from(document.querySelectorAll('#text span')).map(s => s.style.backgroundColor)")
        assert close_to(colours, [value_rgb(v, vector in ("input", "forget", "output"), scale) for v in values])
        assert browser.js("document.querySelector('#atlas-list tr.current').dataset.key") == keys[2]

        # Hover a character: under it, the model's top guesses for the next one with their probabilities.
        x, y = browser.centre("#text span", 20)
        browser.mouse("mouseMoved", x, y)
        assert browser.js("document.getElementById('predict').hidden") is False
        guesses = browser.js("Array.from(document.querySelectorAll('#predict .guess')).map(g => g.textContent)")
        probs = torch.softmax(result.logits[20].double(), dim=-1)
        top = torch.topk(probs, 5)
        for guess, idx, p in zip(guesses, top.indices.tolist(), top.values.tolist()):
            char = {"\n": "↵", " ": "␣"}.get(loaded.vocab.chars[idx], loaded.vocab.chars[idx])
            assert guess.split()[0] == char and guess.split()[1] == f"{p * 100:.1f}%", guesses
        box_top = browser.js("document.getElementById('predict').getBoundingClientRect().top")
        span_bottom = browser.js("document.querySelectorAll('#text span')[20].getBoundingClientRect().bottom")
        assert box_top >= span_bottom                                                  # under the character
        # At the first, a middle and the last character: the top five of the softmax and the next one's share.
        for pos in (0, 17, len(text) - 1):
            browser.js(f"showPredict({pos})")
            guesses = browser.js("Array.from(document.querySelectorAll('#predict .guess')).map(g => g.textContent)")
            probs = torch.softmax(result.logits[pos].double(), dim=-1)
            top = torch.topk(probs, 5)
            assert [g.split()[1] for g in guesses] == [f"{p * 100:.1f}%" for p in top.values.tolist()], guesses
            assert guesses[0].split()[0] == alone(loaded.vocab.chars[top.indices[0]])
            head = browser.js("document.querySelector('#predict div').textContent")
            if pos + 1 < len(text):
                nxt = loaded.vocab.encode(text[pos + 1])[0]
                assert head.endswith(f": {float(probs[nxt]) * 100:.1f}%)"), head
            else:
                assert "next is" not in head

        # Select a span: the units of this layer and vector on throughout it, and where else they are on together.
        browser.js("location.hash = '#layer=1&vector=hidden&neuron=0'")
        hidden = result.layers[0]["hidden"].numpy()                                  # (T, H)
        peak_unit = int(hidden.max(axis=0).argmax())
        i = int(hidden[:-1, peak_unit].argmax())
        j = i + 1
        low = round(float(hidden[i : j + 1, peak_unit].min()) - 0.01, 3)             # at which that unit is on
        for threshold in (0.9, low):
            browser.js(f"(() => {{ const t = document.getElementById('threshold'); t.value = '{threshold}';"
                       " t.dispatchEvent(new Event('input')); })()")
            _select(browser, i, j)
            on, together = _on_units(result, 1, "hidden", i, j, threshold)
            listed = browser.js("Array.from(document.querySelectorAll('#match-units li')).map(li => +li.dataset.neuron)")
            assert listed == on, (threshold, listed, on)
            assert browser.js("document.querySelectorAll('#text span.match').length") == together
        assert peak_unit in on
        browser.click("#match-units li:nth-child(1)")
        assert browser.js("location.hash") == f"#layer=1&vector=hidden&neuron={on[0]}"

        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
        (tmp_path / "atlas.png").write_bytes(shot)
        assert shot.startswith(b"\x89PNG")
    finally:
        browser.close()


def test_unicode_and_hostile_text_page_in_chromium(tmp_path):
    """Chinese, emoji, CRLF and markup in the text: escaped, guesses shown as text, nothing runs."""
    torch.manual_seed(0)
    vocab = Vocab.from_text(UNICODE)
    model = CharModel(ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2)).eval()
    result = trace(model, vocab, UNICODE)
    atlas = build_atlas(result, builtin_features(UNICODE), list(result.vectors))
    page = build_page(result, model, vocab.chars, "unicode <t>", 1, "hidden", 0, atlas=atlas)
    assert "<script>window.pwned" not in page and "<b>bold" not in page and page.count("<script") == 3
    path = tmp_path / "u.html"
    path.write_text(page, encoding="utf-8")
    browser = open_browser(tmp_path / "profile")
    try:
        browser.open(path.as_uri())
        browser.until("document.body.dataset.done === '1'")
        assert browser.js("document.querySelectorAll('#text span').length") == len(UNICODE)
        pos = UNICODE.index("🙂")
        x, y = browser.centre("#text span", pos)
        browser.mouse("mouseMoved", x, y)
        head = browser.js("document.querySelector('#predict div').textContent")
        assert head.startswith('after "🙂"') and '(next is "\\""' in head
        assert browser.js("typeof window.pwned") == "undefined" and browser.js("document.querySelectorAll('b').length") == 0
        _select(browser, UNICODE.index("中"), UNICODE.index("诗"))
        assert "中文 诗" in browser.js("document.getElementById('match-summary').textContent")
    finally:
        browser.close()
