"""The docs name tests that exist: every `tests/…/test_x.py::test_name` and every `tests/…/test_x.py` that
docs/*.md, README.md and benchmarks/README.md name is a test file of the suite holding that test, so a
guarantee in docs/reliability.md always points at the test that holds it."""

from __future__ import annotations

import ast
import re

import pytest

from conftest import ROOT

DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md", ROOT / "benchmarks" / "README.md"])
REFERENCE = re.compile(r"\btests/(?:[a-z_]+/)*test_[a-z0-9_]+\.py(?:::test_[a-z0-9_]+)?")


def _references() -> list[tuple[str, str]]:
    return sorted({(doc.relative_to(ROOT).as_posix(), ref) for doc in DOCS
                   for ref in REFERENCE.findall(doc.read_text(encoding="utf-8"))})


def _tests_in(path) -> set[str]:
    """The test functions a test file defines, at module level or in a class."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


def test_the_docs_name_tests():
    """Guards the test below: the pattern finds the references docs/reliability.md is made of."""
    assert sum(doc == "docs/reliability.md" and "::" in ref for doc, ref in _references()) >= 80


@pytest.mark.parametrize("doc, reference", _references(), ids=lambda value: value)
def test_every_test_the_docs_name_exists(doc, reference):
    path, _, name = reference.partition("::")
    assert (ROOT / path).is_file(), f"{doc} names {path}, which is not a test file"
    assert not name or name in _tests_in(ROOT / path), f"{doc} names {reference}, which {path} does not define"
