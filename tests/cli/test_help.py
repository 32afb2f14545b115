"""cli/help.py, what `--help` says: every option described, sections, whole-sentence summaries, a
train page that fits a screen, no source file named, and figures taken from the modules that own them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import pytest

from charlstm.cli import COMMANDS, main


def help_text(*args: str, columns: int = 100, before: str = "") -> str:
    """`charlstm ARGS --help` in a fresh interpreter at `columns` columns, after running `before`."""
    code = f"{before}\nimport sys\nfrom charlstm.cli import main\nmain([*sys.argv[1:], '--help'], prog_name='charlstm')"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_of_every_command_is_described(name):
    command = main.get_command(None, name)
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), f"{name} {param.opts} has no help text"


def test_train_help_fits_in_sixty_lines_at_a_hundred_columns():
    shown = help_text("train")
    assert len(shown.splitlines()) <= 60, f"{len(shown.splitlines())} lines:\n{shown}"
    assert max(len(line) for line in shown.splitlines()) <= 100


def test_train_options_are_in_sections_each_listed_once():
    shown = help_text("train")
    titles = [line for line in shown.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert titles[:-1] == ["Corpus:", "Model (fitted to the corpus and the budget, unless given):",
                           "Budget and schedule:", "Run directory:"] and titles[-1] == "Other options:", titles
    for param in main.get_command(None, "train").params:
        if isinstance(param, click.Option):
            assert len(re.findall(rf"^  {re.escape(param.opts[0])}\b", shown, flags=re.M)) == 1, param.opts
    model = shown.split("Model (")[1].split("Budget and schedule:")[0]
    assert all(f"--{name}" in model for name in ("cell", "hidden-size", "num-layers", "embedding-size", "dropout"))


@pytest.mark.parametrize("columns", [80, 100])
def test_the_command_listing_shows_each_summary_as_a_whole_sentence(columns):
    listing = help_text(columns=columns).split("Commands:")[1]
    for name in COMMANDS:
        row = re.search(rf"^  {name}\s+(.+)$", listing, flags=re.M)
        assert row, (name, listing)
        summary = row.group(1)
        assert summary.endswith(".") and not summary.endswith("...") and summary[0].isupper(), (name, summary)
        assert flat(main.get_command(None, name).help).startswith(summary), (name, summary)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_names_no_source_file(name):
    shown = help_text(name)
    assert not re.search(r"\b\w+\.py\b", shown), re.findall(r"\b\w+\.py\b", shown)


def test_figures_in_help_come_from_their_owners():
    """Change the owner before the command line is imported: the help follows."""
    sample = flat(help_text("sample", before="import charlstm.config as c; c.MIN_TEMPERATURE = 0.0025"))
    assert "else at least 0.0025." in sample
    score = flat(help_text("score", before="import charlstm.config as c, charlstm.inspection.texts as t\n"
                                           "c.MAX_NGRAM_ORDER = 17; t.ANALYSIS_LENGTH = 12345\n"
                                           "import charlstm.scoring.comparison as s; s.ERROR_P = 0.375"))
    assert "N from 1 to 17" in score and "the last 12,345 characters" in score
    assert "gives p < 0.375" in score and "p >= 0.375" in score
    inspect = flat(help_text("inspect", before="import charlstm.config as c; c.InspectConfig.window = 44"))
    assert "[default: 44; x>=8]" in inspect and "double-quote," in inspect
    train = flat(help_text("train", before="import charlstm.config as c, dataclasses\n"
                                           "c.TrainConfig.min_lr_ratio = 0.25"))
    assert "cosine decay to 0.25 × peak" in train


def test_one_sided_ranges_that_say_positive_are_left_out_and_others_stay():
    train = flat(help_text("train"))
    assert "Peak learning rate; more below 256 units. [default: 0.005]" in train and "x>0" not in train and "x>=1" not in train
    assert "[default: 0.05; 0<=x<=0.5]" in train and "[1<=x<=65536]" in train
    assert "[default: 1337; 0 to 2**63 - 1]" in train
