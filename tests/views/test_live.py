"""views/live.py, the live training view: fed the events of a real training run, it draws the bar, the
figures (the weights' beside the average's), both curves and the latest preview; the plain path stays
for pipes. `charlstm train` is also run under a real terminal (a pty), where the live view draws and
no line may wrap inside a figure."""

from __future__ import annotations

import fcntl
import io
import math
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from charlstm.views.live import RECENT_SHARE, VALIDATION_MARK, LiveView, braille_plot, pieces_in_lines
from charlstm.config import ModelConfig, TrainConfig
from charlstm.training.loop import train
from conftest import TINY


def test_braille_plot_draws_each_curve_between_its_range():
    rising = [(x, float(x)) for x in range(11)]
    text = braille_plot([("a", "cyan", rising)], width=10, height=3).plain
    lines = text.splitlines()
    assert lines[0].startswith("10.00 │") and lines[2].startswith(" 0.00 │")
    body = [line[7:] for line in lines[:3]]
    # a rising line: its dots start low on the left and end high on the right, joined in between
    assert body[2][0] != " " and body[0][-1] != " " and all(any(ch != " " for ch in col) for col in zip(*body))
    assert lines[-1].strip().startswith("0") and lines[-1].strip().endswith("10")


def test_the_chart_scales_to_the_recent_half_of_the_run():
    """A run falls from a blind guess in its first steps, then creeps: the y axis runs to the highest
    point of the last half, so the creep fills the height, and the x axis says what ran off the top.
    Validation is a mark of its own, told from the training line without colour."""
    fall = [(x, 6.0 - 3.5 * min(x, 20) / 20 - 0.3 * x / 400) for x in range(1, 401)]   # 6 → 2.5, then → 2.2
    validation = [(x, y + 0.05) for x, y in fall if x % 50 == 0]
    curves = [("training", "", fall), ("validation", "", validation, VALIDATION_MARK)]
    lines = braille_plot(curves, width=60, height=8, recent=0.5).plain.splitlines()
    top = max(y for x, y in [*fall, *validation] if x >= 200)
    assert lines[0].startswith(f"{top:5.2f} │") and lines[7].startswith(f"{min(y for _, y in fall):5.2f} │")
    assert "the first steps, higher, run off the top" in lines[-1]
    def rows_of_the_last_half(lines: list[str]) -> int:
        return sum(any(ch not in " " + VALIDATION_MARK for ch in line[7:][30:]) for line in lines[:8])

    assert rows_of_the_last_half(lines) >= 6               # the last half of the run spans the chart's height
    shown = [y for _, y in validation if y <= top]                 # what lies above the axis is not drawn
    assert 0 < len(shown) < len(validation)
    assert sum(line.count(VALIDATION_MARK) for line in lines[:8]) == len(shown)
    assert not lines[0][7:].strip(" ⠀").startswith(("⠁", "⠉", "⠈"))      # no flat row of clipped points on top
    whole = braille_plot(curves, width=60, height=8).plain.splitlines()
    assert float(whole[0][:5]) > 5.5 and "run off the top" not in whole[-1]
    assert rows_of_the_last_half(whole) <= 2               # where the whole range squeezed it into the bottom rows


def test_the_view_draws_a_real_run(tmp_path, shakespeare_text):
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    config = TrainConfig(max_steps=40, time_budget=None, eval_every=10, eval_seconds=0, batch_size=16, seq_len=48,
                         preview_chars=60, learning_rate=1e-2)
    model = ModelConfig(vocab_size=1, hidden_size=48, embedding_size=16)
    view = LiveView(tmp_path / "run", config, console=console, refresh_per_second=20)
    with view:
        result = train(shakespeare_text[:20000], tmp_path / "run", model, config, on_event=view)
    assert len(view.val_curve) == 4 and len(view.train_curve) == 40
    console.print(view.render())
    out = console.file.getvalue()
    assert "100%  40/40 steps" in out
    assert f"validation {result.last_val_bpc:.3f} bpc (best {result.best_val_bpc:.3f})" in out
    assert "training into" in out and "preview at step 40" in out
    assert any(0x2801 <= ord(c) <= 0x28FF for c in out)                 # the curves, in braille dots
    assert view.preview.strip()[:20] in out


def test_control_characters_of_a_preview_are_not_sent_to_the_terminal(tmp_path):
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    view = LiveView(tmp_path, TrainConfig(max_steps=10, time_budget=None), console=console)
    from charlstm.training.events import Event, EventKind

    view(Event(kind=EventKind.EVAL, step=5, val_bpc=3.0, text="ok\x1b]0;owned\x07 then\x1b[2J"))
    console.print(view.render())
    out = console.file.getvalue()
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "ok·]0;owned· then·[2J" in out


def test_the_live_view_shows_the_weights_figure_beside_the_averages(tmp_path):
    from charlstm.training.events import Event, EventKind

    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    view = LiveView(tmp_path, TrainConfig(max_steps=10, time_budget=None), console=console)
    view(Event(kind=EventKind.EVAL, step=5, val_bpc=2.25, weights_val_bpc=2.5))
    console.print(view.render())
    assert "validation 2.250 bpc (best 2.250)   averaged; the weights alone 2.500" in console.file.getvalue()
    view(Event(kind=EventKind.EVAL, step=10, val_bpc=2.2))                 # the weights themselves were better
    later = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    later.print(view.render())
    assert "validation 2.200 bpc (best 2.200)" in later.file.getvalue() and "averaged" not in later.file.getvalue()


ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07)")


