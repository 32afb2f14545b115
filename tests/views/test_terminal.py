"""views/traces.py and views/scores.py: terminal pictures through a real rich console into a StringIO:
the right colour codes (red negative, blue positive, gates green), text never read as markup,
invisible characters made visible, stacked rows that line up, the find, windows, stats and score views."""

from __future__ import annotations


import numpy as np

from charlstm.inspection.analysis import Window
from charlstm.inspection.saturation import GateSaturation
from charlstm.views.colours import BLUE, GREEN, RED, value_rgb, vector_scale
from charlstm.views.traces import find_view, legend, neuron_view, stacked_view, stats_table, strip, summary, windows_view
from charlstm.views.scores import score_view
from conftest import plain, render

def bg(rgb) -> str:
    return f"48;2;{rgb[0]};{rgb[1]};{rgb[2]}"


def test_signed_values_are_red_and_blue_gates_are_green():
    out = render(strip("ab", [-1.0, 1.0], gate=False, scale=1.0))
    assert bg(RED) in out and bg(BLUE) in out
    red, blue = value_rgb(-1.0, False), value_rgb(1.0, False)
    assert (red, blue) == (RED, BLUE) and red[0] > red[2] and blue[2] > blue[0]   # red is red, blue is blue
    half = value_rgb(-0.5, gate=False, scale=1.0)
    assert bg(half) in render(strip("x", [-0.5], gate=False, scale=1.0)) and half[0] > half[2]
    gates = render(strip("xy", [0.0, 1.0], gate=True))
    assert bg((255, 255, 255)) in gates and bg(GREEN) in gates
    # The cell state is scaled by its largest |value|; tanh-bounded vectors and gates are not.
    assert vector_scale("cell", [0.5, -3.0, 2.0]) == 3.0
    assert vector_scale("hidden", [0.1, -0.2]) == 1.0 and vector_scale("forget", [0.3]) == 1.0
    assert bg(RED) in render(strip("a", [-3.0], gate=False, scale=3.0))


def test_ink_stays_legible_on_dark_backgrounds():
    dark = render(strip("a", [1.0], gate=False, scale=1.0))
    light = render(strip("a", [0.05], gate=False, scale=1.0))
    assert "38;2;255;255;255" in dark and "38;2;0;0;0" in light


def test_corpus_text_is_never_markup_and_invisible_characters_show():
    text = "[bold]x[/bold] [Exit]\n\tend\x07"
    shown = plain(strip(text, [0.5] * len(text), gate=True))
    assert "[bold]x[/bold] [Exit]↵\n→end·" in shown
    view = plain(neuron_view("layer 1 · [red]title[/red]", text, [0.1] * len(text), gate=True))
    assert "[red]title[/red]" in view and "[bold]x[/bold]" in view
    assert "legend:" in view and "min +0.100 at 0 '['" in view and "(27 characters)" in view


def test_summary_and_legend():
    line = summary([0.5, -2.0, 1.0], "a\nb").plain
    assert line.startswith("min -2.000 at 1 '↵'   max +1.000 at 2 'b'   mean -0.167   std 1.312")
    assert "scaled to max |value| 3" in legend(False, 3.0).plain and "gate, 0 to 1" in legend(True, 1.0).plain


def test_stacked_rows_line_up_and_wrap_long_lines():
    text = "short line\n" + "x" * 150
    rows = {"forget": ([0.5] * len(text), True, 1.0), "cell": ([-1.0] * len(text), False, 2.0)}
    lines = plain(stacked_view("layer 1 · neuron 3", text, rows, width=60), width=60).splitlines()
    forget = [line for line in lines if line.startswith("forget │")]
    cell = [line for line in lines if line.startswith("cell   │")]
    assert len(forget) == len(cell) >= 4          # the 150-character line is cut to fit 60 columns
    assert [f[8:] for f in forget] == [c[8:] for c in cell]
    assert forget[0] == "forget │short line↵" and all(len(line) <= 60 for line in lines)
    assert "".join(f[8:] for f in forget) == "short line↵" + "x" * 150


def test_find_and_windows_views():
    text = 'say "hi" and "[b]ye"'
    feature = [0.0] * 4 + [1.0] * 4 + [0.0] * 5 + [1.0] * 7
    rows = [(2, 7, 0.93, [0.9 * f for f in feature], False, 1.0), (1, 3, -0.5, [-0.4] * len(text), False, 1.0)]
    out = plain(find_view("units most correlated with regex:[a-z]+", text, (0, len(text)), feature, rows, "chance 0.1"),
                width=120)
    assert "regex:[a-z]+" in out and "+0.930" in out and "-0.500" in out and '"[b]ye"' in out
    assert bg(value_rgb(0.9, False, 1.0)) in render(find_view("t", text, (0, len(text)), feature, rows, "c"), 120)
    windows = windows_view("layer 2 · cell · neuron 7", text, [0.0] * len(text), False, 1.0,
                           [Window(0, 8, 5, 0.9)], [Window(10, 20, 15, -0.8)])
    shown = plain(windows, 120)
    assert "highest values" in shown and "+0.900" in shown and "-0.800" in shown and "[b]ye" in shown
    assert "\x1b[1;4;" in render(windows, 120) or ";4;" in render(windows, 120)    # the peak is underlined


def test_stats_table():
    sat = [GateSaturation(1, "forget", np.array([0.0, 0.6]), np.array([0.9, 0.1]))]
    out = plain(stats_table("gate saturation", sat, 0.1, 0.9))
    assert "forget" in out and "30.0%" in out and "50.0%" in out and "1/2" in out


def test_score_view():
    text = "abca"
    out = plain(score_view("bits", text, [0.5, 4.0, 1.0], ["b", "x", "a"], uniform_bits=2.0))
    assert "1.833 bits per character over 3 predicted characters" in out
    assert "most surprising" in out and "'x'" in out
    colours = render(score_view("bits", text, [0.5, 4.0, 1.0], ["b", "x", "a"], uniform_bits=2.0))
    assert bg((255, 127, 14)) in colours                                          # 4 bits ≥ a blind guess: full orange


