"""A run report: one self-contained HTML page for one or more training runs.

`gather(target)` collects the facts of a run — its checkpoint's configuration, vocabulary,
corpus and clock, its log (metrics.jsonl) and previews (samples.txt) through runs/, its yardsticks
(scoring/yardsticks.py) and a memorisation check of a fresh sample (scoring/novelty.py). The log
and the previews are streamed, and what is kept of them is bounded whatever their length: the
figures drawn (DRAWN), an evenly spaced choice of each kind of record and of the previews (the
last kept), and of each preview the characters shown.
`build_report(runs)` draws them: loss curves as inline SVG (charts.py; every run overlaid, in one
colour each; training solid, validation dashed; the yardsticks as dotted levels; the x axis
switchable between steps and wall-clock time by a CSS-only toggle; logged values no such figure
can take left out, with a note that counts them), the previews over time, the
facts side by side in words (facts.py; values that differ between runs marked), and the sample
with its copied spans highlighted.

Safety, as page.py: every text from a run (names, corpus paths, previews, samples, vocabulary) is
HTML-escaped; the page holds no script at all and a Content-Security-Policy that allows none, and
loads nothing from the network. Builds a string; writes no files.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from ..config import LOG2E, ReportConfig, SampleConfig
from ..files import LATEST, PAGE_GENERATOR
from .charts import MAX_POINTS, PALETTE, LogFigures, Reference, Series, _thin, svg_chart
from .facts import fact_rows
from .glyphs import alone, single_line

#: Most previews listed per run (evenly chosen, the last kept), and characters shown of each.
MAX_PREVIEWS = 60


PREVIEW_CHARS = 2000


#: The figures of a log record the report draws (besides its step): every other field is left unread.
DRAWN = ("elapsed_s", "train_loss", "val_bpc", "chars_per_s")


@dataclass
class RunFacts:
    """What a report shows of one run."""

    name: str
    checkpoint: str
    model: dict
    train: dict
    vocab: list[str]
    info: dict                                 # step, clock, scores, corpus, torch (from RunInfo)
    metrics: list[dict] = field(default_factory=list)
    previews: list[tuple[int, float | None, str]] = field(default_factory=list)
    preview_count: int | None = None           # previews in the run, when `previews` holds a choice of them
    novelty: object | None = None              # novelty.Novelty of a fresh sample
    novelty_note: str = ""                     # where it was checked against, or why there is none
    yardsticks: object | None = None           # scoring.yardsticks.Yardsticks of its vocabulary and corpus


def gather(target: str | None, novelty_length: int = ReportConfig.novelty_length, seed: int = ReportConfig.seed,
           device: str | None = None, notice: Callable[[str], None] | None = None) -> RunFacts:
    """The facts of the run `target` names (a run folder or checkpoint; None: the most recent run).
    With novelty_length > 0, a sample of that many characters (seed `seed`) is generated and checked
    against the training corpus; a corpus that is not at hand becomes a note, not an error. A cache
    of the run found damaged is told to `notice` in one line."""
    from ..errors import CharlstmError
    from ..runs import checkpoint as ckpt
    from ..runs.folder import Run
    from ..scoring.yardsticks import of_run

    ReportConfig(novelty_length=novelty_length, seed=seed)  # refused as `charlstm report` refuses them
    path = ckpt.resolve(target, prefer=LATEST)         # where the run stands now, not its best moment
    loaded = ckpt.load(path)
    info = loaded.run_info
    run = Run(path.parent)
    facts = RunFacts(
        name=path.parent.name if path.parent.name else str(path), checkpoint=str(path),
        model=asdict(loaded.config), train=asdict(info.train_config) if info else {}, vocab=list(loaded.vocab.chars),
        info={} if info is None else {
            "step": info.step, "elapsed_s": info.elapsed_s, "best_val_bpc": info.best_val_bpc,
            "last_val_bpc": info.last_val_bpc, "finished": info.finished, "stopped": info.stopped,
            "torch": info.torch, "device": info.device, "threads": info.threads,
            "corpus_paths": list(info.corpus.paths) if info.corpus else [],
            "corpus_encoding": info.corpus.encoding if info.corpus else None,
            "corpus_chars": info.corpus_chars, "corpus_fingerprint": info.corpus_fingerprint,
            "init_from": info.init_from.to_dict() if info.init_from else None},
        yardsticks=of_run(loaded, path, notice))
    facts.metrics = _spread(run.log.records(DRAWN), MAX_POINTS)
    chosen = _Spread(MAX_PREVIEWS)
    for preview in run.log.previews(text_chars=PREVIEW_CHARS + 1):
        chosen.add(preview)
    facts.previews, facts.preview_count = chosen.items(), chosen.seen
    if novelty_length > 0:
        from ..generation.sampling import sample_text
        from ..runtime import place
        from ..scoring.novelty import run_corpus

        try:
            corpus = run_corpus(loaded, path, notice)
        except CharlstmError as error:
            facts.novelty_note = f"no memorisation check: {error}"
        else:
            text = sample_text(place(loaded, device), loaded.vocab, "",
                               SampleConfig(length=novelty_length, seed=seed))[0]
            facts.novelty = corpus.index.check(text, corpus.chars)
            facts.novelty_note = (f"a {len(text):,}-character sample (seed {seed}, temperature "
                                  f"{SampleConfig.temperature:g}) checked against {corpus.source}; its index "
                                  f"{corpus.cached}")
    return facts


class _Spread:
    """Evenly spaced items of a stream, without holding it: every stride-th item (the stride
    doubling whenever more than twice `limit` are held) and the last; `seen` counts them all."""

    def __init__(self, limit: int) -> None:
        self.limit, self.stride, self.seen = limit, 1, 0
        self.held: list = []
        self.last = None

    def add(self, item) -> None:
        if self.seen % self.stride == 0:
            self.held.append(item)
            if len(self.held) > 2 * self.limit:
                self.held, self.stride = self.held[::2], 2 * self.stride
        self.last = item
        self.seen += 1

    def items(self) -> list:
        return self.held + ([self.last] if self.held and self.held[-1] is not self.last else [])


def _spread(records, limit: int) -> list[dict]:
    """Evenly spaced records of each kind (the fields they hold), at most about 2 × `limit` of
    each and the last, in their order: what the charts and the facts draw of any log."""
    kinds: dict[tuple, _Spread] = {}
    for i, record in enumerate(records):
        kinds.setdefault(tuple(record), _Spread(limit)).add((i, record))
    return [record for _, record in sorted((item for spread in kinds.values() for item in spread.items()),
                                           key=lambda item: item[0])]


def _charts(runs: Sequence[RunFacts]) -> tuple[list[tuple[str, list[Series], list[Reference]]], str]:
    """Each chart: its label, its series (training and validation loss in bits per character;
    throughput) and the levels drawn across it (each run's yardsticks, on the loss chart); and the
    note of the logged values left out of them, as no such figure can take them (charts.LogFigures)."""
    loss, speed, references = [], [], {}
    figure = LogFigures()
    for i, run in enumerate(runs):
        colour = PALETTE[i % len(PALETTE)]
        train, val, rate = [], [], []
        for r in run.metrics:
            step, seconds = figure(r, "step"), figure(r, "elapsed_s")
            if step is None or (seconds is None and r.get("elapsed_s") is not None):
                continue
            seconds = seconds or 0.0
            if (loss_nats := figure(r, "train_loss")) is not None:
                train.append((step, seconds, loss_nats * LOG2E))
            if (bpc := figure(r, "val_bpc")) is not None:
                val.append((step, seconds, bpc))
            if (chars := figure(r, "chars_per_s")) is not None and "train_loss" in r:
                rate.append((step, seconds, chars))
        loss += [Series(f"{run.name} training", colour, _thin(train)),
                 Series(f"{run.name} validation", colour, _thin(val), dashed=True)]
        speed.append(Series(run.name, colour, _thin(rate)))
        sticks = run.yardsticks
        if sticks is not None:
            whose = f" ({run.name})" if len(runs) > 1 else ""
            for what, y in (("a blind guess", sticks.blind_bpc), ("a unigram model", sticks.unigram_bpc)):
                if y is not None:   # the same level for several runs (one corpus) is drawn once
                    references.setdefault(round(y, 3), Reference(f"{what}{whose}: {y:.2f}", y))
    return [("loss (bits per character)", loss, list(references.values())),
            ("training speed (characters/s)", speed, [])], figure.note()


def _e(value) -> str:
    return html.escape(str(value))


def _facts_table(runs: Sequence[RunFacts]) -> str:
    head = "".join(f'<th><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{_e(r.name)}</th>'
                   for i, r in enumerate(runs))
    body, last = [], None
    for group, name, values in fact_rows(runs):
        differs = len(runs) > 1 and len(set(values)) > 1
        cells = "".join(f"<td>{_e(v)}</td>" for v in values)
        shown = _e(group) if group != last else ""       # each group named once, on its first row
        body.append(f'<tr class="{"differs" if differs else ""}"><th class="group">{shown}</th>'
                    f'<th>{_e(name)}</th>{cells}</tr>')
        last = group
    return f'<table class="facts"><thead><tr><th></th><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _legend(runs: Sequence[RunFacts], styles: bool = True) -> str:
    items = "".join(f'<span class="item"><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
                    f"{_e(r.name)}</span>" for i, r in enumerate(runs))
    if not styles:
        return f'<div class="legend">{items}</div>'
    return (f'<div class="legend">{items}<span class="item"><svg width="28" height="8"><line x1="0" x2="28" y1="4" y2="4" '
            f'stroke="#444" stroke-width="2"/></svg>training</span><span class="item"><svg width="28" height="8">'
            f'<line x1="0" x2="28" y1="4" y2="4" stroke="#444" stroke-width="2" stroke-dasharray="6 4"/></svg>'
            f"validation</span></div>")


def _previews(run: RunFacts) -> str:
    previews = _thin(run.previews, MAX_PREVIEWS)
    if not previews:
        return '<p class="dim">no previews recorded (training ran with --preview 0, or samples.txt is gone)</p>'
    items = []
    for step, val, text in previews:
        shown = text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")
        score = f", validation {val:.3f} bpc" if val is not None else ""
        items.append(f'<li><div class="when">step {step:,}{score}</div><pre class="preview">{_e(shown)}</pre></li>')
    count = len(run.previews) if run.preview_count is None else run.preview_count
    note = f'<p class="dim">{len(previews)} of {count} previews</p>' if len(previews) < count else ""
    return f'{note}<ol class="previews">{"".join(items)}</ol>'


def _copy_class(length: int) -> str:
    from ..scoring.novelty import NGRAM_SIZES

    for n in sorted(NGRAM_SIZES, reverse=True):
        if length >= n:
            return f"c{n}"
    return ""


def _highlighted(text: str, cover) -> str:
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or _copy_class(int(cover[i])) != _copy_class(int(cover[start])):
            cls = _copy_class(int(cover[start]))
            piece = _e(text[start:i])
            out.append(f'<span class="{cls}">{piece}</span>' if cls else piece)
            start = i
    return "".join(out)


def _novelty(run: RunFacts) -> str:
    from ..scoring.novelty import MIN_SPAN, NGRAM_SIZES

    check = run.novelty
    if check is None:
        return f'<p class="dim">{_e(run.novelty_note or "no memorisation check (--novelty-length 0)")}</p>'
    longest = check.longest
    shares = "".join(f"<th>{n}-grams found</th>" for n in NGRAM_SIZES)
    values = "".join(f"<td>{'—' if check.share(n) is None else f'{100 * check.share(n):.1f}%'}</td>" for n in NGRAM_SIZES)
    spans = "".join(f'<li><span class="len">{s.length:,} chars</span> at {s.start:,} (corpus position {s.corpus_at:,}): '
                    f'<code class="{_copy_class(s.length)}">{_e(single_line(check.text[s.start:s.start + min(s.length, 120)]))}'
                    f'{"…" if s.length > 120 else ""}</code></li>' for s in check.top_spans())
    spans = f'<ol class="spans">{spans}</ol>' if spans else f'<p class="dim">no copied span of {MIN_SPAN} characters or more</p>'
    return (f'<p class="dim">{_e(run.novelty_note)}</p>'
            f'<table class="novelty"><tr><th>longest copied substring</th>{shares}</tr>'
            f'<tr><td class="longest">{longest.length:,} characters</td>{values}</tr></table>'
            f'<h4>most-copied spans</h4>{spans}'
            f'<div class="legend">copied: <span class="c10">≥10</span> <span class="c20">≥20</span> '
            f'<span class="c50">≥50</span></div>'
            f'<pre class="sample">{_highlighted(check.text, check.coverage())}</pre>')


def _vocabulary(run: RunFacts, shown: int = 600) -> str:
    chars = "".join(f"<span>{_e(alone(c))}</span>" for c in run.vocab[:shown])
    more = f" … and {len(run.vocab) - shown:,} more" if len(run.vocab) > shown else ""
    return f'<div class="vocab">{chars}{_e(more)}</div>'


def build_report(runs: Sequence[RunFacts], title: str | None = None) -> str:
    """The page for `runs` (one or more, overlaid in the charts, side by side in the facts)."""
    title = title or "charlstm report: " + ", ".join(r.name for r in runs)
    drawn, left_out = _charts(runs)
    charts = [f'<p class="dim left-out">{_e(left_out)}</p>'] if left_out else []
    for label, series, references in drawn:
        legend = _legend(runs, styles=any(s.dashed for s in series))
        charts.append(f'<figure><figcaption>{_e(label)}</figcaption>{legend}'
                      f'<div class="by-steps">{svg_chart(series, "steps", label, references=references)}</div>'
                      f'<div class="by-time">{svg_chart(series, "time", label, references=references)}</div></figure>')
    checks, per_run = [], []
    for i, run in enumerate(runs):
        swatch = f'<span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        checks.append(f'<section class="check"><h3>{swatch}{_e(run.name)}</h3>{_novelty(run)}</section>')
        per_run.append(f'<section class="run"><h2>{swatch}{_e(run.name)}</h2>'
                       f'<h3>previews over time</h3>{_previews(run)}'
                       f'<h3>vocabulary ({len(run.vocab):,} characters)</h3>{_vocabulary(run)}</section>')
    return _TEMPLATE.format(generator=PAGE_GENERATOR, title=_e(title), style=_STYLE, charts="".join(charts),
                            checks="".join(checks), facts=_facts_table(runs), runs="".join(per_run))


_STYLE = """
:root { --ink: #1d1d1f; --dim: #6e6e73; --line: #d2d2d7; --panel: #f5f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); }
header { padding: 12px 24px 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 28px 0 6px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
h4 { font-size: 13px; margin: 10px 0 4px; color: var(--dim); }
main { padding: 0 24px 40px; max-width: 1100px; }
.axis { color: var(--dim); }
.axis label { margin-right: 14px; cursor: pointer; }
input.axis-choice { position: absolute; opacity: 0; pointer-events: none; }
#x-steps:checked ~ header label[for=x-steps], #x-time:checked ~ header label[for=x-time] { color: var(--ink); font-weight: 600; text-decoration: underline; }
#x-steps:checked ~ main .by-time, #x-time:checked ~ main .by-steps { display: none; }
figure { margin: 14px 0 20px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { width: 100%; max-width: 760px; height: auto; display: block; }
svg .grid { stroke: #ececf0; stroke-width: 1; }
svg .frame { fill: none; stroke: var(--line); }
svg .tick { font-size: 11px; fill: var(--dim); }
svg .label { font-size: 12px; fill: var(--ink); }
svg .curve { fill: none; stroke-width: 1.8; }
svg .reference { stroke: #8e8e93; stroke-width: 1; stroke-dasharray: 2 3; }
svg .reference-label { font-size: 11px; fill: #6e6e73; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; color: var(--dim); margin: 2px 0 4px; align-items: center; }
.legend .item { display: inline-flex; align-items: center; gap: 5px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
table.facts { border-collapse: collapse; font-size: 13px; }
table.facts th, table.facts td { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; border-bottom: 1px solid #f0f0f2; }
table.facts td { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
table.facts th.group { color: var(--dim); font-weight: 400; }
table.facts tr.differs td { background: #fff6d5; }
table.novelty { border-collapse: collapse; }
table.novelty th, table.novelty td { padding: 2px 14px 2px 0; text-align: left; }
td.longest { font-weight: 600; }
.dim { color: var(--dim); }
pre { white-space: pre-wrap; word-break: break-word; font: 13px/1.4 ui-monospace, Menlo, Consolas, monospace; margin: 0; }
pre.sample { background: var(--panel); padding: 10px; border-radius: 6px; max-height: 480px; overflow: auto; }
ol.previews { list-style: none; padding: 0; margin: 0; max-height: 420px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
ol.previews li { padding: 6px 10px; border-bottom: 1px solid #f0f0f2; }
.when { color: var(--dim); font-size: 12px; }
.c10 { background: #ffdab9; } .c20 { background: #fa8072; } .c50 { background: #b22222; color: #fff; }
ol.spans code { font: 12px ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; }
.vocab { font: 13px ui-monospace, Menlo, Consolas, monospace; display: flex; flex-wrap: wrap; gap: 3px; }
.vocab span { border: 1px solid var(--line); border-radius: 3px; padding: 0 4px; min-width: 1.4em; text-align: center; }
"""


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{generator}
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<input type="radio" class="axis-choice" name="x-axis" id="x-steps" checked>
<input type="radio" class="axis-choice" name="x-axis" id="x-time">
<header>
<h1>{title}</h1>
<div class="axis">x axis: <label for="x-steps">steps</label><label for="x-time">wall-clock time</label></div>
</header>
<main>
<h2>loss and validation curves</h2>
{charts}
<h2>memorisation check</h2>
{checks}
<h2>facts</h2>
{facts}
{runs}
</main>
</body>
</html>
"""
