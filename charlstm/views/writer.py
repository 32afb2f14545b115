"""The terminal of `charlstm write`: a Textual app over a generation.cowriter.CoWriter.

The screen shows the text so far (its tail) with the highlighted continuation as ghost text after
the cursor, the model's top next characters with their probabilities, and a few sampled
continuations with their log-probabilities. Typing (printable keys, Enter, Backspace, paste) goes
into the text; suggestions are taken with keys that never type (Tab, arrows, Alt+digits, Ctrl+…).
Alt+digit is taken in each form a terminal sends it (`take_keys`, `alt_digits_as_alt`). A paste is
one edit, refused in the status line when the text would pass its cap; the worker's progress through
a long read shows there too.

The screen composes, draws and handles keys. Edits change the text at once (plain string work);
then the model worker (writing.ModelWorker, every model step in one thread) is asked for
suggestions, and suggestions made for an older text are never shown or taken. Saving goes where
writing.Saving decides, after asking the user where it must.

Knows nothing of command-line parsing (cli/write.py) or of sampling math (generation/cowriter.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static

from ..config import WriteConfig
from ..errors import CharlstmError, one_line
from ..generation.cowriter import MAX_LENGTH, CoWriter, Suggestions
from .glyphs import alone, keeping_lines, single_line
from .writing import ModelWorker, Saving

#: The end of the text the page shows (the whole text is kept and saved).
PAGE_CHARS = 6000
TEMPERATURE_STEP = 0.1
LENGTH_STEP = 10
BAR_CELLS = 10

#: Keys that take the i-th top character. Alt+digit arrives as alt+1 … alt+9 from a terminal that
#: reports modifiers (kitty's protocol) or sends Alt as an ESC prefix (tmux, gnome-terminal, Windows
#: Terminal, xterm with metaSendsEscape, a Mac terminal with Option as Meta) once
#: `alt_digits_as_alt` has run. Two other forms arrive as characters: macOS's Option+digit
#: (Terminal and iTerm2 by default, US layout) and xterm's default 8-bit meta (the digit with its
#: eighth bit set). A character takes only when the model never saw it, so a writer whose model
#: knows '£' or '§' still types them; '¶' is xterm's Alt+6 under xterm, else a Mac's Option+7.
OPTION_DIGITS = "¡™£¢∞§¶•ª"
META_DIGITS = "".join(chr(0xB0 + d) for d in range(1, 10))      # ± ² ³ ´ µ ¶ · ¸ ¹


def take_keys(environ=os.environ) -> dict[str, int]:
    """The characters that take a top character, each with its index (see OPTION_DIGITS)."""
    order = (OPTION_DIGITS, META_DIGITS) if "XTERM_VERSION" in environ else (META_DIGITS, OPTION_DIGITS)
    return {c: i for digits in order for i, c in enumerate(digits)}


def alt_digits_as_alt() -> None:
    """Have Textual report ESC followed by a digit as alt+digit, as it does for ESC and a letter.
    Its key table maps ESC 1 … ESC 9 to '¡' … 'ª' (what WezTerm on macOS sends for Option+digit),
    which would make Alt+digit under tmux and most Linux and Windows terminals a character the
    model never saw. The table is Textual's own, shared by the process: `charlstm write` runs alone in it."""
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:         # a Textual without this private table: it reports ESC+digit its own way
        return
    for digit in "123456789":
        ANSI_SEQUENCES_KEYS.pop("\x1b" + digit, None)


def bar(fraction: float, cells: int) -> str:
    """A horizontal bar of `fraction` of `cells` cells, in eighths of a cell."""
    eighths = round(min(1.0, max(0.0, fraction)) * cells * 8)
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


# ---- what the panels show

def page_view(text: str, continuation: str | None) -> Text:
    """The end of the text, a cursor, and the highlighted `continuation` after it as ghost text."""
    page = Text()
    if len(text) > PAGE_CHARS:
        page.append(f"… {len(text) - PAGE_CHARS:,} characters before this\n", style="dim")
    page.append(keeping_lines(text[-PAGE_CHARS:]))
    page.append("▏", style="bold reverse")
    if continuation:
        page.append(keeping_lines(continuation), style="italic #7f8c9a")
    return page


