"""CI (.ci/run): it runs exactly README's test command, and it cannot pass without the browser: a
missing chromium fails the browser tests when CI is set, and .ci/run fails when it cannot install one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ENV, ROOT


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```(?:sh|bash)?\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2
    main_command, test_command = commands
    assert "charlstm train" in main_command and "charlstm sample" in main_command
    assert "pytest" in test_command
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines


def test_the_browser_test_fails_instead_of_skipping_in_ci(tmp_path):
    """With CI set, a missing chromium is a failure of tests/views/test_page.py, not a skip (without CI it
    skips, as on a developer's machine with no browser)."""
    no_browser = tmp_path / "empty-bin"
    no_browser.mkdir()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
           str(ROOT / "tests" / "views" / "test_page.py") + "::test_page_in_headless_chromium"]
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
