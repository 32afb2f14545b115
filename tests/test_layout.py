"""The shape of the package: which room may import which, what stays torch-free, no name that
shadows the standard library, and the size of every room (docs/architecture.md draws the same)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "charlstm"

#: The rooms every room above them may use.
_FLOOR = {"errors", "config", "files", "memory", "model", "data", "runs"}
#: room → the rooms it may import (besides itself). A room is a subpackage or a top-level module.
ALLOWED = {
    "errors": set(),
    "config": {"errors"},
    "files": {"errors"},
    "memory": {"errors", "config"},
    "model": {"errors", "config"},
    "data": {"errors", "config", "files"},
    "runs": {"errors", "config", "files", "model", "data"},
    "runtime": _FLOOR,
    "generation": _FLOOR | {"runtime"},
    "inspection": _FLOOR | {"runtime", "generation"},
    "scoring": _FLOOR | {"runtime", "generation", "inspection"},
    "training": _FLOOR | {"runtime", "generation", "inspection", "scoring"},
    "probes": _FLOOR | {"runtime", "generation", "inspection", "scoring", "training"},
    "views": _FLOOR | {"runtime", "generation", "inspection", "scoring", "training"},
    "cli": _FLOOR | {"runtime", "generation", "inspection", "scoring", "training", "probes", "views"},
    "__init__": _FLOOR | {"runtime", "generation", "inspection", "scoring", "training"},
    "__main__": {"cli"},
}
#: Third-party libraries only some rooms may import (anywhere in the module, lazily or not).
ONLY_IN = {"click": {"cli"}, "rich": {"views", "cli"}, "textual": {"views"}, "tqdm": {"views", "cli"}}
#: Modules that must import without torch: what the command line reads while it parses.
TORCH_FREE = ["charlstm", "charlstm.config", "charlstm.errors", "charlstm.files", "charlstm.cli",
              "charlstm.data.reading", "charlstm.data.vocab", "charlstm.data.corpus", "charlstm.data.streams",
              "charlstm.inspection.features", "charlstm.inspection.selection", "charlstm.inspection.texts",
              "charlstm.probes.tasks", *(f"charlstm.cli.{p.stem}" for p in sorted((PACKAGE / "cli").glob("*.py"))
                                         if p.stem not in ("__init__", "__main__"))]

MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 500, 300, 60


def modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every module of the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found.append((".".join(("charlstm", *parts)), path))
    return found


def room(dotted: str) -> str:
    """The room of a module: its subpackage, or the top-level module itself."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(dotted: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the module, function-level ones included."""
    package = dotted.split(".")[:-1] if path.name != "__init__.py" else dotted.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                if node.module:
                    found.append((node.lineno, ".".join([*base, node.module])))
                else:
                    found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_imports_point_down_the_road():
    wrong = []
    for dotted, path in modules():
        here = room(dotted)
        for line, target in imported(dotted, path):
            top = target.split(".")[0]
            if top == "charlstm":
                there = room(target)
                if there != here and there not in ALLOWED[here]:
                    wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} ({here} → {there})")
            elif top in ONLY_IN and here not in ONLY_IN[top]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {top}, which only "
                             f"{', '.join(sorted(ONLY_IN[top]))} may")
    assert not wrong, "\n".join(wrong)


def test_the_road_has_no_room_missing_from_the_plan():
    rooms = {room(dotted) for dotted, _ in modules()}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_what_the_command_line_reads_while_parsing_imports_no_torch(module):
    probe = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", f"importing {module} imports torch"


def test_no_module_shadows_the_standard_library():
    shadowing = [dotted for dotted, _ in modules() if dotted.split(".")[-1] in sys.stdlib_module_names]
    assert not shadowing, shadowing


def _body_lines(node: ast.AST) -> int:
    """Lines of a function or class, its docstring left out."""
    lines = node.end_lineno - node.lineno + 1
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
            body[0].value.value, str):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def test_every_room_is_small():
    """No module over 500 lines, no class over 300, no function over 60 (docstrings left out)."""
    big = []
    for dotted, path in modules():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big.append(f"module {dotted}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and _body_lines(node) > MAX_CLASS_LINES:
                big.append(f"class {dotted}.{node.name}: {_body_lines(node)} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > MAX_FUNCTION_LINES:
                big.append(f"function {dotted}.{node.name}: {_body_lines(node)} lines")
    assert not big, "\n".join(big)


def test_data_imports_nothing_of_the_run_folder():
    code = ("import sys, charlstm.data.corpus, charlstm.data.streams, charlstm.data.reading\n"
            "print(sorted(m for m in sys.modules if m.startswith('charlstm.runs')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
