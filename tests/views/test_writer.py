"""views/writer.py: `charlstm write`'s screen, the real Textual app driven headless by Textual's own
pilot (real model, real keys, what the screen shows): suggestions, keys (Alt+digit in each form a
terminal sends it), temperature and length, model work off the UI thread, a big paste (memory, time,
one undo step, quitting during it, the cap), saving through the files guard, Chinese, emoji and CRLF.
(The keys and a paste through a real terminal: tests/cli/test_write.py.)"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
import torch
from textual import events
from textual.keys import _character_to_key

from charlstm.config import SampleConfig, WriteConfig
from charlstm.errors import UnknownCharactersError
from charlstm.generation import cowriter
from charlstm.generation.sampling import sample_text
from charlstm.views.glyphs import alone, single_line
from charlstm.views.writer import META_DIGITS, OPTION_DIGITS, ConfirmScreen, SaveScreen, WriterApp, take_keys
from conftest import ENV, ROOT, SMALL, next_logits, quoted_lines, run_cli


def run_app(app: WriterApp, script, size=(110, 32)):
    async def go():
        async with app.run_test(size=size, notifications=True) as pilot:
            await script(pilot)

    asyncio.run(go())


async def settle(pilot, timeout: float = 60.0):
    """Wait until the screen's suggestions were made for the text as it is now."""
    app, deadline = pilot.app, time.monotonic() + timeout
    while app.page.fresh is None:
        assert app.failure is None, app.failure
        assert time.monotonic() < deadline, "no suggestions"
        await pilot.pause(0.02)
    await pilot.pause()
    return app.page.fresh


def screen_text(app) -> str:
    """What the terminal shows, line by line, from Textual's own SVG screenshot of the screen."""
    svg = app.export_screenshot()
    cells: dict[int, dict[int, str]] = defaultdict(dict)
    for match in re.finditer(r'<text [^>]*x="(?P<x>[\d.]+)"[^>]*line-(?P<line>\d+)\)">(?P<text>.*?)</text>', svg):
        cells[int(match["line"])][round(float(match["x"]) / 12.2)] = html.unescape(match["text"]).replace("\xa0", " ")
    lines = []
    for line in sorted(cells):
        out = ""
        for column in sorted(cells[line]):
            out += " " * max(0, column - len(out)) + cells[line][column]
        lines.append(out.rstrip())
    return "\n".join(lines)


def test_screen_shows_text_top_characters_and_continuations(checkpoint, model_vocab):
    model, vocab = model_vocab
    app = WriterApp(checkpoint, "ROMEO:", WriteConfig(seed=3, length=30))

    async def script(pilot):
        s = await settle(pilot)
        screen = screen_text(pilot.app)
        assert "ROMEO:" in screen and "Next character" in screen and "T 0.80 · 30 chars" in screen
        probs = torch.softmax(next_logits(model, vocab, "ROMEO:"), dim=-1)
        best = int(probs.argmax())
        assert s.top[0][0] == vocab.chars[best]
        assert re.search(rf"Alt\+1 {re.escape(alone(vocab.chars[best]))} +{probs[best].item():.1%}", screen), screen
        assert len(s.continuations) >= 2
        for c in s.continuations:
            assert f"{c.logprob:.1f}  {single_line(c.text)}" in screen, screen
        assert "Tab accept" in screen and "^Z undo" in screen and "^S save" in screen

    run_app(app, script)


def test_keys_type_accept_take_undo(checkpoint):
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=4, length=20))

    async def script(pilot):
        await settle(pilot)
        await pilot.press("H", "E", "N", "R", "Y", "enter", "space", "backspace", "T")
        assert app.writer.text == "KINGHENRY\nT"
        s = await settle(pilot)
        assert "KINGHENRY" in screen_text(app)
        await pilot.press("down", "tab")                    # the second continuation
        accepted = "KINGHENRY\nT" + s.continuations[1].text
        assert app.writer.text == accepted
        s = await settle(pilot)
        await pilot.press("alt+2")                          # the second most likely character
        assert app.writer.text == accepted + s.top[1][0]
        await pilot.press("ctrl+z", "ctrl+z")
        assert app.writer.text == "KINGHENRY\nT"
        s = await settle(pilot)
        assert s.text == "KINGHENRY\nT"
        await pilot.press("alt+a")                          # a modifier key does not type
        assert app.writer.text == "KINGHENRY\nT"

    run_app(app, script)