def top_panel(suggestions: Suggestions | None) -> Text:
    """The model's most likely next characters, each with its key, probability and a bar."""
    panel = Text("Next character\n", style="bold")
    if suggestions is None:
        panel.append("…", style="dim")
        return panel
    for i, (char, p) in enumerate(suggestions.top):
        shown = alone(char)
        panel.append(f"Alt+{i + 1} ", style="dim")
        panel.append(shown + " " * max(0, 3 - cell_len(shown)), style="bold cyan")
        panel.append(f"{p:6.1%} ")
        panel.append(bar(p, BAR_CELLS), style="cyan")
        panel.append("\n")
    panel.rstrip()
    return panel


def continuation_panel(suggestions: Suggestions | None, selected: int, temperature: float, length: int) -> Text:
    """The sampled continuations with their log-probabilities, the `selected` one marked."""
    panel = Text(f"Continuations · T {temperature:.2f} · {length} chars · log p\n", style="bold",
                 no_wrap=True, overflow="ellipsis")
    if suggestions is None:
        panel.append("…", style="dim")
        return panel
    for i, c in enumerate(suggestions.continuations):
        mark = "▶ " if i == selected else "  "
        panel.append(mark, style="bold green" if i == selected else "")
        panel.append(f"{c.logprob:7.1f}  ", style="dim")
        panel.append(single_line(c.text), style="bold" if i == selected else "")
        panel.append("\n")
    panel.rstrip()
    return panel


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
    """The co-writer's page, panels and keys: edits go to the CoWriter at once, then the worker is
    asked for suggestions; saving asks Saving where and whether, and the user when it must."""

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

    def __init__(self, checkpoint: Path, prime: str, config: WriteConfig, out: Path | None, device: str | None):
        super().__init__()
        self.checkpoint, self.prime, self.config = checkpoint, prime, config
        self.model = ModelWorker(checkpoint, prime, config, device)
        self.saving = Saving(out)
        self.suggestions: Suggestions | None = None
        self.selected = 0
        self.length = config.length
        self.quit_armed = False
        self.notice: str | None = None            # a refusal shown in the status line until the next edit
        self.reading: tuple[int, int] | None = None   # (read, total) of the worker's long read
        self._take_keys = take_keys()
        self._early: list[tuple[str, str | None]] = []   # edits made while the model loads (see _edit)

    @property
    def writer(self) -> CoWriter | None:
        return self.model.writer

    @property
    def fresh(self) -> Suggestions | None:
        """The suggestions, when they were made for the text as it is now."""
        s = self.suggestions
        return s if s is not None and self.writer is not None and s.text == self.writer.text else None

    # ---- layout and the worker's messages ----

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
        self.model.start(self)
        self._render_all()

    def on_unmount(self) -> None:
        self.model.stop()

    def on_model_worker_ready(self, message: ModelWorker.Ready) -> None:
        writer = self.model.take(message)
        self.saving.start(writer.text)
        for kind, text in self._early:
            self._edit(kind, text)
        self._early.clear()
        self._refresh_suggestions()

    def on_model_worker_reading(self, message: ModelWorker.Reading) -> None:
        self.reading = (message.read, message.total)
        self.query_one("#status", Static).update(self._status())

    def on_model_worker_failed(self, message: ModelWorker.Failed) -> None:
        self.app.failure = message.error
        self.app.exit(return_code=1)

    def on_model_worker_suggested(self, message: ModelWorker.Suggested) -> None:
        if self.writer is not None and message.suggestions.text == self.writer.text:
            self.suggestions, self.selected, self.reading = message.suggestions, 0, None
            self._render_all()

    def _refresh_suggestions(self) -> None:
        self.reading, self.notice = None, None
        self.model.ask(self.length)
        self._render_all()

    # ---- typing ----

    def on_key(self, event: events.Key) -> None:
        char = event.character
        if char in self._take_keys and self.writer is not None and char not in self.writer.vocab:
            event.stop()
            event.prevent_default()
            self.action_take(self._take_keys[char])      # Alt+digit as a Mac or xterm sends it
            return
        if event.key == "enter":
            edit: tuple[str, str | None] = ("type", "\n")
        elif event.key in ("backspace", "ctrl+h"):
            edit = ("delete", None)
        elif event.is_printable and not event.key.startswith(("alt+", "ctrl+")):
            edit = ("type", char)
        else:
            return
        event.stop()
        event.prevent_default()
        self._edit(*edit)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self.writer is not None:
            try:                                          # before any copy of a paste too big to keep
                self.writer.check_room(len(event.text), "paste")
            except CharlstmError as error:
                self.notice = one_line(error, 300)
                self._render_all()
                return
        # A terminal sends a pasted line break as CR: read it as LF, and CRLF as itself.
        text = event.text.replace("\r\n", "\0").replace("\r", "\n").replace("\0", "\r\n")
        self._edit("paste", text)

    def _edit(self, kind: str, text: str | None) -> None:
        """Make one edit of the user's: ("type", key), ("paste", text) or ("delete", None)."""
        self.quit_armed = False
        if self.writer is None:
            self._early.append((kind, text))
            self._render_all()
            return
        if kind == "delete":
            changed = self.writer.backspace()
        else:
            try:
                changed = bool(self.writer.paste(text) if kind == "paste" else self.writer.type(text))
            except CharlstmError as error:
                self.notice = one_line(error, 300)
                self._render_all()
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

    # ---- saving: Saving decides, the screen asks ----

    def action_save(self) -> None:
        if self.writer is None:
            return
        if self.saving.out is not None:
            self._save_to(self.saving.out)
        else:
            self.app.push_screen(SaveScreen(), lambda answer: self._save_to(Path(answer)) if answer else None)

    def _save_to(self, path: Path, agreed: bool = False) -> None:
        try:
            path = self.saving.check(path)
        except CharlstmError as error:
            self.notify(one_line(error, 200), severity="error", markup=False)
            return
        if not agreed and self.saving.needs_consent(path):
            self.app.push_screen(ConfirmScreen(f"{path} exists. Replace it?"),
                                 lambda yes: self._save_to(path, True) if yes else None)
            return
        text = self.writer.text
        try:
            self.saving.save(path, text)
        except OSError as error:
            self.notify(one_line(f"{path}: {error.strerror or error}", 200), severity="error", markup=False)
            return
        self.notify(f"saved {len(text):,} characters to {path}", timeout=3, markup=False)
        self._render_all()

    # ---- drawing ----

    def _render_all(self) -> None:
        self.query_one("#text", Static).update(self._page())
        self.query_one("#page", VerticalScroll).scroll_end(animate=False)
        s = self.fresh
        self.query_one("#top", Static).update(top_panel(s))
        temperature = self.writer.temperature if self.writer is not None else self.config.temperature
        self.query_one("#continuations", Static).update(continuation_panel(s, self.selected, temperature,
                                                                           self.length))
        self.query_one("#status", Static).update(self._status())

    def _page(self) -> Text:
        if self.writer is None:
            early = "".join(text for _, text in self._early if text)
            return Text.assemble(Text(keeping_lines((self.prime[-PAGE_CHARS:] + early)[-PAGE_CHARS:])),
                                 Text(" loading the model …", style="dim"))
        s = self.fresh
        chosen = s.continuations[min(self.selected, len(s.continuations) - 1)].text if s and s.continuations else None
        return page_view(self.writer.text, chosen)

    def _status(self) -> Text:
        if self.notice is not None:
            return Text(self.notice, style="bold yellow", no_wrap=True, overflow="ellipsis")
        reading = ""
        if self.reading is not None:
            read, total = self.reading
            reading = f" · reading {read / total:.0%} of {total:,} characters …"
        if self.writer is None:
            return Text(f"loading the model …{reading}", style="dim")
        text, out = self.writer.text, self.saving.out
        if self.saving.unsaved(text):
            saved = "unsaved" + (f" (^S saves to {out})" if out is not None else "")
        else:
            saved = f"saved to {out}" if out is not None and self.saving.agreed else "nothing new to save"
        thinking = "" if self.fresh is not None else (reading or " · thinking …")
        return Text(f"{len(text):,} characters · {saved}{thinking}", style="dim", no_wrap=True, overflow="ellipsis")


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
        alt_digits_as_alt()
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
        unsaved = screen.writer is not None and screen.saving.unsaved(screen.writer.text)
        if unsaved and not screen.quit_armed:
            screen.quit_armed = True
            self.notify("unsaved text: ^S saves, ^Q again quits without saving", severity="warning", markup=False)
            return
        screen.model.stop()                  # a read or a sample in progress ends at its next chunk
        self.exit()
