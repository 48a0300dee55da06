"""Every machine code written in src/ is listed in `fenqi.error_codes.ErrorCode` (issue 22)."""

from __future__ import annotations

import ast
from pathlib import Path

from fenqi.error_codes import ErrorCode, known_code

SRC = Path(__file__).resolve().parents[1] / "src" / "fenqi"


def _codes_in_src() -> dict[str, str]:
    """code -> first place it is written: `code="..."` keywords (both branches of a
    conditional) and `code = "..."` class attributes."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code":
                        v = kw.value
                        values += [v.body, v.orelse] if isinstance(v, ast.IfExp) else [v]
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets
                    ):
                        values.append(stmt.value)
            for v in values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value:
                    found.setdefault(v.value, f"{path.relative_to(SRC)}:{v.lineno}")
    return found


def test_every_code_at_a_raise_site_is_in_the_enum() -> None:
    codes = _codes_in_src()
    assert len(codes) > 50  # the scan found the raise sites
    missing = {c: where for c, where in codes.items() if c not in set(ErrorCode)}
    assert not missing, f"add these to fenqi/error_codes.py: {missing}"


def test_each_code_has_a_status_and_a_doc_line() -> None:
    for code in ErrorCode:
        assert 400 <= code.http_status < 600, code
        assert code.doc and "\n" not in code.doc, code
    assert known_code("not_found") is ErrorCode.NOT_FOUND
    assert known_code("no_such_code") is None


def test_every_code_is_listed_in_the_api_docs() -> None:
    docs = (SRC.parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [c.value for c in ErrorCode if f"| `{c.value}` | {c.http_status} |" not in docs]
    assert missing == [], "list these in docs/api.md, Error codes"
