"""Style that a machine checks (issue 22; TigerBeetle's tidy.zig): banned calls and long
functions. LONG lists the functions over MAX_LINES today; it may only shrink."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "fenqi"
MAX_LINES = 100

# the clock is the only reader of the wall clock (an injected Clock everywhere else)
WALL_CLOCK = re.compile(r"\b(datetime\.now|date\.today|datetime\.utcnow)\(")
CLOCK_FILES = {"clock.py"}
# money is integer fen: never a float
FLOAT_MONEY = re.compile(r"\bfloat\([^()]*_fen\b")

LONG = {
    # over MAX_LINES at the split (issue 22); remove entries as functions get shorter
    "bureau/reporting.py::build_records",
    "bureau/server/seed.py::seed_population",
    "credit/hardship.py::restructure",
    "demo.py::run_scripted",
    "funding/service.py::allocate_plan",
    "funding/service.py::apply_cash",
    "risk/cli.py::train",
    "risk/train.py::train_model",
}


def _files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "migrations" not in p.parts]


def test_no_wall_clock_outside_the_clock() -> None:
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in _files()
        if p.name not in CLOCK_FILES
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if WALL_CLOCK.search(line) and not line.lstrip().startswith("#")
    ]
    assert hits == []


def test_no_float_on_money() -> None:
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in _files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if FLOAT_MONEY.search(line)
    ]
    assert hits == []


def _long_functions() -> set[str]:
    out = set()
    for p in _files():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_LINES:
                    out.add(f"{p.relative_to(SRC)}::{node.name}")
    return out


def test_no_new_long_functions() -> None:
    assert sorted(_long_functions() - LONG) == []


def test_long_list_only_shrinks() -> None:
    """A function on LONG that got shorter leaves the list."""
    assert sorted(LONG - _long_functions()) == []
