"""`charlstm write`: the co-writer's model side against the model itself, and the real Textual app
driven headless by Textual's own pilot (real model, real keys, what the screen shows)."""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from textual import events

import charlstm
from charlstm.cli import main
from charlstm.errors import UnknownCharactersError
from charlstm.config import SampleConfig
from charlstm.generation.sampling import sample_text
from charlstm.generation.cowriter import CoWriter, WriteConfig
from charlstm.views.glyphs import alone, single_line
from charlstm.views.writer import ConfirmScreen, SaveScreen, WriterApp
from conftest import TINY, assert_no_traceback

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_vocab(trained_run):
    return charlstm.load(trained_run)


@pytest.fixture(scope="module")
def checkpoint(trained_run) -> Path:
    return trained_run / "best.safetensors"


@pytest.fixture(scope="module")
def chinese_run(tmp_path_factory, chinese_text) -> Path:
    """A tiny model of Chinese poetry whose lines end in CRLF (briefly trained: only its vocabulary matters)."""
    work = tmp_path_factory.mktemp("zh")
    corpus = work / "poems.txt"
    corpus.write_bytes(chinese_text[:6000].replace("\n", "\r\n").encode("utf-8"))
    out = work / "run"
    result = CliRunner().invoke(main, ["train", str(corpus), "--out", str(out), "--max-steps", "8", "--eval-every",
                                       "8", *TINY])
    assert result.exit_code == 0, result.output
    return out / "best.safetensors"


def reference_logits(model, vocab, text: str) -> torch.Tensor:
    """The next-character logits after `text`, from the fused forward over the whole text."""
    ids = torch.as_tensor(vocab.encode(text).astype("int64")).view(1, -1)
    with torch.inference_mode():
        logits, _ = model(ids)
    return logits[0, -1]                                                    # (V,)


# ---- the model side, without the UI ----

def test_top_characters_are_the_models_own(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "ROMEO:", WriteConfig(seed=1))
    probs = torch.softmax(reference_logits(model, vocab, "ROMEO:"), dim=-1)
    want = torch.topk(probs, 9)
    top = writer.top(9)
    assert [c for c, _ in top] == [vocab.chars[i] for i in want.indices.tolist()]
    torch.testing.assert_close(torch.tensor([p for _, p in top]), want.values, rtol=1e-4, atol=1e-5)


def test_greedy_continuation_is_what_sample_makes(model_vocab):
    model, vocab = model_vocab
    for prime in ("ROMEO:", ""):
        writer = CoWriter(model, vocab, prime, WriteConfig(temperature=0, seed=1))
        (only,) = writer.continuations(5, 60)                   # five greedy samples are one
        assert only.text == sample_text(model, vocab, prime, SampleConfig(length=60, temperature=0))[0]


