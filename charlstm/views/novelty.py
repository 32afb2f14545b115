"""The terminal picture of a memorisation check (a scoring.novelty.Novelty): the figures, then the
text with its copied spans highlighted. Text is never markup (rich `Text`, styled per span).
Computes nothing."""

from __future__ import annotations

from typing import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..scoring.novelty import MIN_SPAN, NGRAM_SIZES, Novelty
from .glyphs import single_line

#: (shortest copied span, style): a longer copy is drawn more strongly.
COPY_STYLES = ((50, "bold white on rgb(178,34,34)"), (20, "black on rgb(250,128,114)"), (MIN_SPAN, "black on rgb(255,218,185)"))
#: Characters of a copied span shown in the list of most-copied spans.
SPAN_SHOWN = 70
#: Characters of the text reprinted with its copies highlighted (the list of spans covers the rest).
HIGHLIGHT_CHARS = 4000


def _style(length: int) -> str | None:
    for least, style in COPY_STYLES:
        if length >= least:
            return style
    return None


def highlighted(text: str, cover) -> Text:
    """`text` with every character inside a copied span styled by the length of that span."""
    out = Text(text)
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or _style(int(cover[i])) != _style(int(cover[start])):
            style = _style(int(cover[start]))
            if style:
                out.stylize(style, start, i)
            start = i
    return out


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def novelty_view(novelty: Novelty, title: str, source: str, sizes: Sequence[int] = NGRAM_SIZES,
                 show_text: bool = True) -> Group:
    longest = novelty.longest
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("longest copied")
    for n in sizes:
        table.add_column(f"{n}-grams in corpus", justify="right")
    table.add_row(f"{longest.length:,} characters", *(_share(novelty.share(n)) for n in sizes))
    parts: list = [table, Text(f"checked {len(novelty.text):,} generated characters against {source}", style="dim")]
    spans = novelty.top_spans()
    if spans:
        parts.append(Text("most-copied spans:", style="bold"))
        for span in spans:
            shown = novelty.text[span.start : span.start + min(span.length, SPAN_SHOWN)]
            line = Text(f"  {span.length:>6,} chars at {span.start:,} (corpus {span.corpus_at:,}): ")
            line.append(single_line(shown) + ("…" if span.length > SPAN_SHOWN else ""), style=_style(span.length))
            parts.append(line)
    else:
        parts.append(Text(f"no copied span of {MIN_SPAN} characters or more", style="dim"))
    if show_text and novelty.text:
        legend = Text("copied: ")
        for least, style in reversed(COPY_STYLES):
            legend.append(f" ≥{least} ", style=style)
            legend.append(" ")
        shown = novelty.text[:HIGHLIGHT_CHARS]
        if len(shown) < len(novelty.text):
            legend.append(f"(the first {len(shown):,} of {len(novelty.text):,} characters)", style="dim")
        parts += [legend, highlighted(shown, novelty.coverage()[:HIGHLIGHT_CHARS])]
    return Group(*parts)