def test_temperature_length_and_resample_keys(checkpoint, model_vocab):
    model, vocab = model_vocab
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=6, length=30, temperature=0.8))

    async def script(pilot):
        first = await settle(pilot)
        await pilot.press("ctrl+up", "ctrl+up")
        s = await settle(pilot)
        assert s.temperature == pytest.approx(1.0) and "T 1.00 · 30 chars" in screen_text(app)
        await pilot.press("ctrl+r")
        await pilot.pause(0.05)
        again = await settle(pilot)
        assert again.continuations != s.continuations and again.top == first.top
        await pilot.press("ctrl+left")
        s = await settle(pilot)
        assert s.length == 20 and all(len(c.text) == 20 for c in s.continuations)
        await pilot.press(*["ctrl+down"] * 12)
        s = await settle(pilot)
        assert s.temperature == 0 and "T 0.00 · 20 chars" in screen_text(app)
        greedy = sample_text(model, vocab, "KING", SampleConfig(length=20, temperature=0))[0]
        assert [c.text for c in s.continuations] == [greedy]

    run_app(app, script)


def test_model_work_runs_off_the_ui_thread_and_early_keys_are_kept(checkpoint):
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=400, num_samples=9))
    ui_thread, model_threads = threading.get_ident(), set()

    async def script(pilot):
        await pilot.press("a", "b")                          # before the model has loaded: kept
        while app.writer is None:
            await pilot.pause(0.02)
        advance = app.writer._stepper.advance

        def watched(*args, **kwargs):
            model_threads.add(threading.get_ident())
            return advance(*args, **kwargs)

        app.writer._stepper.advance = watched
        await settle(pilot)
        assert app.writer.text == "KINGab"
        await pilot.press("c")
        assert app.writer.text == "KINGabc" and "KINGabc" in screen_text(app)   # shown before the model answers
        await settle(pilot)

    run_app(app, script)
    assert model_threads and ui_thread not in model_threads


def test_unseen_typed_character_is_refused_with_a_message(checkpoint):
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))

    async def script(pilot):
        await settle(pilot)
        await pilot.press("世")
        await pilot.pause(0.1)
        assert app.writer.text == "KING"
        screen = screen_text(app)
        assert "never saw:" in screen and "'世'" in screen

    run_app(app, script)


def test_a_prime_with_unseen_characters_ends_the_app_with_the_error(checkpoint):
    app = WriterApp(checkpoint, "KING 世", WriteConfig())

    async def script(pilot):
        deadline = time.monotonic() + 60
        while app.return_code is None and time.monotonic() < deadline:
            await pilot.pause(0.05)

    run_app(app, script)
    assert app.return_code == 1 and isinstance(app.failure, UnknownCharactersError) and "'世'" in str(app.failure)


def test_save_writes_exactly_and_asks_before_replacing(checkpoint, tmp_path):
    out = tmp_path / "poem.txt"
    out.write_text("an old poem", encoding="utf-8")
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10), out=out)

    async def script(pilot):
        await settle(pilot)
        await pilot.press("space", "x")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmScreen) and "Replace it?" in screen_text(app)
        await pilot.press("n")
        assert out.read_text(encoding="utf-8") == "an old poem"
        await pilot.press("ctrl+s", "y")
        assert out.read_bytes() == b"KING x"
        await pilot.press("tab", "ctrl+s")                   # agreed once: saving again just saves
        assert out.read_bytes() == app.writer.text.encode() and len(app.writer.text) == 16
        assert "saved to" in screen_text(app)
        await pilot.press("ctrl+q")

    run_app(app, script)
    assert app.return_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poem.txt"]    # no temp files left


def test_save_asks_for_a_path_and_refuses_a_symbolic_link(checkpoint, tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep me", encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(target)
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))
    os.chdir(tmp_path)

    async def script(pilot):
        await settle(pilot)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SaveScreen)
        await pilot.press(*"link.txt", "enter")
        await pilot.pause(0.1)
        assert "link.txt is a symbolic link" in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.press(*"new.txt", "enter")
        assert (tmp_path / "new.txt").read_text(encoding="utf-8") == "KING"

    try:
        run_app(app, script)
    finally:
        os.chdir(ROOT)
    assert target.read_text(encoding="utf-8") == "keep me" and (tmp_path / "link.txt").is_symlink()


