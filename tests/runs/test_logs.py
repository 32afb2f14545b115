"""runs/logs.py: the training log and the previews, read as streams: line by line they give what
reading the whole text gives, within any byte cap; a line over the line cap is skipped unheld, a
number out of its bounds is not taken, a text is kept only as far as asked; a log that is not a
regular file is named in one line, never waited on; a resumed log keeps its lines up to the checkpoint."""

from __future__ import annotations

import json
import os
import re

import pytest

from charlstm.errors import CharlstmError
from charlstm.runs.folder import Run
from charlstm.runs.logs import MAX_LOG_LINE, log_number
from conftest import KINDS, plant, within


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


def test_a_line_over_the_cap_is_skipped_and_the_lines_around_it_are_read(tmp_path):
    long = b'{"step": 2, "text": "' + b"x" * MAX_LOG_LINE + b'"}\n'
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1}\n' + long + b'{"step": 3}\n' + long[:-1])
    (tmp_path / "samples.txt").write_bytes(b"--- step 1, val 2.0 bpc ---\nshort\n\n--- step 2, val 1.0 bpc ---\n"
                                           + b"y" * (2 * MAX_LOG_LINE) + b"\nend\n\n")
    log = Run(tmp_path).log
    assert [r["step"] for r in log.records()] == [1, 3]
    # a preview's text is not parsed: of an overlong line, its start is kept
    assert log.read_samples() == [(1, 2.0, "short"), (2, 1.0, "y" * MAX_LOG_LINE + "\nend")]
    (tmp_path / "samples.txt").write_bytes(b"--- step 1, val 2.0 bpc ---\n" + "明".encode() * MAX_LOG_LINE + b"\n")
    assert log.read_samples() == [(1, 2.0, "明" * (MAX_LOG_LINE // 3) + "\n")]   # cut between characters
    log.truncate_metrics(5)
    assert (tmp_path / "metrics.jsonl").read_bytes() == b'{"step": 1}\n{"step": 3}\n'


def test_every_number_is_taken_only_within_its_bounds(tmp_path):
    steps = ["10" * 2600, "1e999", "-1", "true", '"3"', "1.0", str(1 << 60), "7"]   # only the last is a step
    lines = [f'{{"step": {step}, "elapsed_s": 1.5}}' for step in steps]
    lines.append('{"step": 8, "elapsed_s": NaN, "train_loss": Infinity, "val_bpc": 1e999, "chars_per_s": -5, '
                 '"lr": 0.5}')
    lines.append('{"step": 9, "elapsed_s": ' + "9" * 5000 + ', "val_bpc": 1.25, "stopped": "patience"}')
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "samples.txt").write_text(f"--- step {'9' * 5000}, val 1.0 bpc ---\nlost\n\n"
                                          f"--- step {1 << 60}, val 1.0 bpc ---\nlost too\n\n"
                                          "--- step 4, val 1e999 bpc ---\nkept\n\n--- step 5, val -1 bpc ---\nkept\n\n")
    log = Run(tmp_path).log
    assert [r["step"] for r in log.records()] == [7, 8]     # a line of 5,000 digits is no record: Python cannot read it
    assert list(log.records(["elapsed_s", "train_loss", "val_bpc", "chars_per_s", "lr", "stopped"])) == [
        {"step": 7, "elapsed_s": 1.5}, {"step": 8, "chars_per_s": -5, "lr": 0.5}]  # a figure's range is the drawer's
    assert log.read_samples() == [(4, None, "kept"), (5, None, "kept")]
    assert log_number(2.5) == 2.5 and log_number(True) is None and log_number(10 ** 20) is None
    assert log_number(12, step=True) == 12 and log_number(12.0, step=True) is None


def test_a_preview_is_kept_only_as_far_as_asked(tmp_path):
    (tmp_path / "samples.txt").write_text("--- step 1, val 2.0 bpc ---\n" + "ab\n" * 1000 + "\n"
                                          "--- step 2, val 1.0 bpc ---\nshort\n\n")
    previews = list(Run(tmp_path).log.previews(text_chars=5))
    assert previews == [(1, 2.0, "ab\nab"), (2, 1.0, "short")]
    assert list(Run(tmp_path).log.previews(text_chars=4)) == [(1, 2.0, "ab\na"), (2, 1.0, "shor")]


@pytest.mark.parametrize("kind", KINDS)
def test_a_log_of_another_kind_is_named_and_never_waited_on(tmp_path, kind):
    log = Run(tmp_path).log
    plant(log.metrics, kind)
    plant(log.samples, kind)
    said = "not a regular file"
    with within(20):
        for read in (log.read_metrics, log.read_samples, lambda: log.truncate_metrics(3),
                     lambda: log.open_metrics(fresh=False), lambda: log.append_sample(1, 1.0, "text")):
            with pytest.raises(CharlstmError, match=said):
                read()
    assert sorted(os.listdir(tmp_path)) == ["metrics.jsonl", "samples.txt"]
