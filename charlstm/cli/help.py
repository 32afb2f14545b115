"""How a command's --help reads: its options in titled sections, and figures filled in when it is shown.

Torch-free, like everything the command line imports at its top.
"""

from __future__ import annotations

import re
import textwrap
from typing import Callable, Mapping, Sequence

import click

#: The widest option names (with their metavar) that share a line with their description in --help.
COLUMN = 27


class Command(click.Command):
    """A charlstm command whose --help lists its options in sections.

    `sections` maps a title to the names of the parameters listed under it, in order; the options
    in no section (--help among them) come last, under "Other options". `facts` returns figures by
    name that fill the `{name}` fields of the help texts when --help is shown: figures owned by a
    module too heavy to import when `charlstm --help` lists the commands (a command's summary, its
    first sentence, holds none)."""

    def __init__(self, *args, sections: Mapping[str, Sequence[str]] | None = None,
                 facts: Callable[[], Mapping[str, object]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sections = {title: tuple(names) for title, names in (sections or {}).items()}
        self.facts = facts
        listed = [name for names in self.sections.values() for name in names]
        assert len(set(listed)) == len(listed) and set(listed) <= {p.name for p in self.params}, (self.name, listed)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        written = self.help
        if self.facts is not None and written is not None:
            self.help = written.format_map(self.facts())
        try:
            super().format_help_text(ctx, formatter)
        finally:
            self.help = written

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each section's options, their names in one column as wide as the widest that fits
        COLUMN (a longer one takes a line of its own)."""
        facts = self.facts() if self.facts is not None else None
        records = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                text = _without_open_range(record[1])
                records[param.name] = (record[0], text.format_map(facts) if facts else text)
        width = max((len(name) for name, _ in records.values() if len(name) <= COLUMN), default=0)
        listed = {name for names in self.sections.values() for name in names}
        rest = ("Other options" if self.sections else "Options", [name for name in records if name not in listed])
        for title, names in (*self.sections.items(), rest):
            rows = [records[name] for name in names if name in records]
            if rows:
                with formatter.section(title):
                    _write_rows(formatter, rows, width)


def _write_rows(formatter: click.HelpFormatter, rows: Sequence[tuple[str, str]], first: int) -> None:
    """Rows of (option, description) as Click's write_dl writes them, in a first column `first`
    wide, but never breaking a line inside a hyphenated word (--max-steps, double-quote)."""
    indent = " " * formatter.current_indent
    width = max(formatter.width - formatter.current_indent - first - 2, 20)
    for name, text in rows:
        lines = textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)
        if lines and len(name) <= first:
            formatter.write(f"{indent}{name.ljust(first)}  {lines.pop(0)}\n")
        else:
            formatter.write(f"{indent}{name}\n")
        formatter.write("".join(f"{indent}{' ' * (first + 2)}{line}\n" for line in lines))


def _without_open_range(text: str) -> str:
    """Option help without Click's note that a number is positive or not negative ("x>=1", "x>0",
    "x>=0"): what the description already says. Other ranges ("0<=x<1", "x>=8") stay."""
    head, bracket, extra = text.rpartition("  [")
    if not bracket or not extra.endswith("]"):
        return text
    kept = [item for item in extra[:-1].split("; ") if not re.fullmatch(r"x(>=0|>=1|>0)", item)]
    return f"{head}  [{'; '.join(kept)}]" if kept else head