def test_save_goes_through_the_files_guard(checkpoint, tmp_path):
    """No file that is not plain text is replaced, not even after a yes: a checkpoint, a binary file."""
    (tmp_path / "data.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "model.safetensors").write_bytes(checkpoint.read_bytes())
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))
    os.chdir(tmp_path)

    async def script(pilot):
        await settle(pilot)
        for name, words in (("data.bin", "is not a plain-text"), ("model.safetensors", "is a checkpoint")):
            await pilot.press("ctrl+s")
            await pilot.press(*name, "enter")
            await pilot.pause(0.1)
            screen = screen_text(app)
            assert words in screen and not isinstance(app.screen, ConfirmScreen), screen

    try:
        run_app(app, script)
    finally:
        os.chdir(ROOT)
    assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01\x02"
    assert (tmp_path / "model.safetensors").read_bytes() == checkpoint.read_bytes()


def test_quit_with_unsaved_text_asks_twice(checkpoint):
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))

    async def script(pilot):
        await settle(pilot)
        await pilot.press("a", "ctrl+q")
        await pilot.pause(0.1)
        assert app.return_code is None and "^Q again quits" in screen_text(app)
        await pilot.press("ctrl+q")

    run_app(app, script)
    assert app.return_code == 0


def test_chinese_emoji_and_crlf_survive_writing_and_saving(chinese_run, chinese_text, tmp_path):
    chinese_run = chinese_run / "best.safetensors"
    out = tmp_path / "詩.txt"
    first, second = chinese_text.splitlines()[1:3]            # 气和玉烛，睿化著鸿明。 / 缇管一阳生。
    prime = first + "\r\n"
    app = WriterApp(chinese_run, prime, WriteConfig(seed=1, length=12, unknown="replace"), out=out)

    async def script(pilot):
        await settle(pilot)
        assert first in screen_text(app)
        await pilot.press(second[0])
        app.page.post_message(events.Paste(second[1:] + "😀\r\n"))     # a paste, with an unseen emoji
        await pilot.pause(0.1)
        s = await settle(pilot)
        screen = screen_text(app)
        assert first in screen and second in screen and "😀" not in screen
        await pilot.press("alt+1", "ctrl+s")
        replacement = " " if " " in app.writer.vocab else app.writer.vocab.chars[0]
        assert app.writer.text == prime + second + replacement + "\r\n" + s.top[0][0]
        assert out.read_bytes() == app.writer.text.encode("utf-8")

    run_app(app, script)


async def press_character(pilot, char: str) -> None:
    """A key that types `char`, as a terminal's driver reports it (the pilot's own press leaves the
    character out for many keys outside ASCII)."""
    pilot.app.post_message(events.Key(_character_to_key(char), char))
    await pilot.pause()


def test_alt_digits_take_in_each_form_a_terminal_sends(checkpoint, tmp_path):
    """alt+digit (a terminal that reports modifiers, or ESC and a digit: tmux, gnome-terminal, Windows
    Terminal), macOS's Option+digit characters and xterm's 8-bit meta characters all take a top
    character, each a character the model never saw; one the model knows is typed."""
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))

    async def script(pilot):
        taken = "KING"
        for key in ("alt+1", OPTION_DIGITS[0], "alt+3", OPTION_DIGITS[1], META_DIGITS[0], META_DIGITS[2],
                    OPTION_DIGITS[8]):
            s = await settle(pilot)
            await (pilot.press(key) if key.startswith("alt+") else press_character(pilot, key))
            index = int(key[-1]) - 1 if key.startswith("alt+") else take_keys()[key]
            taken += s.top[index][0]
            assert app.writer.text == taken, key
        await settle(pilot)
        assert "never saw" not in screen_text(app)

    run_app(app, script)
    corpus = tmp_path / "prices.txt"
    corpus.write_text("a cup of tea costs £3 and a § mark\n" * 200, encoding="utf-8")
    result = run_cli("train", corpus, "--out", tmp_path / "run", *SMALL, "--max-steps", "2")
    assert result.exit_code == 0, result.output
    app = WriterApp(tmp_path / "run" / "best.safetensors", "tea ", WriteConfig(seed=1, length=5))

    async def known(pilot):
        await settle(pilot)
        await press_character(pilot, "£")
        await press_character(pilot, "§")
        s = await settle(pilot)
        await press_character(pilot, "¡")                    # never seen: takes the top character
        assert app.writer.text == "tea £§" + s.top[0][0]

    run_app(app, known)


