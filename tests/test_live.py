"""The live training view: fed the events of a real training run, it draws the bar, the figures,
both curves and the latest preview; the plain path stays for pipes."""

from __future__ import annotations

import io

from rich.console import Console

from charlstm.views.live import LiveView, braille_plot
from charlstm.config import ModelConfig, TrainConfig
from charlstm.training.loop import train
from conftest import TINY, run_cli


def test_braille_plot_draws_each_curve_between_its_range():
    rising = [(x, float(x)) for x in range(11)]
    text = braille_plot([("a", "cyan", rising)], width=10, height=3).plain
    lines = text.splitlines()
    assert lines[0].startswith("10.00 │") and lines[2].startswith(" 0.00 │")
    body = [line[7:] for line in lines[:3]]
    # a rising line: its dots start low on the left and end high on the right, joined in between
    assert body[2][0] != " " and body[0][-1] != " " and all(any(ch != " " for ch in col) for col in zip(*body))
    assert lines[-1].strip().startswith("0") and lines[-1].strip().endswith("10")


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


def test_a_pipe_gets_plain_lines(tmp_path, shakespeare_text):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(shakespeare_text[:20000], encoding="utf-8")
    result = run_cli("train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "10", "--eval-every", "5",
                     *TINY)
    assert result.exit_code == 0, result.output
    assert "── step 5: validation" in result.stderr and "\u2800" not in result.stderr
