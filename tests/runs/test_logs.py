"""runs/logs.py: the training log and the previews, read as streams: line by line they give what
reading the whole text gives, within any byte cap; a resumed log keeps its lines up to the checkpoint."""

from __future__ import annotations

import json
import os
import re

from charlstm.runs.folder import Run


_HEAD = re.compile(r"^--- step (\d+), val (\S+) bpc ---\n", re.M)


def _whole_metrics(raw: bytes, limit: int) -> list[dict]:
    """The reference: the first `limit` bytes decoded whole, cut by str.splitlines."""
    records = []
    for line in raw[:limit].decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def _whole_samples(raw: bytes, limit: int) -> list[tuple]:
    """The reference: one regex over the first `limit` bytes decoded whole."""
    text = raw[:limit].decode("utf-8", errors="replace")
    found = list(_HEAD.finditer(text))
    previews = []
    for i, head in enumerate(found):
        body = text[head.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
        try:
            val = float(head.group(2))
        except ValueError:
            val = None
        previews.append((int(head.group(1)), val if val == val else None, body[:-2] if body.endswith("\n\n") else body))
    return previews


def test_logs_read_line_by_line_give_what_the_whole_text_gives_within_the_byte_cap(tmp_path):
    # Odd line breaks (\r, \u2028, \x1c) split a JSON line as str.splitlines does; a preview head after
    # one of them is not a head; text before the first head is none; bytes that are not UTF-8 are replaced;
    # every cap, wherever it cuts (mid-line, mid-character, mid-head), gives the same records.
    metrics = ('{"step": 1, "train_loss": 2.5}\n{"step": 2}\r{"step": 3}\u2028{"step": "x"}\n\n'
               '{"step": 4, "text": "café 🌙"}\x1c{"step": 5}\r\n[1, 2]\n{"step": 6, "val_bpc": null}\n'
               '{"step": 7, "trunc').encode("utf-8").replace(b'"x"', b'"\xff"')
    samples = ("before any head\n--- step 5, val 2.125 bpc ---\nFirst \u2028--- step 6, val 1.0 bpc ---\nstill first\n\n"
               "--- step 10, val nan bpc ---\n床前明月光\r\n\n\n--- step 15, val x bpc ---\n\n"
               "--- step 20, val 1.500 bpc ---\r\nnot a head\n--- step 25, val 1.250 bpc ---\nlast 🌙").encode("utf-8")
    run = Run(tmp_path)
    (tmp_path / "metrics.jsonl").write_bytes(metrics)
    (tmp_path / "samples.txt").write_bytes(samples)
    assert run.log.read_metrics() == _whole_metrics(metrics, len(metrics)) and len(run.log.read_metrics()) == 6
    assert run.log.read_samples() == _whole_samples(samples, len(samples)) and len(run.log.read_samples()) == 4
    for limit in range(1, max(len(metrics), len(samples)) + 2):
        assert run.log.read_metrics(limit) == _whole_metrics(metrics, limit), limit
        assert run.log.read_samples(limit) == _whole_samples(samples, limit), limit


def test_a_resumed_log_keeps_the_lines_up_to_the_checkpoint(tmp_path):
    log = Run(tmp_path).log
    writer = log.open_metrics(fresh=True)
    for step in (1, 2, 3):
        writer.write({"step": step, "val_bpc": float("nan") if step == 2 else step / 2})
    writer.close()
    (tmp_path / "metrics.jsonl").open("a").write('{"step": 1}\r{"step": 9}\n\n{"step": 2, "torn')
    log.truncate_metrics(2)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1, "val_bpc": 0.5}\n{"step": 2, "val_bpc": null}\n{"step": 1}\n'
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []
