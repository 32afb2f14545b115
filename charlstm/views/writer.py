"""The terminal of `charlstm write`: a Textual app over a `write.CoWriter`.

The screen shows the text so far (its tail) with the highlighted continuation as ghost text after
the cursor, the model's top next characters with their probabilities, and a few sampled
continuations with their log-probabilities. Typing (printable keys, Enter, Backspace, paste) goes
into the text; suggestions are taken with keys that never type (Tab, arrows, Alt+digits, Ctrl+…).

All model work — importing torch, loading the checkpoint, reading the prime, every step and every
sample — runs in one worker thread, so the screen appears before torch is imported and keys stay
responsive. Edits change the text at once (plain string work); the worker then brings the model to
the text and posts suggestions back; suggestions made for an older text are never shown or taken.

Knows nothing of command-line parsing (cli/write.py) or of sampling math (write.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from ..errors import CharlstmError, one_line
from ..generation.cowriter import MAX_LENGTH, MAX_SAMPLES, MAX_TOP, CoWriter, Suggestions, WriteConfig
from .glyphs import alone, keeping_lines, single_line

#: The end of the text the page shows (the whole text is kept and saved).
PAGE_CHARS = 6000
TEMPERATURE_STEP = 0.1
LENGTH_STEP = 10
BAR_CELLS = 10

def bar(fraction: float, cells: int) -> str:
    """A horizontal bar of `fraction` of `cells` cells, in eighths of a cell."""
    eighths = round(min(1.0, max(0.0, fraction)) * cells * 8)
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


class SaveScreen(ModalScreen[str | None]):
    """Asks where to save."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Save the text to (Enter saves, Esc cancels):")
            yield Input(placeholder="poem.txt", id="path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes / no question."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n", "answer(False)", "no"),
                Binding("escape", "answer(False)", "no", show=False)]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question))
            yield Static("y: yes   n: no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class WriterScreen(Screen):
    """The co-writer's page, panels and keys."""

    BINDINGS = [
        Binding("tab", "accept", "accept", key_display="Tab", priority=True),
        Binding("up", "choose(-1)", "choose", key_display="↑↓", priority=True),
        Binding("down", "choose(1)", "choose", show=False, priority=True),
        Binding("alt+1", "take(0)", "take", key_display="Alt+1…9", priority=True),
        *[Binding(f"alt+{i}", f"take({i - 1})", show=False, priority=True) for i in range(2, 10)],
        Binding("ctrl+r", "resample", "resample", key_display="^R", priority=True),
        Binding("ctrl+up", f"temperature({TEMPERATURE_STEP})", "temp", key_display="^↑↓", priority=True),
        Binding("ctrl+down", f"temperature({-TEMPERATURE_STEP})", "temp", show=False, priority=True),
        Binding("ctrl+right", f"length({LENGTH_STEP})", "length", key_display="^←→", priority=True),
        Binding("ctrl+left", f"length({-LENGTH_STEP})", "length", show=False, priority=True),
        Binding("ctrl+z", "undo", "undo", key_display="^Z", priority=True),
        Binding("ctrl+s", "save", "save", key_display="^S", priority=True),
    ]

    class Ready(Message):
        def __init__(self, writer: CoWriter):
            super().__init__()
            self.writer = writer

    class Failed(Message):
        def __init__(self, error: BaseException):
            super().__init__()
            self.error = error

    class Suggested(Message):
        def __init__(self, suggestions: Suggestions):
            super().__init__()
            self.suggestions = suggestions

    def __init__(self, checkpoint: Path, prime: str, config: WriteConfig, out: Path | None, device: str | None):
        super().__init__()
        self.checkpoint, self.prime, self.config, self.out, self.device = checkpoint, prime, config, out, device
        self.writer: CoWriter | None = None
        self.suggestions: Suggestions | None = None
        self.selected = 0
        self.length, self.num_samples, self.top = config.length, config.num_samples, config.top
        self.saved_text: str | None = None        # what the file holds, once saved
        self.confirmed: Path | None = None        # a file the user agreed to overwrite (or that this session wrote)
        self.quit_armed = False
        self._early: list[str | None] = []        # keys typed while the model loads (None: Backspace)
        self._wake, self._resample, self._stop = threading.Event(), False, False

    # ---- layout ----

    def compose(self) -> ComposeResult:
        yield Static(Text(f"charlstm write · {self.checkpoint}", no_wrap=True, overflow="ellipsis"), id="title")
        with VerticalScroll(id="page", can_focus=False):
            yield Static(Text("loading the model …", style="dim"), id="text")
        with Horizontal(id="panels"):
            yield Static(id="top")
            yield Static(id="continuations")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._model_loop, thread=True, name="model", exit_on_error=False)
        self._render_all()

    def on_unmount(self) -> None:
        self._stop = True
        self._wake.set()

    # ---- the worker: every model step happens here ----

    def _model_loop(self) -> None:
        worker = get_current_worker()
        try:
            from ..runtime import load_model

            loaded, model, _ = load_model(self.checkpoint, self.device)
            writer = CoWriter(model, loaded.vocab, self.prime, self.config)
        except Exception as error:  # reported by the command as one line, after the screen closes
            self.post_message(self.Failed(error))
            return
        self.post_message(self.Ready(writer))
        while not (self._stop or worker.is_cancelled):
            if not self._wake.wait(0.1):
                continue
            self._wake.clear()
            try:
                suggestions = writer.suggest(self.top, self.num_samples, self.length)
            except Exception as error:
                self.post_message(self.Failed(error))
                return
            if not self._wake.is_set():                 # else newer edits are waiting: make those instead
                self.post_message(self.Suggested(suggestions))

    def _refresh_suggestions(self) -> None:
        self._wake.set()
        self._render_all()

    def on_writer_screen_ready(self, message: Ready) -> None:
        self.writer = message.writer
        self.saved_text = self.writer.text if self.out is None or not self.out.exists() else None
        for key in self._early:
            self._edit(key)
        self._early.clear()
        self._refresh_suggestions()

    def on_writer_screen_failed(self, message: Failed) -> None:
        self.app.failure = message.error
        self.app.exit(return_code=1)

    def on_writer_screen_suggested(self, message: Suggested) -> None:
        if self.writer is not None and message.suggestions.text == self.writer.text:
            self.suggestions, self.selected = message.suggestions, 0
            self._render_all()

    @property
    def fresh(self) -> Suggestions | None:
        """The suggestions, when they were made for the text as it is now."""
        s = self.suggestions
        return s if s is not None and self.writer is not None and s.text == self.writer.text else None

    # ---- typing ----

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            key: str | None = "\n"
        elif event.key in ("backspace", "ctrl+h"):
            key = None
        elif event.is_printable and not event.key.startswith(("alt+", "ctrl+")):
            key = event.character
        else:
            return
        event.stop()
        event.prevent_default()
        self._edit(key)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        text = event.text.replace("\r\n", "\0").replace("\r", "\n").replace("\0", "\r\n")
        self._edit(text)

    def _edit(self, key: str | None) -> None:
        """Type `key` (None: delete the last character)."""
        self.quit_armed = False
        if self.writer is None:
            self._early.append(key)
            self._render_all()
            return
        if key is None:
            changed = self.writer.backspace()
        else:
            try:
                changed = bool(self.writer.type(key))
            except CharlstmError as error:
                self.notify(one_line(error, 200), severity="warning", markup=False)
                return
        if changed:
            self._refresh_suggestions()

    # ---- suggestion keys ----

    def action_accept(self) -> None:
        s = self.fresh
        if s is None or not s.continuations:
            self.notify("the model is still thinking", timeout=1.5, markup=False)
            return
        self.writer.accept(s.continuations[min(self.selected, len(s.continuations) - 1)].text)
        self.quit_armed = False
        self._refresh_suggestions()

    def action_take(self, index: int) -> None:
        s = self.fresh
        if s is None or index >= len(s.top):
            return
        self.writer.accept(s.top[index][0])
        self.quit_armed = False
        self._refresh_suggestions()

    def action_choose(self, delta: int) -> None:
        s = self.fresh
        if s is not None and s.continuations:
            self.selected = (self.selected + delta) % len(s.continuations)
            self._render_all()

    def action_resample(self) -> None:
        if self.writer is not None:
            self._refresh_suggestions()

    def action_temperature(self, delta: float) -> None:
        if self.writer is not None:
            self.writer.change_temperature(delta)
            self._refresh_suggestions()

    def action_length(self, delta: int) -> None:
        self.length = min(MAX_LENGTH, max(1, self.length + delta))
        if self.writer is not None:
            self._refresh_suggestions()

    def action_undo(self) -> None:
        if self.writer is not None and self.writer.undo():
            self._refresh_suggestions()

    # ---- saving ----

    def action_save(self) -> None:
        if self.writer is None:
            return
        if self.out is not None:
            self._save_to(self.out)
        else:
            self.app.push_screen(SaveScreen(), lambda answer: self._save_to(Path(answer)) if answer else None)

    def _save_to(self, path: Path, confirmed: bool = False) -> None:
        """Write the text to `path` (UTF-8, exactly as written): never through a symbolic link, never
        over a file the user has not agreed to replace, never into a folder that does not exist."""
        from ..files import write_file

        path = Path(os.path.expanduser(str(path)))
        problem = save_problem(path)
        if problem:
            self.notify(problem, severity="error", markup=False)
            return
        if path.exists() and not confirmed and self.confirmed != path.resolve():
            self.app.push_screen(ConfirmScreen(f"{path} exists. Replace it?"),
                                 lambda yes: self._save_to(path, True) if yes else None)
            return
        text = self.writer.text
        try:
            write_file(path, text.encode("utf-8"))
        except OSError as error:
            self.notify(one_line(f"{path}: {error.strerror or error}", 200), severity="error", markup=False)
            return
        self.out, self.confirmed, self.saved_text = path, path.resolve(), text
        self.notify(f"saved {len(text):,} characters to {path}", timeout=3, markup=False)
        self._render_all()

    # ---- drawing ----

    def _render_all(self) -> None:
        self.query_one("#text", Static).update(self._page())
        self.query_one("#page", VerticalScroll).scroll_end(animate=False)
        self.query_one("#top", Static).update(self._top_panel())
        self.query_one("#continuations", Static).update(self._continuation_panel())
        self.query_one("#status", Static).update(self._status())

    def _page(self) -> Text:
        if self.writer is None:
            early = "".join(k for k in self._early if k)
            return Text.assemble(Text(keeping_lines(self.prime[-PAGE_CHARS:] + early)),
                                 Text(" loading the model …", style="dim"))
        text = self.writer.text
        page = Text()
        if len(text) > PAGE_CHARS:
            page.append(f"… {len(text) - PAGE_CHARS:,} characters before this\n", style="dim")
        page.append(keeping_lines(text[-PAGE_CHARS:]))
        page.append("▏", style="bold reverse")
        s = self.fresh
        if s is not None and s.continuations:
            page.append(keeping_lines(s.continuations[min(self.selected, len(s.continuations) - 1)].text),
                        style="italic #7f8c9a")
        return page

    def _top_panel(self) -> Text:
        panel = Text("Next character\n", style="bold")
        s = self.fresh
        if s is None:
            panel.append("…", style="dim")
            return panel
        for i, (char, p) in enumerate(s.top):
            shown = alone(char)
            panel.append(f"Alt+{i + 1} ", style="dim")
            panel.append(shown + " " * max(0, 3 - cell_len(shown)), style="bold cyan")
            panel.append(f"{p:6.1%} ")
            panel.append(bar(p, BAR_CELLS), style="cyan")
            panel.append("\n")
        panel.rstrip()
        return panel

    def _continuation_panel(self) -> Text:
        temperature = self.writer.temperature if self.writer is not None else self.config.temperature
        panel = Text(f"Continuations · T {temperature:.2f} · {self.length} chars · log p\n", style="bold",
                     no_wrap=True, overflow="ellipsis")
        s = self.fresh
        if s is None:
            panel.append("…", style="dim")
            return panel
        for i, c in enumerate(s.continuations):
            mark = "▶ " if i == self.selected else "  "
            panel.append(mark, style="bold green" if i == self.selected else "")
            panel.append(f"{c.logprob:7.1f}  ", style="dim")
            panel.append(single_line(c.text), style="bold" if i == self.selected else "")
            panel.append("\n")
        panel.rstrip()
        return panel

    def _status(self) -> Text:
        if self.writer is None:
            return Text("loading the model …", style="dim")
        text = self.writer.text
        if self.saved_text == text:
            saved = f"saved to {self.out}" if self.out is not None and self.confirmed else "nothing new to save"
        else:
            saved = "unsaved" + (f" (^S saves to {self.out})" if self.out is not None else "")
        thinking = "" if self.fresh is not None else " · thinking …"
        return Text(f"{len(text):,} characters · {saved}{thinking}", style="dim", no_wrap=True, overflow="ellipsis")


