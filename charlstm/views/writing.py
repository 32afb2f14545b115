"""What the co-writer's screen (writer.py) runs on, beside drawing: the model, off the UI thread,
and the policy of where and whether the text is saved.

    ModelWorker   all model work — importing torch, loading the checkpoint, reading the prime,
                  every step and every sample — in one thread, so the screen appears before torch
                  is imported and keys stay responsive; it reports to the screen by message, and
                  stops between two chunks of a read (or two sampling steps) when the screen goes,
                  the worker is cancelled or newer edits wait
    Saving        where and whether the text is written: through the files guard and its atomic
                  writer, a file that exists replaced only after the user agrees

Knows nothing of panels or keys, nor of sampling math (generation/cowriter.py).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker

from ..config import WriteConfig
from ..files import check_text_output, write_file
from ..generation.cowriter import CoWriter, Suggestions


class ModelWorker:
    """The co-writer's model side, in one thread off the UI: it loads the model, makes the CoWriter
    and then, each time it is asked, suggestions for the text as it is then. It tells the screen it
    runs for by message — Reading (how far a long read is), Ready (with the CoWriter), Suggested,
    Failed — and stops with the screen: between two chunks of a read, its `keep_going` says stop."""

    #: Seconds between two Reading messages of one long read.
    PROGRESS_SECONDS = 0.25

    class Reading(Message):
        def __init__(self, read: int, total: int):
            super().__init__()
            self.read, self.total = read, total

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

    def __init__(self, checkpoint: Path, prime: str, config: WriteConfig, device: str | None):
        self.checkpoint, self.prime, self.config, self.device = checkpoint, prime, config, device
        self.writer: CoWriter | None = None       # set on the UI thread, when the screen takes Ready
        self.length = config.length               # characters per continuation asked for
        self._wake, self._stop = threading.Event(), False
        self._screen: Screen | None = None
        self._worker: Worker | None = None
        self._next_progress = 0.0

    def start(self, screen: Screen) -> None:
        """Run the thread as a worker of `screen`, posting its messages there."""
        self._screen = screen
        self._worker = screen.run_worker(self._run, thread=True, name="model", exit_on_error=False)

    def take(self, ready: Ready) -> CoWriter:
        """On the UI thread: the CoWriter the thread made, from now on the one edits go to."""
        self.writer = ready.writer
        return self.writer

    def ask(self, length: int) -> None:
        """Make suggestions with continuations of `length` for the text as it is now (a newer ask
        replaces one not yet answered)."""
        self.length = length
        self._wake.set()

    def stop(self) -> None:
        """End the thread: a read or a sample in progress stops at its next chunk or step."""
        self._stop = True
        self._wake.set()
        if self._worker is not None:
            self._worker.cancel()

    def _stopped(self) -> bool:
        return self._stop or (self._worker is not None and self._worker.is_cancelled)

    def keep_going(self, read: int, total: int) -> bool:
        """Asked by the CoWriter between chunks and steps: say how far a long read is (now and then),
        and stop when the screen goes, the worker is cancelled or newer edits wait."""
        now = time.monotonic()
        if read < total and now >= self._next_progress:
            self._next_progress = now + self.PROGRESS_SECONDS
            self._screen.post_message(self.Reading(read, total))
        return not (self._stopped() or self._wake.is_set())

    def _run(self) -> None:
        post = self._screen.post_message
        try:
            from ..runtime import load_model

            loaded, model, _ = load_model(self.checkpoint, self.device)
            writer = CoWriter(model, loaded.vocab, self.prime, self.config, self.keep_going)
        except Exception as error:  # reported by the command as one line, after the screen closes
            post(self.Failed(error))
            return
        if self._stopped():
            return
        post(self.Ready(writer))
        while not self._stopped():
            if not self._wake.wait(0.1):
                continue
            self._wake.clear()
            try:
                suggestions = writer.suggest(self.config.top, self.config.num_samples, self.length, self.keep_going)
            except Exception as error:
                post(self.Failed(error))
                return
            if suggestions is not None and not self._wake.is_set():   # else newer edits wait: make those
                post(self.Suggested(suggestions))


class Saving:
    """Where and whether the text is written. The file is the one --out named, or the last one
    saved to; each path goes through files.check_text_output (never through a link, over a folder,
    a checkpoint, a run's file or a file that is not plain text, nor into a folder that does not
    exist) and is written by files.write_file (atomic, UTF-8, exactly as written). A file that
    exists is replaced only after the user agrees, once per file."""

    def __init__(self, out: Path | None):
        self.out = out
        self.agreed: Path | None = None           # a file the user agreed to replace (or that this session wrote)
        self.saved_text: str | None = None        # what the file holds, once saved

    def start(self, text: str) -> None:
        """The text when the model is ready: nothing to save yet, unless --out names a file that
        already holds something else."""
        self.saved_text = text if self.out is None or not self.out.exists() else None

    @staticmethod
    def check(path: str | os.PathLike) -> Path:
        """`path` (~ expanded) if the text may be written there; else a CharlstmError saying why."""
        return check_text_output(Path(os.path.expanduser(str(path))))

    def needs_consent(self, path: Path) -> bool:
        """Whether writing to `path` would replace a file the user has not agreed to replace."""
        return path.exists() and self.agreed != path.resolve()

    def save(self, path: Path, text: str) -> None:
        """Write `text` to `path` (checked, and agreed to if it exists); an OSError if the system refuses."""
        write_file(path, text.encode("utf-8"))
        self.out, self.agreed, self.saved_text = path, path.resolve(), text

    def unsaved(self, text: str) -> bool:
        """Whether `text` differs from what was last saved (or from the start, when nothing was)."""
        return self.saved_text != text