def _train(tmp_path, corpus: str, *, columns: int | None = None, term: str = "xterm-256color") -> str:
    """`charlstm train` run as a user runs it, its stderr a terminal `columns` wide (a pty; None: a
    pipe): what it wrote there, colours and cursor moves removed."""
    path = tmp_path / "plays.txt"
    path.write_text(corpus, encoding="utf-8")
    command = [sys.executable, "-m", "charlstm", "train", str(path), "--out", str(tmp_path / f"run-{columns}-{term}"),
               "--max-steps", "30", "--eval-every", "10", *TINY]
    env = {**os.environ, "TERM": term, "PYTHONIOENCODING": "utf-8"}
    env.pop("COLUMNS", None)
    if columns is None:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        return done.stderr.decode("utf-8")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    out = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:            # the last writer is gone
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=300) == 0, out.decode("utf-8", "replace")
    return ANSI.sub("", out.decode("utf-8")).replace("\r\n", "\n")


def test_a_terminal_gets_the_live_view_and_a_pipe_plain_lines(tmp_path, shakespeare_text):
    shown = _train(tmp_path, shakespeare_text[:20000], columns=100)
    assert any(0x2801 <= ord(c) <= 0x28FF for c in shown) and VALIDATION_MARK in shown    # the chart, both curves
    assert "for scale: blind guess" in shown and "── step 10: validation" not in shown
    piped = _train(tmp_path, shakespeare_text[:20000])
    assert "── step 10: validation" in piped and not any(0x2800 <= ord(c) <= 0x28FF for c in piped)
    assert "charlstm: for scale, a blind guess among the" in piped


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_no_line_of_train_output_wraps_inside_a_number(tmp_path, shakespeare_text, term):
    """On a narrow terminal every line train writes fits it, so the terminal never breaks one (in
    the middle of a figure, as it broke 'best validation 2.' / '202 bits/char'): lines are broken
    at spaces by charlstm. Only the command to paste is one line, for the terminal to fold."""
    columns = 52
    shown = _train(tmp_path, shakespeare_text[:20000], columns=columns, term=term)
    pieces = [piece for line in shown.split("\n") for piece in line.split("\r")]
    commands = [p for p in pieces if p.startswith(("Sample it with: ", "Start from it with: "))]
    assert commands[-1].rstrip().endswith(f"sample {tmp_path / f'run-{columns}-{term}'}")
    too_wide = [p for p in pieces if cell_len(p.rstrip()) > columns and p not in commands]
    assert not too_wide
    done = " ".join(shown[shown.index("Done: "):].split())
    assert re.search(r"best validation \d\.\d{3} bits/char; for scale, a blind guess among the \d+ characters "
                     r"scores \d\.\d{3} bits/char", done)


def test_the_figures_break_only_between_figures():
    pieces = [Text("step 12,345"), Text("loss 2.345 bpc"), Text("validation 2.535 bpc (best 2.535)"),
              Text("averaged; the weights alone 2.570"), Text("23.3k chars/s")]
    for width in (40, 52, 80, 100, 200):                     # each piece fits in every width
        lines = pieces_in_lines(pieces, width).plain.split("\n")
        assert all(len(line) <= width for line in lines), (width, lines)
        assert [piece for line in lines for piece in line.split("   ")] == [p.plain for p in pieces]
    assert pieces_in_lines(pieces, 200).plain.count("\n") == 0


#: Any finite float: zero, subnormals, the largest, and everything between.
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _check_braille(curves, width: int, height: int, x_max, recent) -> None:
    text = braille_plot(curves, width=width, height=height, x_max=x_max, recent=recent).plain
    lines = text.splitlines()
    assert len(lines) == height + 2
    assert all(cell_len(line) <= len("-99999.99 ") + 1 + width for line in lines[:height]), lines  # labels stay short


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(FINITE, FINITE), min_size=1, max_size=12), min_size=1, max_size=2),
       st.integers(4, 40), st.integers(2, 8), st.none() | FINITE, st.none() | st.floats(0.05, 1))
@example([[(0.0, 1.7976931348623157e308)] * 3], 4, 2, None, None)   # a column's mean of the largest floats
def test_the_braille_chart_draws_any_finite_points(curves, width, height, x_max, recent):
    """The live view's chart shares the report's axis (charts.Axis): any finite values draw, a zero
    range is a flat line, nothing overflows or divides by zero."""
    _check_braille([("a", "", points) for points in curves], width, height, x_max, recent)


def test_the_braille_chart_at_the_red_teams_values():
    big = 1.7976931348623157e308
    for points in ([(1, 1e17)], [(1, 1e17), (2, 1e17)], [(1, 1e16), (2, math.nextafter(1e16, math.inf))],
                   [(1, -big), (2, big)], [(1, big), (1, big), (2, big)], [(0, 5e-324), (1e300, 0.0)], [(-5.0, 2.0)]):
        _check_braille([("a", "", points), ("b", "", points, VALIDATION_MARK)], 30, 6, None, RECENT_SHARE)
    flat = braille_plot([("a", "", [(1, 1e17), (2, 1e17)])], width=20, height=4).plain.splitlines()
    assert "1e+17" in flat[0] and any(ch != " " for ch in flat[1][7:] + flat[2][7:])    # a flat line mid-height