def test_take_keys_pick_xterms_meaning_of_the_one_character_both_forms_share():
    assert take_keys({})["¶"] == OPTION_DIGITS.index("¶") == 6
    assert take_keys({"XTERM_VERSION": "XTerm(390)"})["¶"] == META_DIGITS.index("¶") == 5
    assert all(take_keys({})[c] == i for i, c in enumerate(OPTION_DIGITS))


def test_a_paste_over_the_cap_is_refused_in_the_status_line(checkpoint, monkeypatch):
    monkeypatch.setattr(cowriter, "MAX_WRITE_CHARS", 100)
    app = WriterApp(checkpoint, "KING", WriteConfig(seed=1, length=10))

    async def script(pilot):
        await settle(pilot)
        app.page.post_message(events.Paste("a" * 97))
        await pilot.pause(0.1)
        assert app.writer.text == "KING"
        status = screen_text(app).splitlines()[-2]
        assert "paste refused: 97 characters; the co-writer's text holds at most 100 and has 4" in status, status
        await pilot.press("S")
        assert app.writer.text == "KINGS" and "refused" not in screen_text(app)
        app.page.post_message(events.Paste("a" * 95))          # what fits is taken
        await pilot.pause(0.1)
        assert len(app.writer.text) == 100

    run_app(app, script)


#: A child process: `charlstm write` (the real app, headless under Textual's pilot) is handed a paste of
#: argv[2] characters, then undoes it, then gets a paste of argv[3] and is quit while it reads that.
#: It prints what it saw as JSON, with its own peak resident memory (VmHWM: ru_maxrss would count the
#: pytest process it was forked from, which Linux keeps across exec).
_BIG_PASTE = """
import asyncio, json, sys, time
from textual import events
from charlstm.config import WriteConfig
from charlstm.views.writer import WriterApp

checkpoint, size, more = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = open(sys.argv[4], encoding="utf-8").read()
app, seen = WriterApp(checkpoint, "ab ", WriteConfig(seed=1, length=20)), {}

async def fresh(pilot):
    while app.page.fresh is None:
        assert app.return_code is None, app.failure
        await pilot.pause(0.02)

async def go():
    async with app.run_test(size=(110, 32)) as pilot:
        await fresh(pilot)
        started = time.monotonic()
        app.page.post_message(events.Paste((lines * (size // len(lines) + 1))[:size]))
        while app.writer is None or len(app.writer.text) != 3 + size:
            await pilot.pause(0.02)
        await fresh(pilot)
        seen["seconds"] = time.monotonic() - started
        await pilot.press("ctrl+z")
        seen["undone"] = app.writer.text
        await fresh(pilot)
        app.page.post_message(events.Paste((lines * (more // len(lines) + 1))[:more]))
        while app.page.reading is None:
            await pilot.pause(0.02)
        seen["reading"] = app.page.reading
        started = time.monotonic()
        await pilot.press("ctrl+q", "ctrl+q")
    seen["quit_seconds"] = time.monotonic() - started

asyncio.run(go())
seen["quit_seconds"] = max(seen["quit_seconds"], 0)
seen["peak_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(seen))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc")
def test_a_big_paste_is_one_pass_in_bounded_memory_and_time_and_quitting_stops_it(quote_run, tmp_path):
    """1 MiB pasted into a 16-unit model's co-writer: suggestions for it within a minute, the process
    under 800 MB at its peak, the paste one undo step; quitting while a paste of 3 MiB is read ends
    the app (worker and all) within seconds."""
    lines = tmp_path / "lines.txt"
    lines.write_text(quoted_lines(2000, seed=1), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", _BIG_PASTE, str(quote_run / "best.safetensors"), str(1 << 20),
                          str(3 << 20), str(lines)], env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["seconds"] < 60 and seen["peak_mb"] < 800, seen
    assert seen["undone"] == "ab "
    read, total = seen["reading"]
    assert total == 3 + (3 << 20) and read < total
    assert seen["quit_seconds"] < 3, seen
