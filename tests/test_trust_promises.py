"""Every promise of README's "Reliability" and "Checkpoints" sections that no other test held.

Each test drives the real command line (a subprocess where signals, exit codes or a one-line stderr
are the point; CliRunner with `assert_no_traceback` elsewhere) on real tiny models and real text,
and asserts on messages, exit codes and file contents, so each can fail:

- CI cannot pass without the browser (tests/test_page.py fails instead of skipping when CI is set;
  .ci/run fails when it cannot install chromium);
- a second Ctrl-C stops at once and leaves the last checkpoint byte for byte as it was;
- loading refuses NaN / infinite weights (sample, inspect, score, train --resume);
- zip, PDF and executable corpora are refused, and nothing is written;
- an unwritable run directory, a full disk and a file-size limit while saving are one line on
  stderr, exit 1, the previous checkpoint intact and no temp file left;
- checkpoints are validated field by field (kind, format, config types, vocabulary, dtype, extra
  or missing tensors, training metadata) from the CLI.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from charlstm.runs import checkpoint as ckpt
from charlstm.cli import main
from conftest import assert_no_traceback

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
#: Small and fast; no evaluation and no log line until the end, so after the step-0 checkpoint the
#: trainer writes nothing until it is told to stop (the tests below choose when a write happens).
QUIET_RUN = ["--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-len", "32", "--preview",
             "0", "--lr", "5e-3", "--seed", "7", "--max-steps", "100000", "--eval-every", "100000",
             "--log-every", "100000"]


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error")]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.fixture()
def corpus(tmp_path, shakespeare_text) -> Path:
    path = tmp_path / "plays.txt"
    path.write_text(shakespeare_text[:30_000], encoding="utf-8")
    return path


def _start(args: list[str], **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "charlstm", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _wait_for_first_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 90) -> bytes:
    """The bytes of the step-0 checkpoint, once it is whole (renamed into place, no temp file left)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run / ckpt.LATEST).is_file() and not _temps(run):
            time.sleep(0.3)  # the first steps run; nothing is written until a stop is asked for
            return (run / ckpt.LATEST).read_bytes()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no checkpoint appeared: {proc.communicate()[1][-2000:]}")


# ---------------------------------------------------------------------------------- CI and the browser


