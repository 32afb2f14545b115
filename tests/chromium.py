"""Headless Chromium driven from the tests: the page, the atlas page and the report are opened in a
real browser. Outside CI a missing browser skips those tests; in CI (the variable CI set, as .ci/run
sets it) it fails them."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    """Headless Chromium driven through the DevTools protocol over a pipe (--remote-debugging-pipe):
    JSON messages ending in a NUL byte, written to the browser's fd 3 and read from its fd 4. No
    port, no network, no dependency beyond the standard library."""

    def __init__(self, binary: str, profile: Path):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Move the browser's ends to 10 and above so bash's `3<&n 4>&m` cannot clobber one with the other.
        r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
                "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "--window-size=1200,800", "about:blank"]
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', *args],
                                     pass_fds=(r, w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(r)
        os.close(w)
        self.writer = os.fdopen(to_browser_w, "wb", buffering=0)
        self.reader = from_browser_r
        self.buffer = b""
        self.events: list[dict] = []
        self.next_id = 0
        self.session: str | None = None

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reader], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.reader, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0, session: bool = True) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message(deadline))

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def until(self, expression: str, timeout: float = 120.0) -> None:
        """Wait until `expression` is true in the page (work a page does after it loads)."""
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            time.sleep(0.05)

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def click(self, selector: str) -> None:
        x, y = self.centre(selector)
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y)

    def centre(self, selector: str, index: int = 0) -> tuple[float, float]:
        box = self.js(f"(() => {{ const r = document.querySelectorAll({json.dumps(selector)})[{index}]"
                      ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return box[0], box[1]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.writer.close()
        os.close(self.reader)


def css_rgb(css: str) -> tuple[int, ...]:
    """(r, g, b) of a CSS colour such as `rgb(12, 34, 56)`."""
    return tuple(int(v) for v in re.findall(r"\d+", css))


def close_to(page_colours, expected) -> bool:
    """The colours the page shows are the expected (r, g, b), each within 1 of its value."""
    return len(page_colours) == len(expected) and all(
        max(abs(a - b) for a, b in zip(css_rgb(css), rgb)) <= 1 for css, rgb in zip(page_colours, expected))


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer's machine; fail in CI (the environment variable CI set, as .ci/run does),
    where a missing browser must not turn the only browser test into a silent pass."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}")
    pytest.skip(reason)


def open_browser(profile: Path) -> Browser:
    """A headless Chromium with its profile in `profile`, or a skip (a failure in CI) when there is none."""
    binary = find_chromium()
    if binary is None or shutil.which("bash") is None:
        missing = "chromium" if binary is None else "bash (it hands the DevTools pipe to chromium)"
        skip_unless_ci(f"{missing} not found (Debian: apt-get install chromium); the page is not tested in a browser")
    return Browser(binary, profile)
