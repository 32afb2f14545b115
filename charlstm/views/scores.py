"""Terminal pictures of scores: surprisal strips, the biggest surprises, the n-gram comparison."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .colours import ORANGE, RGB, WHITE, _blend, _style, value_rgb
from .glyphs import glyph, single_line
from .output import Output, Pieces, Rows, _floats

#: Longest text `charlstm score` draws as a surprisal strip; beyond it only the numbers.
SCORE_STRIP_CHARS = 20_000


def score_view(title: str, text: str, bits: Sequence[float], predicted: Sequence[str], uniform_bits: float,
               show_strip: bool = True, worst: int = 10, yardsticks=None) -> Group:
    """Surprisal strip (white → orange, full at the bits of a uniform guess), bits per character
    beside its yardsticks (scoring.yardsticks.Yardsticks, when given), and the most surprising
    characters with what the model expected instead (`predicted[t]` is read for those alone)."""
    values = np.asarray(bits)
    bpc = float(np.mean(values, dtype=np.float64)) if len(values) else float("nan")
    parts: list[RenderableType] = [Text(title, style="bold")]
    if show_strip:
        parts += [_surprisal_strip(text, bits, uniform_bits), Text(""), _surprisal_legend(uniform_bits)]
    else:
        parts.append(Text(f"({len(text)} characters: strip left out; --format tsv lists every character)", style="dim"))
    parts.append(Text(f"{bpc:.3f} bits per character over {len(values)} predicted characters "
                      f"(the first character is context only)"))
    if yardsticks is not None:
        parts.append(Text(f"for scale: {yardsticks.describe(3)}", style="dim"))
    order = _highest(values, worst)
    if order:
        parts += [Text(""), _surprises_table(text, values, predicted, order)]
    return Group(*parts)


def _highest(values: np.ndarray, k: int, block: int = 1 << 20) -> list[int]:
    """The positions of the k highest values, highest first and, among equals, earliest first (a
    stable sort's order), found a block at a time."""
    candidates: list[int] = []
    for start in range(0, len(values), block):
        part = np.asarray(values[start : start + block], dtype=np.float64)
        candidates += (start + np.argsort(-part, kind="stable")[:k]).tolist()
    return sorted(candidates, key=lambda t: -float(values[t]))[:k]


def _prediction_strip(text: str, colours: Iterable[RGB]) -> Text:
    """The text with each predicted character (text[1:]) on its colour, the first (context only)
    dimmed, and line breaks kept as breaks after their visible mark."""
    out = Text()
    out.append(glyph(text[0]), style=_style(WHITE, dim=True))
    if text[0] == "\n":
        out.append("\n")
    for char, rgb in zip(text[1:], colours):
        out.append(glyph(char), style=_style(rgb))
        if char == "\n":
            out.append("\n")
    return out


def _surprisal_strip(text: str, bits: Sequence[float], uniform_bits: float) -> Text:
    """The text coloured by the surprisal of each character; the first, never predicted, dimmed."""
    return _prediction_strip(text, (_blend(WHITE, ORANGE, b / uniform_bits) for b in bits))


def _surprisal_legend(uniform_bits: float) -> Text:
    key = Text()
    key.append("legend: ", style="dim")
    for tick in (0.0, uniform_bits / 4, uniform_bits / 2, uniform_bits * 3 / 4, uniform_bits):
        key.append(f" {tick:.1f} ", style=_style(_blend(WHITE, ORANGE, tick / uniform_bits)))
        key.append(" ")
    key.append(f"bits of surprisal; full colour = a blind guess among the vocabulary ({uniform_bits:.2f} bits)",
               style="dim")
    return key


def _surprises_table(text: str, bits: Sequence[float], predicted: Sequence[str], order: Sequence[int]) -> Table:
    """The characters at `order` (indices into bits), with what was expected and what led up to them."""
    table = Table(title=Text("most surprising"), title_justify="left", box=None, pad_edge=False)
    for name, justify in (("at", "right"), ("bits", "right"), ("char", "left"), ("expected", "left"),
                          ("context", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    for t in order:
        pos = t + 1
        context = Text(single_line(text[max(0, pos - 30) : pos]), style="dim")
        context.append(single_line(text[pos]), style=Style(bold=True, underline=True))
        table.add_row(str(pos), f"{bits[t]:.2f}", Text(repr(text[pos])), Text(repr(predicted[t])), context)
    return table


#: Characters per block of a score's TSV rows and JSON arrays.
BLOCK = 1 << 16


def spans_of(length: int, block: int = BLOCK):
    """[start, end) blocks of `block` covering range(length)."""
    return ((start, min(length, start + block)) for start in range(0, length, block))


class _Expected(Sequence[str]):
    """The characters a model expected, read from its predicted ids one at a time."""

    def __init__(self, ids: np.ndarray, chars: Sequence[str]) -> None:
        self.ids, self.chars = ids, chars

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, t):
        return self.chars[int(self.ids[t])]


def score_output(source: str, text: str, bits: np.ndarray, predicted: np.ndarray, chars: Sequence[str],
                 bits_per_char: float, yardsticks) -> Output:
    """The surprisal `bits` of text[1:] and the ids the model `predicted` there (characters of the
    vocabulary `chars`), with the model's yardsticks (scoring.yardsticks.Yardsticks). TSV and JSON
    are written a block of characters at a time."""
    spans = lambda: spans_of(len(bits))  # noqa: E731
    expected = lambda a, b: [chars[i] for i in np.asarray(predicted[a:b]).tolist()]  # noqa: E731
    rows = Rows(lambda: ([list(range(a + 1, b + 1)), list(text[a + 1 : b + 1]), np.asarray(bits[a:b]).tolist(),
                          expected(a, b)] for a, b in spans()))
    document = {"checkpoint": source, "bits_per_char": round(bits_per_char, 6), "characters": len(text),
                "predicted_characters": len(bits), "yardsticks": yardsticks.to_dict(),
                "text": Pieces(lambda: (text[a:b] for a, b in spans_of(len(text))), string=True),
                "surprisal_bits": Pieces(lambda: ([round(b, 6) for b in np.asarray(bits[a:z]).tolist()] for a, z in spans())),
                "expected": Pieces(lambda: (expected(a, b) for a, b in spans()))}
    uniform_bits = max(yardsticks.blind_bpc, 1.0)  # a blind guess among the vocabulary: full colour
    return Output(["position", "char", "bits", "expected"], rows, document,
                  lambda width: score_view(f"{bits_per_char:.3f} bits per character   {source}", text, bits,
                                           _Expected(predicted, chars), uniform_bits,
                                           show_strip=len(text) <= SCORE_STRIP_CHARS, yardsticks=yardsticks))


#: Bits of difference drawn at full colour in the comparison strip.
COMPARISON_SCALE_BITS = 4.0


def _comparison_strip(text: str, advantage: Sequence[float], margin: float) -> Text:
    """The text coloured where one model beats the other by at least `margin` bits: blue where the
    LSTM does (advantage = n-gram bits − LSTM bits > 0), red where the n-gram does; the first
    character (never predicted) and the close calls white."""
    return _prediction_strip(text, (value_rgb(a, gate=False, scale=COMPARISON_SCALE_BITS) if abs(a) >= margin else WHITE
                                    for a in advantage))


def _comparison_legend(margin: float) -> Text:
    key = Text()
    key.append("legend: ", style="dim")
    for tick, label in ((-COMPARISON_SCALE_BITS, "n-gram better"), (-margin, ""), (0.0, "within margin"),
                        (margin, ""), (COMPARISON_SCALE_BITS, "LSTM better")):
        key.append(f" {tick:+.0f} ", style=_style(value_rgb(tick, False, COMPARISON_SCALE_BITS) if tick else WHITE))
        key.append(f" {label} " if label else " ", style="dim")
    key.append(f"bits the LSTM saves over the n-gram; coloured from ±{margin:g} bit", style="dim")
    return key


def _comparison_figures(c, n: int, margin: float) -> list[Text]:
    """Both models' bits per character, the difference, and where each beats the other by `margin`."""
    return [Text(f"LSTM     {c.lstm_bpc:.3f} bits per character"),
            Text(f"{c.order}-gram".ljust(9) + f"{c.ngram_bpc:.3f} bits per character ({c.info.get('smoothing', '')})"),
            Text(f"the LSTM needs {abs(c.ngram_bpc - c.lstm_bpc):.3f} bits per character "
                 f"{'fewer' if c.ngram_bpc >= c.lstm_bpc else 'more'} than the {c.order}-gram over {n} "
                 "predicted characters (the first character is context only)"),
            Text(f"the LSTM beats the n-gram by ≥ {margin:g} bit on {c.lstm_wins} characters "
                 f"({c.lstm_wins / max(n, 1):.1%}); the n-gram beats the LSTM on {c.ngram_wins} "
                 f"({c.ngram_wins / max(n, 1):.1%})", style="dim")]


def _errors_table(breakdown: list[dict], errors: int, n: int, error_p: float) -> Table:
    """The LSTM's errors by category (breakdown records), with each category's definition."""
    table = Table(title=Text(f"the LSTM's {errors} errors (p < {error_p:g}: {errors / max(n, 1):.1%} "
                             "of characters), each in the first category it fits"),
                  title_justify="left", box=None, pad_edge=False)
    for name, justify in (("category", "left"), ("errors", "right"), ("share", "right"), ("definition", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "definition")
    for row in breakdown:
        table.add_row(row["category"], str(row["errors"]), f"{row['share']:.1%}", Text(row["definition"], style="dim"))
    return table


def _brackets_table(brackets: list[dict], order: int, definition: str) -> Table:
    """Closing brackets by distance from their opener: both models' accuracy and mean p (bracket records)."""
    table = Table(title=Text("closing brackets by distance from their opener"), title_justify="left",
                  caption=Text(definition, style="dim"), caption_justify="left", box=None, pad_edge=False)
    for name in ("distance", "closers", "LSTM accuracy", f"{order}-gram accuracy", "LSTM mean p",
                 f"{order}-gram mean p"):
        table.add_column(name, justify="right", no_wrap=True)
    for b in brackets:
        band = f"{b['low']}–{b['high']}" if b["high"] is not None else f"{b['low']}+"
        table.add_row(band, str(b["count"]), f"{b['lstm_accuracy']:.1%}", f"{b['ngram_accuracy']:.1%}",
                      f"{b['lstm_mean_p']:.3f}", f"{b['ngram_mean_p']:.3f}")
    return table


def comparison_output(source: str, comparison, definitions: Mapping[str, str], parameters: Mapping,
                      yardsticks) -> Output:
    """`charlstm score --baseline ngram:N`: both models' bits per character on one text beside the
    model's yardsticks (scoring.yardsticks.Yardsticks), where each beats the other, the LSTM's errors
    by category and the bracket-distance test. `comparison` is a scoring.comparison.Comparison;
    `definitions` name its categories, `parameters` its settings."""
    c = comparison
    lstm_bits, ngram_bits = _floats(c.lstm_bits), _floats(c.ngram_bits)
    errors = c.errors
    records = ({"position": t + 1, "char": c.text[t + 1], "lstm_bits": lb, "ngram_bits": nb, "category": c.category[t]}
               for t, (lb, nb) in enumerate(zip(lstm_bits, ngram_bits)))
    breakdown = [{"category": name, "errors": n, "share": round(n / errors, 6) if errors else 0.0,
                  "definition": definitions[name]} for name, n in c.breakdown.items()]
    brackets = [{"low": b.low, "high": b.high, "count": b.count, "lstm_accuracy": round(b.lstm_accuracy, 6),
                 "ngram_accuracy": round(b.ngram_accuracy, 6), "lstm_mean_p": round(b.lstm_mean_p, 6),
                 "ngram_mean_p": round(b.ngram_mean_p, 6)} for b in c.brackets]
    document = {"checkpoint": source, "baseline": f"ngram:{c.order}", "order": c.order, "characters": len(c.text),
                "predicted_characters": len(lstm_bits), "lstm_bits_per_char": round(c.lstm_bpc, 6),
                "ngram_bits_per_char": round(c.ngram_bpc, 6), "difference": round(c.ngram_bpc - c.lstm_bpc, 6),
                "yardsticks": yardsticks.to_dict(),
                "lstm_beats_ngram": c.lstm_wins, "ngram_beats_lstm": c.ngram_wins, "errors": errors,
                "breakdown": breakdown, "brackets": brackets, "ngram": dict(c.info), "definitions": dict(definitions),
                "parameters": dict(parameters), "text": c.text,
                "lstm_bits": [round(b, 6) for b in lstm_bits], "ngram_bits": [round(b, 6) for b in ngram_bits],
                "category": list(c.category)}
    margin = float(parameters["margin_bits"])

    def picture(width: int) -> Group:
        n = len(lstm_bits)
        parts: list[RenderableType] = [Text(f"LSTM vs {c.order}-gram   {source}", style="bold")]
        if len(c.text) <= SCORE_STRIP_CHARS:
            advantage = [nb - lb for lb, nb in zip(lstm_bits, ngram_bits)]
            parts += [_comparison_strip(c.text, advantage, margin), Text(""), _comparison_legend(margin)]
        else:
            parts.append(Text(f"({len(c.text)} characters: strip left out; --format tsv lists every character)",
                              style="dim"))
        parts += [*_comparison_figures(c, n, margin), Text(f"for scale: {yardsticks.describe(3)}", style="dim"),
                  Text(""), _errors_table(breakdown, errors, n, parameters["error_p"])]
        if brackets:
            parts += [Text(""), _brackets_table(brackets, c.order, definitions["bracket test"])]
        return Group(*parts)

    return Output(["position", "char", "lstm_bits", "ngram_bits", "category"], records, document, picture)
