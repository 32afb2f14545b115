"""views/web.py and web.js, the model page (`charlstm export --html`): in a real browser (headless
Chromium) it writes what `charlstm sample --temperature 0` writes, every unit it shows is what
`charlstm inspect --format json` reports, seeded sampling repeats, the corpus's characters stay
text, unknown characters are noted and skipped, and the page fetches nothing."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse

import numpy as np
import pytest
import torch

from charlstm.config import CELLS, ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.runs.checkpoint import Checkpoint
from charlstm.views.page import CSP
from charlstm.views.web import build_web
from charlstm.views.weights import weight_arrays
from conftest import refused, run_cli

PRIMES = ("ROMEO:\n", "And the")
HOSTILE = 'A "q" & <b>x</b>\n</script><script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\u2028\u2029'


@pytest.fixture(scope="module")
def runs(cell_runs, tmp_path_factory):
    """One briefly but really trained 2-layer run per cell kind (conftest.cell_runs), and its page."""
    work = tmp_path_factory.mktemp("web")
    made = {}
    for cell, out in cell_runs.items():
        page = work / f"{cell}.html"
        result = run_cli("export", out, "--html", page)
        assert result.exit_code == 0, result.output
        made[cell] = (out, page)
    return made


def load(browser, page, fragment: str, timeout: float = 60.0) -> None:
    """Open `page` at `fragment` and wait until it says it is done."""
    browser.open(page.as_uri() + "#" + fragment)
    deadline = time.monotonic() + timeout
    while browser.js("document.body.dataset.done") != "1":
        assert time.monotonic() < deadline, "the page never finished"
        time.sleep(0.05)


def fragment(**fields) -> str:
    return urllib.parse.urlencode(fields, quote_via=urllib.parse.quote)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_argmax_text_is_what_sample_prints(runs, browser, cell):
    out, page = runs[cell]
    for prime in PRIMES:
        printed = run_cli("sample", out, "--temperature", "0", "--length", "240", "--prime", prime).stdout
        load(browser, page, fragment(prime=prime, length=240, temperature=0))
        shown = browser.js("document.getElementById('output').textContent")
        assert len(shown) >= len(prime) + 200
        assert shown + "\n" == printed, (shown, printed)


#: Every unit of every vector of every layer, as the page holds them after reading the text.
ALL_UNITS = ("JSON.stringify(Object.fromEntries([1, 2].flatMap((l) => DATA.vectors.flatMap((v) =>"
             " Array.from({length: H}, (_, n) => ['L' + l + '.' + v + '[' + n + ']', unitValues(l, v, n)])))))")


@pytest.mark.parametrize("cell", CELLS)
def test_every_unit_is_what_inspect_reports(runs, browser, cell):
    out, page = runs[cell]
    text = "To be, or not to be: that is the question.\nWhether 'tis nobler"
    record = json.loads(run_cli("inspect", out, "--text", text, "--layer", "all", "--vector", "all", "--neuron",
                                "all", "--format", "json").stdout)
    inspected = record["traces"]
    load(browser, page, fragment(text=text, layer=2, vector="hidden", neuron=3))
    shown = json.loads(browser.js(ALL_UNITS))
    assert set(shown) == set(inspected) and len(inspected) == 2 * 24 * len(record["vectors"])
    worst = max(abs(a - b) for key in inspected for a, b in zip(shown[key], inspected[key], strict=True))
    assert worst <= 1e-3, worst
    # The fragment API writes the unit it names, one value per character.
    values = json.loads(browser.js("document.getElementById('values').textContent"))
    assert len(values) == len(text) and np.allclose(values, inspected["L2.hidden[3]"], atol=1e-3)


def test_the_weights_travel_as_float32_exactly(runs):
    out, _ = runs["peephole"]
    import charlstm

    model, _ = charlstm.load(out)
    packed = weight_arrays(model)
    head = np.frombuffer(base64.b64decode(packed["headW"]), dtype="<f4").reshape(model.head.weight.shape)
    assert np.array_equal(head, model.head.weight.detach().numpy())
    peep = np.frombuffer(base64.b64decode(packed["layers"][1]["peep"]), dtype="<f4").reshape(3, -1)
    assert np.array_equal(peep, model.rnn.peephole(1).detach().numpy())


def test_seeded_sampling_repeats_in_the_page(runs, browser):
    _, page = runs["lstm"]
    texts = []
    for seed in (7, 7, 8):
        load(browser, page, fragment(prime="the ", length=150, temperature=1, seed=seed))
        texts.append(browser.js("document.getElementById('output').textContent"))
    assert texts[0] == texts[1] and texts[0] != texts[2] and all(t.startswith("the ") for t in texts)
    load(browser, page, fragment(prime="the ", length=300, temperature=0.8, top_k=3, top_p=0.9, seed=1, stop="\\n\\n"))
    stopped = browser.js("document.getElementById('output').textContent")
    assert "\n\n" not in stopped and stopped.startswith("the ")
    # What `charlstm sample` refuses, the page takes as the nearest setting it accepts: it never breaks.
    load(browser, page, fragment(prime="the ", length="many", temperature="1e-9", top_k=0, top_p=5, seed=2))
    odd = browser.js("document.getElementById('output').textContent")
    assert odd.startswith("the ") and len(odd) > 100


def test_unknown_characters_are_noted_and_skipped(runs, browser):
    _, page = runs["gru"]
    load(browser, page, fragment(text="caf\u00e9 \u20ac ok", layer=1, vector="update", neuron=0))
    note = browser.js("document.getElementById('typed-note')")
    assert browser.js("document.getElementById('typed-note').hidden") is False and note is not None
    said = browser.js("document.getElementById('typed-note').textContent")
    assert "2 character(s) this model never saw" in said and "skipped" in said
    assert len(json.loads(browser.js("document.getElementById('values').textContent"))) == len("caf  ok")
    load(browser, page, fragment(prime="caf\u00e9", length=20, temperature=0, unknown="replace"))
    assert "read as" in browser.js("document.getElementById('prime-note').textContent")


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory):
    """The page of a random model whose vocabulary holds every character HTML and JavaScript care about."""
    torch.manual_seed(0)
    vocab = Vocab.from_text(HOSTILE + "abcdefghijklmnopqrstuvwxyz")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=8, embedding_size=4, num_layers=2)
    loaded = Checkpoint(config, vocab, CharModel(config).state_dict())
    page = build_web(loaded, loaded.model(), "run </script><b>")
    path = tmp_path_factory.mktemp("hostile") / "page.html"
    path.write_text(page, encoding="utf-8")
    return page, path


def test_page_embeds_the_vocabulary_as_data_never_markup(hostile_page, browser):
    page, path = hostile_page
    assert page.count("<script") == 3 and page.count("</script>") == 3       # data, colours, code
    block = re.search(r'id="charlstm-data">(.*?)</script>', page, re.S).group(1)
    assert not set(block) & set("<>&\u2028\u2029")
    assert set(HOSTILE) <= set(json.loads(block)["vocab"]) and "run &lt;/script&gt;&lt;b&gt;" in page
    load(browser, path, fragment(text=HOSTILE, layer=1, vector="cell", neuron=0))
    assert browser.js("typeof window.pwned") == "undefined"
    assert browser.js("document.querySelectorAll('img, b').length") == 0
    strip = browser.js("document.getElementById('strip').textContent")
    assert "</script><script>window.pwned = 1</script>" in strip


def test_page_fetches_nothing(hostile_page):
    page, _ = hostile_page
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP.startswith("default-src 'none';") and "connect-src" not in CSP and "img-src" not in CSP
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) and "fetch(" not in page


@pytest.fixture(scope="module")
def big_page(tmp_path_factory):
    """The page of a 2×256 LSTM (embedding 64) over 97 characters: charlstm's default shape."""
    torch.manual_seed(0)
    vocab = Vocab.from_text("".join(chr(c) for c in range(32, 127)) + "\n\t")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=256, num_layers=2, embedding_size=64)
    model = CharModel(config)
    assert model.num_parameters > 850_000
    page = build_web(Checkpoint(config, vocab, model.state_dict()), model.eval(), "big")
    path = tmp_path_factory.mktemp("big") / "big.html"
    path.write_text(page, encoding="utf-8")
    return page, path


