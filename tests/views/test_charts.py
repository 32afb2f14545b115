"""views/charts.py: the axis arithmetic of every chart holds for any finite value. Ticks end, are few,
finite and inside their range; a zero range is a flat one; every coordinate a chart writes is finite
and inside its picture. A run whose log holds values no figure can take gets its report, with those
values left out and a note that says so."""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from charlstm.views.charts import Axis, LogFigures, Reference, Series, nice_ticks, svg_chart
from conftest import charlstm_process

#: Any finite float: zero and -0.0, subnormals, the largest, and everything between.
FINITE = st.floats(allow_nan=False, allow_infinity=False)
BIGGEST = 1.7976931348623157e308
#: The red team's: 1e16 and the float after it (a step below the spacing of floats there), one
#: point at 1e17 (padding lost to rounding), and their kin at every scale.
EDGES = [(1e16, math.nextafter(1e16, math.inf)), (-1e16, math.nextafter(-1e16, -math.inf)), (1e17, 1e17),
         (-1e17, -1e17), (0.0, 5e-324), (-5e-324, 5e-324), (-BIGGEST, BIGGEST), (BIGGEST, BIGGEST),
         (2.2250738585072014e-308, 2.225073858507202e-308), (1.0, math.nextafter(1.0, 2.0))]


class _Late(Exception):
    pass


@contextlib.contextmanager
def finishes(seconds: float = 2.0):
    """Fail (rather than hang) when the block runs longer than `seconds`; the failure keeps nothing
    of the block (a loop that never ends may have filled a list)."""
    def stop(signum, frame):
        raise _Late

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    late = False
    try:
        yield
    except _Late:
        late = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if late:
        raise AssertionError(f"still running after {seconds} s")


def _check_ticks(lo: float, hi: float, count: int) -> None:
    with finishes():
        ticks = nice_ticks(lo, hi, count)
    assert 1 <= len(ticks) <= count + 2, (lo, hi, ticks)
    assert all(math.isfinite(t) and lo <= t <= hi for t in ticks), (lo, hi, ticks)
    assert ticks == sorted(set(ticks)), ticks
    if hi == lo:
        assert ticks == [lo]                                  # a zero range is flat: one tick


@settings(max_examples=400, deadline=None)
@given(FINITE, FINITE, st.integers(1, 12))
def test_ticks_end_few_finite_and_in_range_for_any_finite_bounds(a, b, count):
    _check_ticks(min(a, b), max(a, b), count)


def test_ticks_at_the_red_teams_values_and_their_kin():
    for lo, hi in EDGES:
        for count in (1, 2, 5, 12):
            _check_ticks(min(lo, hi), max(lo, hi), count)
    assert nice_ticks(1e16, math.nextafter(1e16, math.inf)) == [1e16, math.nextafter(1e16, math.inf)]
    assert nice_ticks(1e17, 1e17) == [1e17] and nice_ticks(0.0, math.inf) == []


@settings(max_examples=300, deadline=None)
@given(FINITE, FINITE, FINITE, st.floats(0, 1))
def test_an_axis_places_any_value_between_its_ends(a, b, value, head_room):
    axis = Axis.spanning(a, b, head_room)
    assert math.isfinite(axis.lo) and math.isfinite(axis.hi) and axis.lo <= axis.hi
    where = axis.fraction(value)
    assert 0.0 <= where <= 1.0
    if axis.lo == axis.hi:
        assert where == 0.5                                   # flat: every value at the middle
    else:
        assert axis.fraction(axis.lo) == 0.0 and axis.fraction(axis.hi) == 1.0


#: A point of a chart: (step, seconds, y), each any finite float.
POINT = st.tuples(FINITE, FINITE, FINITE)
_NUMBER = re.compile(r'\s(?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"')


def _coordinates(svg: str) -> list[float]:
    values = [float(v) for v in _NUMBER.findall(svg)]
    for points in re.findall(r'points="([^"]*)"', svg):
        values += [float(v) for pair in points.split() for v in pair.split(",")]
    return values


