"""views/report.py, `charlstm report`: the run report page, built from real runs, escaped, and driven
in headless Chromium; its logs read in bounded memory whatever their size, and a log that is not a
regular file named in one line."""

from __future__ import annotations

import base64
import html
import os
import re

import numpy as np
import pytest

from charlstm.data.vocab import Vocab
from charlstm.scoring.novelty import CorpusIndex
from charlstm.config import format_duration
from charlstm.views.report import DRAWN, MAX_PREVIEWS, PREVIEW_CHARS, RunFacts, build_report, gather
from charlstm.views.charts import Reference, nice_ticks, svg_chart, Series
from charlstm.views.facts import fact_rows
from charlstm.runs.folder import Run

from chromium import open_browser
from conftest import KINDS, TINY, longest_matches, measured, plant, refused, run_cli, within

HOSTILE = 'A "quote" & <b>bold</b>\n</script><script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\n'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A real tiny run trained on text full of HTML, in a folder whose name is HTML too."""
    work = tmp_path_factory.mktemp("hostile")
    corpus = work / "hostile.txt"
    corpus.write_text((HOSTILE + "床前明月光，疑是地上霜。🌙\r\n") * 150, encoding="utf-8")
    out = work / "runs" / '<i>run "x" & y'
    # whole windows: the preview these tests read copies the corpus line after 60 steps of them
    result = run_cli("train", str(corpus), "--out", str(out), "--max-steps", "60", "--eval-every",
                                       "20", "--log-every", "5", "--short-windows", "0", *TINY)
    assert result.exit_code == 0, result.output
    return out


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(1.13, 4.9) == [2.0, 3.0, 4.0] and nice_ticks(1.13, 2.9) == [1.5, 2.0, 2.5]
    ticks = nice_ticks(0, 37_123)
    assert ticks[0] == 0 and ticks[-1] <= 37_123 and len(ticks) >= 4


def test_chart_places_points_by_step_or_by_time():
    series = [Series("a", "#000", [(0, 0.0, 4.0), (100, 50.0, 2.0), (200, 400.0, 1.0)])]
    by_step = svg_chart(series, "steps", "loss")
    by_time = svg_chart(series, "time", "loss")
    step_x = [float(p.split(",")[0]) for p in re.search(r'points="([^"]+)"', by_step).group(1).split()]
    time_x = [float(p.split(",")[0]) for p in re.search(r'points="([^"]+)"', by_time).group(1).split()]
    assert step_x[1] - step_x[0] == pytest.approx(step_x[2] - step_x[1])          # steps 0, 100, 200: evenly
    assert (time_x[2] - time_x[1]) == pytest.approx(7 * (time_x[1] - time_x[0]))   # seconds 0, 50, 400
    assert "wall-clock time (min)" in by_time and ">step<" in by_step


def test_charts_start_from_zero_with_the_yardsticks_across():
    """1.5% of noise in the speed stays a flat line near the top, not a zigzag over the whole height;
    the loss chart draws the yardsticks as levels across it."""
    speed = [Series("a", "#000", [(s, s * 0.1, 1000.0 + (15 if s % 2 else -15)) for s in range(0, 200, 10)])]
    svg = svg_chart(speed, "steps", "speed")
    ys = [float(p.split(",")[1]) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    frame = re.search(r'<rect class="frame" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    top, height = float(frame.group(1)), float(frame.group(2))
    assert max(ys) - min(ys) < 0.05 * height and min(ys) < top + 0.2 * height
    zero = re.search(r'<line class="grid" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"[^>]*/><text class="tick"[^>]*>0</text>', svg)
    assert zero and float(zero.group(1)) == pytest.approx(top + height, abs=0.1)    # the axis starts at 0
    loss = svg_chart([Series("a", "#000", [(0, 0.0, 3.0), (10, 1.0, 2.0)])], "steps", "loss",
                     references=[Reference("a blind guess: 6.00", 6.0)])
    assert 'class="reference"' in loss and "a blind guess: 6.00" in loss and ">6<" in loss


def test_the_facts_read_as_a_person_writes(run_copy):
    facts = gather(str(run_copy), novelty_length=0)
    rows = {name: values[0] for _, name, values in fact_rows([facts])}
    assert rows["short windows"] == "half as long over the first third of the budget"
    assert rows["held out for validation"] == "the last 5% of the corpus"
    assert rows["time budget"] == "none" and rows["step budget"] == "150 steps" and rows["window"].startswith("48 ")
    assert rows["wall-clock time"] == format_duration(facts.info["elapsed_s"])
    assert rows["a blind guess"] == f"{facts.yardsticks.blind_bpc:.3f} bits/char (among {len(facts.vocab)} characters)"
    assert rows["the character frequencies alone (a unigram model)"].startswith(f"{facts.yardsticks.unigram_bpc:.3f} ")
    page = build_report([facts])
    assert "0.3333" not in page and "short_windows" not in page and "id cache" not in page
    assert page.count('<th class="group">model</th>') == 1                          # each group named once
    assert page.count('class="reference"') == 4     # blind guess and unigram, on the chart by steps and by time


def test_gather_reads_the_run_files(run_copy):
    facts = gather(str(run_copy), novelty_length=300, seed=1)
    metrics = list(Run(run_copy).log.records(DRAWN))          # of each record, the figures the page draws
    assert facts.metrics == metrics and any("val_bpc" in r for r in metrics) and any("train_loss" in r for r in metrics)
    assert [r["step"] for r in metrics] == [r["step"] for r in Run(run_copy).log.read_metrics()]
    assert {name for r in metrics for name in r} == {"step", *DRAWN}
    assert [p[0] for p in facts.previews] == [50, 100, 150]
    assert facts.model["hidden_size"] == 48 and facts.train["seq_len"] == 48 and facts.info["step"] == 150
    assert facts.novelty is not None and len(facts.novelty.text) == 300
    assert "index built and cached" in facts.novelty_note


def test_report_of_two_runs_overlays_them(run_copy, hostile_run, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", str(run_copy), str(hostile_run), "--out", str(out),
                                       "--novelty-length", "200")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    # Per axis, per run: a training and a validation curve in the loss chart, one in the speed chart.
    for axis in ("by-steps", "by-time"):
        blocks = re.findall(rf'<div class="{axis}">(.*?)</div>', page, re.S)
        assert len(blocks) == 2
        assert len(re.findall(r"<polyline", blocks[0])) == 4 and len(re.findall(r"<polyline", blocks[1])) == 2
    # The validation curve's points are the logged validation scores, in order.
    logged = [r["val_bpc"] for r in Run(run_copy).log.read_metrics() if r.get("val_bpc") is not None]
    assert len(logged) == 3
    dashed = re.search(r'<polyline class="curve" data-run="plays validation" points="([^"]+)"', page).group(1)
    assert len(dashed.split()) == len(logged)
    # Facts side by side; values that differ marked; corpus, timing and machine facts present.
    assert page.count('class="differs"') >= 3 and "fingerprint" in page and "wall-clock time" in page
    assert "not recorded in the run" not in page and "<td>cpu</td>" in page.replace('<td class="differs">', "<td>")
    assert re.search(r"\d threads? \(", page)                     # the thread choice the run made
    # A page charlstm wrote may be replaced; another file may not.
    again = run_cli("report", str(run_copy), "--out", str(out), "--novelty-length", "0")
    assert again.exit_code == 0, again.output
    other = tmp_path / "notes.html"
    other.write_text("<p>mine</p>", encoding="utf-8")
    refused = run_cli("report", str(run_copy), "--out", str(other))
    assert refused.exit_code == 1 and "not replaced" in refused.output
    assert other.read_text(encoding="utf-8") == "<p>mine</p>"


def test_report_escapes_everything_from_the_run(hostile_run, tmp_path):
    out = tmp_path / "hostile.html"
    result = run_cli("report", str(hostile_run), "--out", str(out), "--novelty-length", "300")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>run" not in page
    assert '<h2><span class="swatch" style="background:#0072B2"></span>&lt;i&gt;run &quot;x&quot; &amp; y</h2>' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "床前明月光" in text and "🌙" in text


def test_without_a_run_it_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("report", "--out", "r.html")
    assert result.exit_code == 1 and "no trained model found" in result.output and not (tmp_path / "r.html").exists()
    missing = run_cli("report")
    assert missing.exit_code == 2 and "--out" in missing.output


def test_a_metrics_step_past_float_range_is_left_out_of_the_report(small_run, tmp_path):
    with open(small_run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 1' + "0" * 400 + ', "elapsed_s": 1, "val_bpc": 3}\n')
    result = run_cli("report", small_run, "--out", tmp_path / "r.html", "--novelty-length", "0")
    assert result.exit_code == 0, result.output
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ logs of any size, files of any kind


@pytest.mark.parametrize("name", ["metrics.jsonl", "samples.txt"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_log_of_another_kind_is_named_by_report_and_export(run_copy, tmp_path, name, kind):
    planted = plant(run_copy / name, kind)
    said = f"{planted}: not a regular file ({'a symbolic link' if planted.is_symlink() else KINDS[kind]})"
    with within(60):
        refused(run_cli("report", run_copy, "--out", tmp_path / "r.html", "--novelty-length", "0"), said)
        refused(run_cli("export", run_copy, "--out", tmp_path / "shared"), said)
    assert sorted(os.listdir(tmp_path)) == ["plays"]           # no page, no export, no temp folder


def _huge_logs(run, line_mib: int = 64, records_mib: int = 0) -> int:
    """Logs a run of millions of steps, or a damaged one, may hold: `records_mib` MiB of log records
    and of previews, then one line of `line_mib` MiB in each file, and a preview head whose step has
    5,000 digits (more than Python converts)."""
    record = '{{"step": {}, "elapsed_s": 1.5, "train_loss": 2.5, "lr": 0.001, "chars_per_s": 100.0}}\n'
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as log, open(run / "samples.txt", "a", encoding="utf-8") as previews:
        step, written = 1000, 0
        while written < records_mib << 20:
            line = record.format(step)
            log.write(line)
            previews.write(f"--- step {step}, val 2.000 bpc ---\nsome text\n\n")
            written, step = written + len(line), step + 1
        log.write('{"step": 7, "text": "' + "x" * (line_mib << 20) + '"}\n{"step": ' + str(step) + "}\n")
        previews.write(f"--- step {'9' * 5000}, val 1.0 bpc ---\nnever-shown\n\n--- step {step}, val 1.5 bpc ---\n"
                       + "y" * (line_mib << 20) + "\nbeyond-the-page\n\n")
    return step - 1000 + 1                                      # the previews added (the 5,000-digit one is none)


def test_a_report_reads_a_log_of_huge_lines_in_bounded_memory(small_run, tmp_path):
    _huge_logs(small_run)
    code, _, err, peak = measured("report", small_run, "--out", tmp_path / "r.html", "--novelty-length", "0",
                                  cwd=tmp_path, timeout=300)
    assert code == 0, err[-2000:]
    assert peak < 450, f"peak RSS {peak} MB"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "y" * PREVIEW_CHARS + "…" in page and "beyond-the-page" not in page and "never-shown" not in page


@pytest.mark.slow
def test_a_report_of_three_runs_with_full_logs_stays_in_bounded_memory(trained_run, tmp_path):
    import shutil

    runs = [shutil.copytree(trained_run, tmp_path / f"run{i}", ignore=shutil.ignore_patterns("corpus.*"))
            for i in range(3)]
    added = [_huge_logs(run, line_mib=64, records_mib=64) for run in runs]
    code, _, err, peak = measured("report", *runs, "--out", tmp_path / "r.html", "--novelty-length", "0",
                                  cwd=tmp_path, timeout=900)
    assert code == 0, err[-2000:]
    assert peak < 450, f"peak RSS {peak} MB"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    had = len(Run(trained_run).log.read_samples())
    notes = [(int(shown), int(total.replace(",", ""))) for shown, total in re.findall(r"(\d+) of ([\d,]+) previews", page)]
    assert [total for _, total in notes] == [had + n for n in added]      # every preview counted,
    assert all(MAX_PREVIEWS // 2 < shown <= MAX_PREVIEWS + 1 for shown, _ in notes)   # an even choice shown


def test_the_report_draws_a_long_log_evenly_and_keeps_its_last_figures(run_copy):
    log = run_copy / "metrics.jsonl"
    with open(log, "a", encoding="utf-8") as f:
        for step in range(151, 40_000):
            f.write(f'{{"step": {step}, "elapsed_s": {step}, "train_loss": 1.0, "lr": 0.1, "chars_per_s": {step}}}\n')
            if step % 1000 == 0:
                f.write(f'{{"step": {step}, "elapsed_s": {step}, "val_bpc": 1.5, "chars_per_s": 7}}\n')
        f.write('{"step": 40000, "elapsed_s": 40000, "stopped": "patience"}\n')
    facts = gather(str(run_copy), novelty_length=0)
    steps = [r["step"] for r in facts.metrics if "train_loss" in r]
    gaps = {b - a for a, b in zip(steps[1:-2], steps[2:-1])}
    assert len(steps) <= 3001 and len(gaps) == 1 and steps[-1] == 39_999       # evenly spaced, the last kept
    assert [r["step"] for r in facts.metrics if "val_bpc" in r][-39:] == list(range(1000, 40_000, 1000))
    speed = [values for _, name, values in fact_rows([facts]) if name == "last logged speed"]
    assert speed == [["39,999 characters/s"]]                 # the last record with a speed, though not the last


def test_a_preview_is_kept_only_as_far_as_the_page_shows_it(run_copy):
    with open(run_copy / "samples.txt", "a", encoding="utf-8") as f:
        f.write("--- step 200, val 1.0 bpc ---\n" + "z" * 100_000 + "\n\n")
    facts = gather(str(run_copy), novelty_length=0)
    assert facts.previews[-1][0] == 200 and len(facts.previews[-1][2]) == PREVIEW_CHARS + 1
    assert "z" * PREVIEW_CHARS + "…" in build_report([facts])


def _copied_facts(shakespeare_text: str) -> RunFacts:
    """Facts of a made-up run whose 'sample' copies 120 characters of its corpus."""
    corpus = shakespeare_text[:20_000]
    vocab = Vocab.from_text(corpus)
    sample = "zzq <b>x</b> " + corpus[3000:3120] + " qqzz"
    check = CorpusIndex.build(vocab.encode(corpus)).check(sample, vocab.chars)
    metrics = [{"step": s, "elapsed_s": s * 0.5, "train_loss": 3.0 - s / 100, "chars_per_s": 1000.0} for s in range(10, 110, 10)]
    metrics += [{"step": s, "elapsed_s": s * 0.5 + 0.1, "val_bpc": 4.2 - s / 100} for s in (50, 100)]
    return RunFacts(name="made <up>", checkpoint="x/best.safetensors", model={"hidden_size": 8}, train={"seq_len": 4},
                    vocab=vocab.chars, info={"step": 100}, metrics=metrics,
                    previews=[(50, 4.0, "</pre><script>window.pwned=3</script>"), (100, 3.5, "step two")],
                    novelty=check, novelty_note="checked")


def test_report_in_headless_chromium(shakespeare_text, hostile_run, tmp_path):
    """Switch the x axis with a real click; the copied span is highlighted; nothing from the run ran."""
    facts = _copied_facts(shakespeare_text)
    path = tmp_path / "report.html"
    path.write_text(build_report([facts]), encoding="utf-8")
    browser = open_browser(tmp_path / "profile")
    try:
        browser.open(path.as_uri())
        shown = ("Array.from(document.querySelectorAll('.{0}')).map(e => getComputedStyle(e).display !== 'none')")
        assert browser.js(shown.format("by-steps")) == [True, True]
        assert browser.js(shown.format("by-time")) == [False, False]
        browser.click("label[for=x-time]")
        assert browser.js(shown.format("by-steps")) == [False, False]
        assert browser.js(shown.format("by-time")) == [True, True]
        # The loss chart draws the training and the validation curve, validation dashed.
        curves = browser.js("Array.from(document.querySelectorAll('.by-time')[0].querySelectorAll('polyline'))"
                            ".map(p => [p.getAttribute('stroke-dasharray'), p.points.numberOfItems])")
        assert curves == [[None, 10], ["6 4", 2]]
        # The copied stretch (the 120 characters and the spaces around them, which the corpus has
        # too), and nothing else, is highlighted as a ≥50 copy: the longest match, by brute force.
        lengths = longest_matches(shakespeare_text[:20_000], facts.novelty.text)
        start, longest = int(np.argmax(lengths)), max(lengths)
        copied = browser.js("Array.from(document.querySelectorAll('pre.sample .c50')).map(e => e.textContent).join('')")
        assert copied == facts.novelty.text[start : start + longest] and shakespeare_text[3000:3120] in copied
        assert browser.js("document.querySelector('td.longest').textContent") == f"{longest} characters"
        assert browser.js("typeof window.pwned") == "undefined" and browser.js("document.querySelectorAll('b, script').length") == 0
        assert "<script>window.pwned=3</script>" in browser.js("document.querySelector('ol.previews').textContent")
        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
        assert shot.startswith(b"\x89PNG")

        # The page `charlstm report` writes for a real run trained on HTML: nothing from it runs.
        real = tmp_path / "real.html"
        result = run_cli("report", str(hostile_run), "--out", str(real), "--novelty-length", "300")
        assert result.exit_code == 0, result.output
        browser.open(real.as_uri())
        assert browser.js("document.querySelector('section.run h2').textContent") == hostile_run.name
        assert browser.js("typeof window.pwned") == "undefined"
        assert browser.js("document.querySelectorAll('b, img, i, script').length") == 0
        assert browser.js("document.querySelectorAll('.by-steps polyline').length") == 3
    finally:
        browser.close()