def test_the_browser_test_fails_instead_of_skipping_in_ci(tmp_path):
    """With CI set, a missing chromium is a failure of tests/test_page.py, not a skip (without CI it
    skips, as on a developer's machine with no browser)."""
    no_browser = tmp_path / "empty-bin"
    no_browser.mkdir()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
           str(ROOT / "tests" / "test_page.py") + "::test_page_in_headless_chromium"]
    base = {k: v for k, v in ENV.items() if k != "CI"} | {"PATH": str(no_browser)}
    in_ci = subprocess.run(cmd, env={**base, "CI": "1"}, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert in_ci.returncode == 1, in_ci.stdout[-3000:]
    assert "1 failed" in in_ci.stdout and "CI is set and chromium not found" in in_ci.stdout


@pytest.mark.parametrize("apt_get, message", [
    (None, "there is no apt-get to install it"),
    ("exit 100", "could not install chromium"),
    ("exit 0", "chromium installed but not on PATH"),
], ids=["no apt-get", "apt-get fails", "apt-get installs nothing"])
def test_ci_fails_when_it_cannot_install_the_browser(tmp_path, apt_get, message):
    """.ci/run, copied into a scratch tree and run with a PATH holding no chromium, stops with an
    error before it makes a virtual environment or runs a test."""
    tree = tmp_path / "tree"
    (tree / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", tree / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("dirname"), bin_dir / "dirname")
    if apt_get is not None:
        (bin_dir / "apt-get").write_text(f"#!/bin/sh\n{apt_get}\n")
        (bin_dir / "apt-get").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PATH": str(bin_dir)}
    done = subprocess.run([shutil.which("bash"), str(tree / ".ci" / "run")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert not (tree / ".venv").exists()


# -------------------------------------------------------------------------------- a second Ctrl-C

#: Runs the real CLI with the two Ctrl-C of a user sent from inside the process at exact moments,
#: so where the second one lands is certain: during the update of a step ("step"), or inside the
#: checkpoint write that the first one asked for, after the temp file is written and before it is
#: renamed over latest ("write").
_TWO_CTRL_C = r"""
import os, signal, sys, time
from charlstm.cli import main
from charlstm.training import loop as training

mode = os.environ["CHARLSTM_TEST_SECOND_CTRL_C"]
real_step, real_replace = training.Trainer.step, os.replace

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the handler runs here (and raises here, the second time)

def step(self):
    if self.clock.steps == 5:
        out = sys.argv[sys.argv.index("--out") + 1]
        with open(os.path.join(out, "latest.safetensors"), "rb") as f:  # what must still be there at the end
            open(os.environ["CHARLSTM_TEST_LATEST_COPY"], "wb").write(f.read())
        ctrl_c()  # the first: finish this step, then save and exit 130
        if mode == "step":
            real_opt_step = self.optimizer.step
            def opt_step(*a, **k):  # between backward and the update of the weights
                ctrl_c()
                raise AssertionError("the second Ctrl-C did not stop the process")
            self.optimizer.step = opt_step
    return real_step(self)

replaced = []
def replace(src, dst, **kw):
    if str(dst).endswith("latest.safetensors"):
        replaced.append(dst)
        if mode == "write" and len(replaced) == 2:  # the save the first Ctrl-C asked for
            assert os.path.getsize(src) > 0
            ctrl_c()
            raise AssertionError("the second Ctrl-C did not stop the process")
    return real_replace(src, dst, **kw)

training.Trainer.step = step
os.replace = replace
sys.argv = ["charlstm", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("mode", ["step", "write"])
def test_a_second_ctrl_c_stops_at_once_and_leaves_the_checkpoint_untouched(tmp_path, corpus, mode):
    run = tmp_path / "run"
    script = tmp_path / "two_ctrl_c.py"
    script.write_text(_TWO_CTRL_C)
    copy = tmp_path / "latest-at-the-first-ctrl-c.safetensors"  # the harness copies it there
    proc = subprocess.run([sys.executable, str(script), "train", str(corpus), "--out", str(run), *QUIET_RUN],
                          env={**ENV, "CHARLSTM_TEST_SECOND_CTRL_C": mode, "CHARLSTM_TEST_LATEST_COPY": str(copy)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert (run / ckpt.LATEST).read_bytes() == copy.read_bytes()  # byte for byte as it was
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Resume with" not in proc.stderr and "Stopped at step" not in proc.stderr  # nothing was saved
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 0  # the last checkpoint is the one of step 0
    assert not (run / ckpt.BEST).exists() and not _temps(run)
    # and it resumes: nothing is lost but the steps since that checkpoint
    resumed = invoke("train", "--resume", "--out", run, "--max-steps", "3")
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 3


def test_a_single_ctrl_c_in_the_same_harness_saves(tmp_path, corpus):
    """The harness above is able to see a save: with one Ctrl-C, latest moves past step 0."""
    run = tmp_path / "run"
    script = tmp_path / "two_ctrl_c.py"
    script.write_text(_TWO_CTRL_C)
    copy = tmp_path / "latest-at-the-first-ctrl-c.safetensors"
    proc = subprocess.run([sys.executable, str(script), "train", str(corpus), "--out", str(run), *QUIET_RUN],
                          env={**ENV, "CHARLSTM_TEST_SECOND_CTRL_C": "none", "CHARLSTM_TEST_LATEST_COPY": str(copy)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Resume with: charlstm train --resume" in proc.stderr
    assert (run / ckpt.LATEST).read_bytes() != copy.read_bytes()
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 6


# ------------------------------------------------------------------ saving into an unwritable or full place


class _Unwritable:
    """Make a folder refuse new files: chmod for a normal user; for root (whom modes do not stop)
    the immutable attribute, where the file system has one."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.mode, self.immutable = folder, folder.stat().st_mode, False

    def __enter__(self):
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(self.folder)], capture_output=True, text=True) \
                if shutil.which("chattr") else None
            if done is None or done.returncode != 0:
                pytest.skip("running as root and the folder cannot be made immutable (chattr +i)")
            self.immutable = True
        else:
            self.folder.chmod(0o555)
        return self

    def __exit__(self, *exc) -> None:
        if self.immutable:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        self.folder.chmod(self.mode)


def _stop_and_expect_a_failed_save(proc: subprocess.Popen, run: Path, first: bytes, reason: str) -> None:
    """SIGTERM asks for a save; it fails: one line, exit 1, the previous checkpoint intact, no temp."""
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = _error_lines(stderr)
    assert errors == [stderr.strip().splitlines()[-1]], stderr[-3000:]  # one Error line, and it is the last
    assert errors[0] == (f"Error: could not write {run / ckpt.LATEST} ({reason}); "
                         "the previous checkpoint there is intact"), errors
    assert (run / ckpt.LATEST).read_bytes() == first
    assert ckpt.load(run / ckpt.LATEST).train["step"] == 0
    assert not _temps(run)


def test_an_unwritable_run_directory_while_saving(tmp_path, corpus):
    run = tmp_path / "run"
    proc = _start(["train", str(corpus), "--out", str(run), *QUIET_RUN])
    try:
        first = _wait_for_first_checkpoint(run, proc)
        with _Unwritable(run):
            reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
            _stop_and_expect_a_failed_save(proc, run, first, reason)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture()
def small_disk(tmp_path):
    """A 2 MB tmpfs of its own (root can mount one), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the file-size-limit test covers the same path")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                continue
    assert os.statvfs(disk).f_bavail == 0


def test_disk_full_while_saving_is_one_line_from_the_cli(tmp_path, corpus, small_disk):
    run = small_disk / "run"
    proc = _start(["train", str(corpus), "--out", str(run), *QUIET_RUN])
    try:
        first = _wait_for_first_checkpoint(run, proc)
        _fill(small_disk)
        _stop_and_expect_a_failed_save(proc, run, first, "No space left on device")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_file_size_limit_while_saving_is_one_line_from_the_cli(tmp_path, corpus):
    """RLIMIT_FSIZE (ulimit -f) lowered on the running trainer: the same path as a full disk, no root."""
    run = tmp_path / "run"
    proc = _start(["train", str(corpus), "--out", str(run), *QUIET_RUN])
    try:
        first = _wait_for_first_checkpoint(run, proc)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1024, 1024))  # Python ignores SIGXFSZ: EFBIG
        _stop_and_expect_a_failed_save(proc, run, first, "File too large")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------- binary corpora


def _zip_of_text(path: Path, text: str) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("plays.txt", text)  # stored, not compressed: the text itself is in the file


_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize("kind, message", [
    ("zip", "a zip archive (extract it first)"),
    ("pdf", "a PDF document"),
    ("elf", "an executable"),
])
def test_zip_pdf_and_executable_corpora_are_refused(tmp_path, shakespeare_text, kind, message):
    path = tmp_path / f"corpus.{kind}"
    if kind == "zip":
        _zip_of_text(path, shakespeare_text[:20_000])
    elif kind == "pdf":
        path.write_bytes(_PDF + shakespeare_text[:20_000].encode("utf-8"))  # mostly text, still a PDF
    else:
        path.write_bytes(Path(os.path.realpath(sys.executable)).read_bytes()[:200_000])
    out = tmp_path / "run"
    result = invoke("train", path, "--out", out, "--max-steps", "2", "--hidden-size", "16")
    assert result.exit_code == 1, result.output
    assert_no_traceback(result)
    assert _error_lines(result.stderr) == [f"Error: {path}: {message}, not text"] or (
        len(_error_lines(result.stderr)) == 1 and message in result.stderr), result.stderr
    assert not (out / ckpt.LATEST).exists() and not (out / "corpus.ids.npy").exists()


def test_a_zip_inside_a_corpus_folder_is_refused(tmp_path, shakespeare_text):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(shakespeare_text[:20_000], encoding="utf-8")
    _zip_of_text(folder / "b.txt", shakespeare_text[20_000:40_000])  # a zip under a .txt name
    result = invoke("train", folder, "--out", tmp_path / "run", "--max-steps", "2", "--hidden-size", "16")
    assert result.exit_code == 1 and "b.txt" in result.stderr and "a zip archive" in result.stderr, result.output
    assert_no_traceback(result)


# ------------------------------------------------------------ a checkpoint is validated field by field


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["charlstm"]), {k: f.get_tensor(k) for k in f.keys()}


def _write(path: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    save_file(tensors, str(path), metadata={"charlstm": json.dumps(meta)})


def _edited_run(trained_run: Path, where: Path, edit) -> Path:
    """A copy of the trained run whose checkpoints have had `edit(meta, tensors)` done to them."""
    copy = where / "run"
    shutil.copytree(trained_run, copy)
    for name in (ckpt.LATEST, ckpt.BEST):
        meta, tensors = _read(copy / name)
        edit(meta, tensors)
        _write(copy / name, meta, tensors)
    return copy


def _nan(meta, tensors):
    tensors["model.rnn.weight_hh_l1"][3, 5] = float("nan")


def _inf(meta, tensors):
    tensors["model.head.bias"][0] = float("-inf")


@pytest.mark.parametrize("command", [
    ["sample", "{ck}", "--length", "20"],
    ["inspect", "{ck}", "--text", "To be"],
    ["score", "{ck}", "--text", "To be, or not to be"],
    ["train", "--resume", "--out", "{run}", "--max-steps", "152"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("edit, tensor", [(_nan, "rnn.weight_hh_l1"), (_inf, "head.bias")], ids=["NaN", "inf"])
def test_loading_refuses_non_finite_weights(trained_run, tmp_path, command, edit, tensor):
    run = _edited_run(trained_run, tmp_path, edit)
    checkpoint = run / (ckpt.LATEST if command[0] == "train" else ckpt.BEST)
    before = _snapshot(run)
    result = invoke(*[a.format(ck=checkpoint, run=run) for a in command])
    assert result.exit_code == 1, result.output
    assert_no_traceback(result)
    assert _error_lines(result.stderr) == [f"Error: {checkpoint}: tensor {tensor} holds NaN or infinite values"]
    assert result.stdout == ""
    assert _snapshot(run) == before  # nothing written, nothing overwritten


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(meta, tensors):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _tensors(change):
    def edit(meta, tensors):
        change(tensors)
    return edit


FIELD_ROWS = [
    ("wrong kind", _set("kind", "pytorch-lightning"), "not a charlstm checkpoint"),
    ("kind missing", lambda m, t: m.pop("kind"), "not a charlstm checkpoint"),
    ("format as a string", _set("format", "1"), "checkpoint format '1', this charlstm reads format 1"),
    ("a newer format", _set("format", 2), "checkpoint format 2, this charlstm reads format 1"),
    ("config not an object", _set("config", [48, 2]), "invalid model config (a JSON list, not an object of fields)"),
    ("hidden size as a string", _set("config", "hidden_size", "48"), "invalid model config"),
    ("hidden size as a float", _set("config", "hidden_size", 48.0), "invalid model config"),
    ("an unknown cell", _set("config", "cell", "transformer"), "invalid model config"),
    ("an unknown config field", _set("config", "heads", 4), "invalid model config"),
    ("vocabulary not a list", _set("vocab", "abc"), "invalid vocabulary (not a list of strings)"),
    ("vocabulary of numbers", lambda m, t: m.update(vocab=list(range(len(m["vocab"])))),
     "invalid vocabulary (not a list of strings)"),
    ("vocabulary repeats a character", lambda m, t: m["vocab"].__setitem__(1, m["vocab"][0]), "invalid vocabulary"),
    ("vocabulary of the wrong size", lambda m, t: m["vocab"].pop(), "characters but the model expects"),
    ("training metadata not an object", _set("train", "everything"), "training metadata is 'everything', not a JSON object"),
    ("float64 weights", _tensors(lambda t: t.update({k: v.double() for k, v in t.items() if k.startswith("model.")})),
     "has dtype 'F64', charlstm weights are F32 (float32)"),
    ("int8 weights", _tensors(lambda t: t.update({k: v.to(torch.int8) for k, v in t.items() if k.startswith("model.")})),
     "has dtype 'I8'"),
    ("an extra model tensor", _tensors(lambda t: t.update({"model.rnn.weight_ih_l2": torch.zeros(4, 4)})),
     "weights do not match the config (unexpected tensors 'model.rnn.weight_ih_l2')"),
    ("a missing model tensor", _tensors(lambda t: t.pop("model.head.bias")),
     "weights do not match the config (missing ['head.bias']…)"),
    ("a reshaped tensor", _tensors(lambda t: t.update({"model.head.bias": t["model.head.bias"][:-1].clone()})),
     "tensor head.bias has shape"),
]


@pytest.mark.parametrize("name, edit, message", FIELD_ROWS, ids=[row[0] for row in FIELD_ROWS])
def test_every_field_is_validated_from_the_cli(trained_run, tmp_path, name, edit, message):
    run = _edited_run(trained_run, tmp_path, edit)
    before = _snapshot(run)
    for args in (["sample", run / ckpt.BEST, "--length", "5"], ["train", "--resume", "--out", run, "--max-steps", "152"]):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert_no_traceback(result)
        errors = _error_lines(result.stderr)
        assert len(errors) == 1 and message in errors[0], (args, result.stderr)
        assert errors[0].startswith(f"Error: {args[1] if args[0] == 'sample' else run / ckpt.LATEST}: ")
    assert _snapshot(run) == before


RESUME_ROWS = [
    ("step as a string", _set("train", "step", "150"), "step"),
    ("a negative step", _set("train", "step", -4), "step"),
    ("layout missing", lambda m, t: m["train"].pop("layout"), "layout"),
    ("batch size in words", _set("train", "layout", "batch_size", "four"), "batch_size"),
    pytest.param("optimizer tensors with foreign names", _tensors(lambda t: t.update(
        {k.replace("optim.", "optim.x"): t.pop(k) for k in [k for k in t if k.startswith("optim.")]})), "optim",
    ),
    pytest.param("carried state of the wrong shape", _tensors(lambda t: t.update({"state.0": torch.zeros(2, 3, 5)})),
                 "state"),
    pytest.param("a 5-byte RNG state", _tensors(lambda t: t.update({"rng.torch": torch.zeros(5, dtype=torch.uint8)})),
                 "rng"),
]


@pytest.mark.parametrize("name, edit, field", RESUME_ROWS,
                         ids=[getattr(row, "values", row)[0] for row in RESUME_ROWS])
def test_training_metadata_is_validated_on_resume(trained_run, tmp_path, name, edit, field):
    run = _edited_run(trained_run, tmp_path, edit)
    before = _snapshot(run)
    result = invoke("train", "--resume", "--out", run, "--max-steps", "152")
    assert result.exit_code == 1, result.output
    assert_no_traceback(result)
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {run / ckpt.LATEST}"), result.stderr
    assert field in errors[0], result.stderr
    assert _snapshot(run) == before