def save_problem(path: Path) -> str | None:
    """Why `path` cannot be saved to (a symbolic link, a folder, a missing folder), or None."""
    if os.path.islink(path):
        return f"{path} is a symbolic link; save to the file itself or choose another name"
    if path.is_dir():
        return f"{path} is a folder; give a file name"
    if not path.parent.is_dir():
        return f"no folder {path.parent}; create it first or choose another name"
    return None


class WriterApp(App):
    """`charlstm write`: after it runs, `failure` holds the error that ended it, if any."""

    TITLE = "charlstm write"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "request_quit", "quit", key_display="^Q", priority=True)]
    CSS = """
    #title { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    #page { height: 1fr; padding: 0 1; border: round $primary; }
    #panels { height: auto; max-height: 12; }
    #top { width: 34; height: auto; padding: 0 1; border: round $secondary; }
    #continuations { width: 1fr; height: auto; padding: 0 1; border: round $secondary; }
    #status { height: 1; padding: 0 1; }
    #dialog { width: 80%; max-width: 100; height: auto; padding: 1 2; border: thick $primary; background: $surface; }
    SaveScreen, ConfirmScreen { align: center middle; }
    """

    def __init__(self, checkpoint: str | os.PathLike, prime: str = "", config: WriteConfig = WriteConfig(),
                 out: str | os.PathLike | None = None, device: str | None = None):
        super().__init__()
        self.failure: BaseException | None = None
        self._writer_screen = WriterScreen(Path(checkpoint), prime, config, Path(out) if out else None, device)

    def get_default_screen(self) -> Screen:
        return self._writer_screen

    @property
    def writer(self) -> CoWriter | None:
        return self._writer_screen.writer

    @property
    def page(self) -> WriterScreen:
        return self._writer_screen

    def action_request_quit(self) -> None:
        screen = self._writer_screen
        unsaved = screen.writer is not None and screen.saved_text != screen.writer.text
        if unsaved and not screen.quit_armed:
            screen.quit_armed = True
            self.notify("unsaved text: ^S saves, ^Q again quits without saving", severity="warning", markup=False)
            return
        self.exit()


__all__ = ["MAX_SAMPLES", "MAX_TOP", "WriterApp", "save_problem"]
