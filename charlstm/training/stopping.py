"""Stopping on request: Ctrl-C and SIGTERM become a request the loop honours between steps."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class StopRequest(threading.Event):
    """Set to ask the training loop to save and stop after the current step; remembers the signal."""

    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into a stop request the loop honours between steps (so a step is
    never half-applied); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