def test_a_2x256_lstm_page_fits_in_8_mb(big_page):
    page, _ = big_page
    assert len(page.encode("utf-8")) <= 8_000_000


def test_a_keystroke_on_a_2x256_lstm_page_rereads_only_what_changed(big_page, browser):
    """After 200 typed characters, each keystroke steps the model over the one character it adds
    (how long that takes is benchmarks/web.py's: speed is measured there, not asserted here); an
    edit in the middle rereads from the edit on."""
    _, path = big_page
    text = "To be, or not to be, that is the question. " * 5
    load(browser, path, fragment(text=text, layer=2, vector="cell", neuron=7, pos=0))
    stepped = browser.js("(() => { const t = document.getElementById('typed'), stepped = [];"
                         " for (let i = 0; i < 11; i++) { t.value += 'e'; t.dispatchEvent(new Event('input'));"
                         " stepped.push(document.body.dataset.stepped); } return stepped; })()")
    assert stepped == ["1"] * 11
    assert browser.js("document.getElementById('strip').textContent").endswith("e" * 11)
    edited = browser.js("(() => { const t = document.getElementById('typed'); t.value = 'X' + t.value.slice(1);"
                        " t.dispatchEvent(new Event('input')); return document.body.dataset.stepped; })()")
    assert edited == str(len(text) + 11)


