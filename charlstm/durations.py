"""How a span of seconds reads to a person, in the units `--time` takes: 90 → 1m30s.

The one owner of that wording (training's messages, the Done line of `charlstm train`, the
report). Imports nothing: training and the views both use it.
"""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """90 → '1m30s', 7200 → '2h', 12.25 → '12.2s'."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