def _check_chart(series: list[Series], references: list[Reference]) -> None:
    for axis in ("steps", "time"):
        with finishes():
            svg = svg_chart(series, axis, "loss", references=references)
        coordinates = _coordinates(svg)
        assert coordinates and all(math.isfinite(v) and -1 <= v <= 761 for v in coordinates), svg[:2000]
        assert svg.count('class="tick"') <= 2 * (5 + 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(POINT, min_size=1, max_size=8), min_size=1, max_size=3), st.lists(FINITE, max_size=2))
def test_a_chart_of_any_finite_points_writes_finite_coordinates_inside_it(curves, levels):
    _check_chart([Series(f"run {i}", "#000", points, dashed=i % 2 == 1) for i, points in enumerate(curves)],
                 [Reference(f"level {y}", y) for y in levels])


def test_charts_at_the_red_teams_values_and_their_kin():
    for lo, hi in EDGES:
        for points in ([(lo, lo, lo), (hi, hi, hi)], [(lo, lo, lo)], [(0, 0, lo), (1, 1, hi)]):
            _check_chart([Series("a", "#000", points)], [Reference("blind guess", hi)])


def test_log_figures_keep_what_each_figure_can_take_and_count_the_rest():
    figure = LogFigures()
    records = [{"step": 3, "val_bpc": 2.5, "train_loss": 1.0, "elapsed_s": 4.0, "chars_per_s": 900.0},
               {"step": -1}, {"step": 10**30}, {"step": 4, "val_bpc": -0.5}, {"step": 5, "val_bpc": 1e17},
               {"step": 6, "train_loss": 1e300}, {"step": 7, "elapsed_s": "soon"}, {"step": 8, "chars_per_s": True},
               {"step": 9, "val_bpc": None}]
    seen = [figure(r, name) for r in records for name in r]
    assert seen[:5] == [3.0, 2.5, 1.0, 4.0, 900.0]
    assert dict(figure.left_out) == {"step": 2, "val_bpc": 2, "train_loss": 1, "elapsed_s": 1, "chars_per_s": 1}
    note = figure.note()
    assert note.startswith("Left out of the charts") and "2 validation bits per character values outside 0 to 1,000" \
        in note and "2 step values outside 0 to 1,000,000,000,000" in note
    assert LogFigures().note() == ""


def test_a_report_of_a_log_holding_values_no_figure_can_take_is_drawn_with_a_note(small_run, tmp_path):
    """The red team's values written into a real run's metrics.jsonl: `charlstm report` ends (in its own
    process, under a time limit), the page draws what is plausible with finite coordinates only, and
    says what it left out."""
    nxt = math.nextafter(-1e16, -math.inf)
    lines = [{"step": 4, "elapsed_s": 1.0, "val_bpc": -1e16}, {"step": 5, "elapsed_s": 1.5, "val_bpc": nxt},
             {"step": 6, "elapsed_s": 2.0, "train_loss": 1e17, "chars_per_s": 1e300},
             {"step": 7, "elapsed_s": -3.0, "val_bpc": 2.0}, {"step": 10**30, "elapsed_s": 2.0, "val_bpc": 2.0},
             {"step": 8, "elapsed_s": 1e300, "train_loss": 1.0},
             {"step": 9, "elapsed_s": 3.0, "val_bpc": 2.5, "train_loss": 1.7, "chars_per_s": 5e-324}]
    with open(small_run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    page = tmp_path / "r.html"
    done = charlstm_process("report", small_run, "--out", page, "--novelty-length", "0", timeout=120)
    assert done.returncode == 0, done.stderr
    text = page.read_text(encoding="utf-8")
    note = re.search(r'<p class="dim left-out">([^<]*)</p>', text)
    assert note, text[:3000]
    assert ("2 validation bits per character values outside 0 to 1,000" in note.group(1)
            and "1 training loss (nats) value outside" in note.group(1)
            and "1 characters per second value outside" in note.group(1)
            and "2 elapsed seconds values outside" in note.group(1))
    # The record at step 10**30 is no record at all: the log's reader keeps only steps a run can reach
    # (runs.logs.STEP_BOUNDS), so none of its values reaches a chart and the note has no step to count.
    assert "step value" not in note.group(1)
    for svg in re.findall(r"<svg class=\"chart\".*?</svg>", text, flags=re.S):
        assert all(math.isfinite(v) for v in _coordinates(svg))