def test_continuation_log_probability_is_the_models(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING", WriteConfig(seed=5))
    conts = writer.continuations(4, 25)
    assert conts == sorted(conts, key=lambda c: -c.logprob) and len({c.text for c in conts}) == len(conts)
    for c in conts:
        ids = torch.as_tensor(vocab.encode("KING" + c.text).astype("int64")).view(1, -1)
        with torch.inference_mode():
            logits, _ = model(ids)
        logp = torch.log_softmax(logits[0, 3:-1].double(), dim=-1)                       # predicts the continuation
        want = logp.gather(1, ids[0, 4:].view(-1, 1)).sum().item()
        assert len(c.text) == 25 and c.logprob == pytest.approx(want, abs=1e-3)


def test_same_seed_same_suggestions(model_vocab):
    model, vocab = model_vocab
    make = lambda seed: CoWriter(model, vocab, "To be", WriteConfig(seed=seed)).suggest(n=4, length=30)  # noqa: E731
    a, b, c = make(7), make(7), make(8)
    assert a == b and a.continuations != c.continuations


def count_steps(writer: CoWriter) -> list[int]:
    """Wrap the writer's Stepper.advance to count the steps taken (the model itself still runs)."""
    calls = [0]
    advance = writer._stepper.advance

    def counted(*args, **kwargs):
        calls[0] += 1
        return advance(*args, **kwargs)

    writer._stepper.advance = counted
    return calls


def test_edits_cost_one_step_per_new_character_and_undo_restores_a_saved_state(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "First Citizen:\n", WriteConfig(seed=2))
    steps = count_steps(writer)
    writer.type("B")
    writer.sync()
    assert steps[0] == 1
    writer.type("efore we")
    writer.sync()
    assert steps[0] == 9
    writer.backspace()
    writer.backspace()
    writer.sync()
    assert steps[0] == 9                                       # going back re-reads nothing
    writer.undo()                                               # the two deletions: one undo step
    assert writer.text == "First Citizen:\nBefore we"
    writer.sync()
    assert steps[0] == 11                                      # "we" read again, one step each
    writer.accept(" proceed")
    writer.sync()
    assert steps[0] == 19
    writer.undo()
    writer.sync()
    assert steps[0] == 19 and writer.text == "First Citizen:\nBefore we"
    fresh = CoWriter(model, vocab, writer.text)
    assert writer.top(5)[0][0] == fresh.top(5)[0][0]
    torch.testing.assert_close(torch.tensor([p for _, p in writer.top(5)]),
                               torch.tensor([p for _, p in fresh.top(5)]))


def test_undo_steps_are_words_deletion_runs_and_suggestions(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING:")
    for char in " Good morrow":
        writer.type(char)
    writer.accept(", sir")
    writer.backspace()
    writer.backspace()
    history = []
    while writer.undo():
        history.append(writer.text)
    assert history == ["KING: Good morrow, sir", "KING: Good morrow", "KING: Good ", "KING: ", "KING:"]
    assert not writer.undo() and writer.text == "KING:"


def test_going_back_past_thinned_states_rereads_exactly(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "")
    writer._cap = 16                                           # keep few states: older ones are thinned out
    text = sample_text(model, vocab, "", SampleConfig(length=200, seed=3))[0]
    writer.type(text)
    writer.sync()
    assert len(writer._snaps) <= 16
    for _ in range(150):
        writer.backspace()
    writer.sync()
    fresh = CoWriter(model, vocab, text[:50])
    torch.testing.assert_close(torch.tensor([p for _, p in writer.top(9)]), torch.tensor([p for _, p in fresh.top(9)]))


def test_unseen_characters_follow_the_unknown_policy(model_vocab):
    model, vocab = model_vocab
    with pytest.raises(UnknownCharactersError, match="'世'"):
        CoWriter(model, vocab, "To 世 be")
    refuse = CoWriter(model, vocab, "To be")
    with pytest.raises(UnknownCharactersError, match=r"typed text .*'😀'"):
        refuse.type("or 😀")
    assert refuse.text == "To be"
    assert CoWriter(model, vocab, "To 世 be", WriteConfig(unknown="skip")).text == "To  be"
    replace = CoWriter(model, vocab, "To", WriteConfig(unknown="replace"))
    assert replace.type("😀!") == " !" and replace.text == "To !"


# ---- the app, headless, through Textual's pilot ----

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
        probs = torch.softmax(reference_logits(model, vocab, "ROMEO:"), dim=-1)
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


# ---- the command line ----

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help_names_the_keys():
    result = invoke("write", "--help")
    assert result.exit_code == 0
    for words in ("Tab", "Alt+1", "Ctrl+Z", "Ctrl+S", "--prime-file", "--unknown", "--out"):
        assert words in result.output


def test_help_imports_no_torch():
    probe = ("import sys\nfrom charlstm.cli import main\nsys.argv = ['charlstm', 'write', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('IMPORTED=' + ','.join(m for m in ('torch', 'textual') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED=", done.stderr[-500:]


@pytest.mark.parametrize("extra, code, words", [
    ([], 2, "interactive: run it in a terminal"),          # CliRunner's stdin is no terminal
    (["--num-samples", "10"], 2, "10"),
    (["--out", "."], 2, "is a directory"),
    (["--out", "no/such/folder/x.txt"], 2, "no folder"),
    (["--temperature", "nan"], 2, "not a finite number"),
])
def test_bad_input_is_one_line(checkpoint, extra, code, words):
    result = invoke("write", checkpoint, *extra)
    assert_no_traceback(result)
    assert result.exit_code == code and words in result.output, result.output


def test_out_through_a_symbolic_link_is_refused(checkpoint, tmp_path):
    (tmp_path / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    result = invoke("write", checkpoint, "--out", tmp_path / "link.txt")
    assert_no_traceback(result)
    assert result.exit_code == 2 and "is a symbolic link" in result.output
    assert not (tmp_path / "elsewhere.txt").exists()


def test_out_over_a_checkpoint_or_a_file_that_is_not_text_is_refused(checkpoint, tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for out, words in ((checkpoint, "is a checkpoint or a file of a charlstm run"), (binary, "is not a plain-text file")):
        result = invoke("write", checkpoint, "--out", out)
        assert_no_traceback(result)
        assert result.exit_code == 2 and words in result.output, result.output
    assert binary.read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"


def test_prime_file_is_read_strictly_before_the_screen(checkpoint, tmp_path):
    bad = tmp_path / "draft.txt"
    bad.write_bytes(b"KING\xff\xfe")
    result = invoke("write", checkpoint, "--prime-file", bad)
    assert_no_traceback(result)
    assert result.exit_code == 1 and "draft.txt" in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_checkpoint_is_one_line(tmp_path):
    result = invoke("write", tmp_path / "none.safetensors")
    assert_no_traceback(result)
    assert result.exit_code == 1 and "no such checkpoint" in result.output


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_real_command_in_a_terminal(checkpoint, tmp_path):
    """The installed command in a pseudo-terminal: the screen appears, keys type, Ctrl+S saves, Ctrl+Q quits."""
    import pty

    out = tmp_path / "scene.txt"
    pid, fd = pty.fork()
    if pid == 0:                                               # the child: charlstm write in a 100×30 terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "charlstm", "write", str(checkpoint), "--prime", "KING",
                                  "--out", str(out), "--seed", "1"])
    terminal = Terminal(fd)
    try:
        assert terminal.until(lambda seen: b"Next character" in seen and b"%" in seen, 60), terminal.seen[-2000:]
        os.write(fd, b"ab")
        terminal.until(lambda seen: False, 0.5)
        os.write(fd, b"\x13")                                 # Ctrl+S
        assert terminal.until(lambda seen: out.exists(), 30), terminal.seen[-2000:]
        os.write(fd, b"\x11")                                 # Ctrl+Q
        status = None

        def ended(seen):
            nonlocal status
            done, status = os.waitpid(pid, os.WNOHANG)
            return done == pid

        assert terminal.until(ended, 30), terminal.seen[-2000:]
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text(encoding="utf-8") == "KINGab"


class Terminal:
    """The reading end of a pseudo-terminal, drained while waiting (a full one would stall the program)."""

    def __init__(self, fd: int):
        self.fd, self.seen = fd, b""

    def until(self, done, timeout: float) -> bool:
        import select

        deadline = time.monotonic() + timeout
        while not done(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:                                # the program closed the terminal
                    pass
        return True
