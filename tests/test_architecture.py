"""The import contract (issue 22, docs/architecture.md): pure core <- services <- interfaces.

Pure modules import nothing from storage or the interfaces; services import no interface and
not the simulator. Known violations are listed in KNOWN and may only shrink: a test fails when
one is fixed and still listed, so the list stays honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PURE = (
    "fenqi.money",
    "fenqi.pricing",
    "fenqi.credit.plans",
    "fenqi.credit.allocation",
    "fenqi.credit.billing",
    "fenqi.credit.arrears",
    "fenqi.credit.conversion_window",
    "fenqi.products.model",
    "fenqi.funding.allocation",
)
INTERFACES = ("fenqi.api", "fenqi.web", "fenqi.cli", "fenqi.demo")
SERVICES = ("fenqi.credit", "fenqi.ledger", "fenqi.batch", "fenqi.funding", "fenqi.webhooks")

KNOWN: set[tuple[str, str]] = set()

# Interfaces that only parse, call a service and render: no SQL of their own (no table, no
# statement built). This list may only grow, until it names every interface module.
SQL_FREE = ("fenqi.api.routes_ops", "fenqi.api.routes_shopper", "fenqi.web.routes_console")
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func"}


# pairs of modules that import each other (at the top or inside a function); may only shrink
KNOWN_CYCLES = {
    ("fenqi.api.middleware", "fenqi.api.problems"),
    ("fenqi.bureau.inquiry", "fenqi.context"),
    ("fenqi.credit.credit_balance", "fenqi.credit.repayments"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((SRC / "fenqi").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        out[_module(path)] = {n for n in names if n.startswith("fenqi")}
    return out


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations() -> set[tuple[str, str]]:
    bad = set()
    for module, imported in _imports().items():
        for name in imported:
            if _under(module, PURE) and _under(name, ("fenqi.store", *INTERFACES)):
                bad.add((module, name))
            if _under(module, SERVICES) and _under(name, (*INTERFACES, "fenqi.simulation")):
                bad.add((module, name))
    return bad


def test_dependencies_point_inwards() -> None:
    assert _violations() <= KNOWN, sorted(_violations() - KNOWN)


def test_known_violations_are_still_real() -> None:
    """Remove an entry from KNOWN when its import is gone."""
    assert sorted(KNOWN - _violations()) == []


def test_sql_free_interfaces_hold_no_sql() -> None:
    for module in SQL_FREE:
        path = SRC / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        from_store = [
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("fenqi.store")
        ]
        sql = sorted(
            {
                a.name
                for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("sqlalchemy")
                for a in n.names
                if a.name in SQL_BUILDERS
            }
        )
        assert (from_store, sql) == ([], []), module


def _mutual_imports() -> set[tuple[str, str]]:
    """Pairs of modules that import each other (an import of a name counts as its module)."""
    imports = _imports()

    def module_of(name: str) -> str:
        while name and name not in imports:
            name = name.rpartition(".")[0]
        return name

    graph = {m: {module_of(n) for n in names} - {m, ""} for m, names in imports.items()}
    return {(a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, set())}


def test_no_two_modules_import_each_other() -> None:
    """Issue 22: `batch/eod.py` and `batch/executors.py` imported each other; the partition
    runner now lives in `batch/partitions.py`, which both import."""
    assert _mutual_imports() <= KNOWN_CYCLES, sorted(_mutual_imports() - KNOWN_CYCLES)


def test_known_cycles_are_still_real() -> None:
    assert sorted(KNOWN_CYCLES - _mutual_imports()) == []
