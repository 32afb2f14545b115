"""Training progress as plain lines and a bar, where the live view cannot draw."""

from __future__ import annotations

import sys


class PlainProgress:
    """Training events drawn on stderr: a tqdm bar (seconds of the budget, else steps) and lines for
    the start, the yardsticks, notices and each validation with its preview, above the bar."""

    def __init__(self, out_dir, config, quiet: bool, fitted: str = "", yardsticks=None, console=None) -> None:
        from tqdm import tqdm

        self.fitted, self.yardsticks, self.console = fitted, yardsticks, console
        self.out_dir, self.config = out_dir, config
        self.by_time = config.max_steps is None and config.time_budget is not None
        self.last_val = None
        self.bar = tqdm(total=int(config.time_budget) if self.by_time else config.max_steps,
                        unit="s" if self.by_time else "step", file=sys.stderr, dynamic_ncols=True, leave=True,
                        mininterval=0.5, disable=quiet,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
                        if self.by_time else None)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def __call__(self, event) -> None:
        if event.kind == "start":
            if self.fitted:
                self._say(f"charlstm: {self.fitted}")
            self._say(f"charlstm: training into {self.out_dir}/ — {event.text}")
            if self.yardsticks is not None:
                self._say(f"charlstm: for scale, {self.yardsticks.describe(3)}")
            self.bar.n = int(event.elapsed_s) if self.by_time else event.step
        elif event.kind == "notice":
            self._say(f"charlstm: {event.text}")
        else:
            self._advance(event)
            if event.kind == "eval":
                score = "n/a (no validation text)" if event.val_bpc is None else f"{event.val_bpc:.3f} bits/char"
                if event.weights_val_bpc is not None:
                    score += f" (the weights' moving average; the weights themselves {event.weights_val_bpc:.3f})"
                self._say(f"── step {event.step}: validation {score} ──")
                if event.text:
                    self._say(event.text.rstrip("\n"))

    def _say(self, line: str) -> None:
        """A line above the bar (which tqdm clears and redraws around it), broken at spaces to the
        width of a console that wraps (cli.common.stderr_console on a terminal), else written whole."""
        if self.console is None or self.console.soft_wrap:
            self.bar.write(line, file=sys.stderr)
            return
        with self.bar.external_write_mode(file=sys.stderr):
            self.console.print(line, markup=False, highlight=False)

    def _advance(self, event) -> None:
        if event.val_bpc is not None:
            self.last_val = event.val_bpc
        target = int(min(event.elapsed_s, self.config.time_budget)) if self.by_time else event.step
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        postfix = f"step {event.step}"
        if event.train_loss is not None:
            postfix += f", loss {event.train_loss:.3f}"
        if self.last_val is not None:
            postfix += f", val {self.last_val:.3f} bpc"
        if event.chars_per_s:
            postfix += f", {event.chars_per_s / 1000:.1f}k chars/s"
        self.bar.set_postfix_str(postfix, refresh=False)