def test_predictions_the_unit_and_the_diagram_follow_the_text(runs, browser):
    _, page = runs["lstm"]
    load(browser, page, fragment(text="the kin", layer=1, vector="forget", neuron=2, pos=3))
    guesses = browser.js("document.getElementById('guesses').textContent")
    assert guesses.count("%") == 5
    parts = browser.js("Array.from(document.querySelectorAll('#diagram [data-part]')).map((e) => e.dataset.part)")
    assert set(parts) >= {"forget", "input", "candidate", "output", "cell", "hidden"}
    forget = json.loads(browser.js("document.getElementById('values').textContent"))[3]
    assert f"{forget:+.3f}" in browser.js("document.getElementById('diagram').textContent")
    # A keystroke: the guesses and the strip follow within one event.
    browser.js("(() => { const t = document.getElementById('typed'); t.value += 'g'; t.dispatchEvent(new Event('input')); })()")
    assert browser.js("document.getElementById('strip').textContent") == "the king"
    assert browser.js("document.getElementById('guesses').textContent") != guesses


def test_the_atlas_labels_are_an_index_of_units(runs, browser, tmp_path):
    out, _ = runs["lstm"]
    page = tmp_path / "atlas.html"
    done = run_cli("export", out, "--html", page, "--atlas")
    assert done.exit_code == 0, done.output
    assert "atlas index:" in done.stderr
    load(browser, page, fragment(text="the king", layer=1, vector="cell", neuron=0))
    assert browser.js("document.getElementById('atlas').hidden") is False
    first = browser.js("document.querySelector('#atlas-list li').dataset.key")
    browser.click("#atlas-list li")
    layer, vector, unit = first.split("/")
    assert [browser.js(f"document.getElementById('{k}').value") for k in ("layer", "vector", "neuron")] == [layer, vector, unit]
    assert browser.js("document.getElementById('label').textContent") != ""
    # The index tells the story `inspect --atlas` tells on the same text: its first unit, label, r and ablation.
    units = json.loads(run_cli("inspect", out, "--atlas", "--format", "json").stdout)["units"]
    terminal = next((u for u in units if u["verdict"] in ("tracks", "reacts", "weak")), units[0])
    assert first == f"{terminal['layer']}/{terminal['vector']}/{terminal['unit']}"
    label = browser.js("document.querySelector('#atlas-list li').textContent")
    r = terminal["partial_r"] if terminal["kind"] == "state" else terminal["r"]
    assert f"{terminal['feature']} r {r:+.2f}" in label and f"ablation {terminal['ablation_bpc']:+.3f} bits/char" in label
    refused(run_cli("export", out, "--atlas", "--out", tmp_path / "x"), "give --html FILE", code=2)
    text = tmp_path / "text.txt"
    text.write_text("The KING said: \"Who is there?\" and the queen said \u00e9 nothing.\n" * 40, encoding="utf-8")
    chosen = run_cli("export", out, "--html", tmp_path / "chosen.html", "--atlas", "--text-file", text)
    assert chosen.exit_code == 0 and f"characters of {text}" in chosen.stderr, chosen.output
    refused(run_cli("export", out, "--html", tmp_path / "y.html", "--text-file", text), "give --atlas", code=2)


def test_the_page_says_how_to_train_the_model_again_naming_its_corpus_by_file_name(runs, browser):
    """The command a reader of a sent page can run: the corpus by its file's name (not where it was on
    the machine that trained it), the shape, the settings the run changed and its steps."""
    _, page = runs["gru"]
    load(browser, page, fragment(text="the", layer=1, vector="hidden", neuron=0))
    said = browser.js("document.body.textContent")
    assert ("charlstm train plays.txt --cell gru --num-layers 2 --hidden-size 24 --embedding-size 8 --batch-size 16 "
            "--seq-len 48 --learning-rate 0.01 --seed 5 --max-steps 120") in said
    assert str(page.parent) not in said
