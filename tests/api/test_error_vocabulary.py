"""One error vocabulary (issue 22): the API answers a refusal with the status and title that
`fenqi.error_codes.ErrorCode` gives its code, one spelling per meaning, and requests at the
default (earlier) version still get the spelling and status they got before."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fenqi.api.problems import install
from fenqi.api.versioning import ONE_ERROR_VOCABULARY, ApiVersion
from fenqi.error_codes import LEGACY_CODES, ErrorCode
from fenqi.ledger.entry import LedgerError
from fenqi.pricing.quote import quote
from fenqi.products.catalog_loader import load_catalog
from fenqi.webhooks.errors import EventNotFound

SRC = Path(__file__).resolve().parents[2] / "src" / "fenqi"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
NEW = {"Fenqi-Version": ONE_ERROR_VOCABULARY}


def _app() -> TestClient:
    app = FastAPI()
    install(app)

    @app.get("/v1/quote-zero")
    def quote_zero() -> None:
        product = load_catalog(2_400)["huabei"]
        quote(product, 0, 3, date(2026, 1, 5), cap_bp=2_400)

    @app.get("/v1/no-entry")
    def no_entry() -> None:
        raise LedgerError("entry 9 not found", code="not_found", legacy_code="entry_not_found")

    @app.get("/v1/no-event")
    def no_event() -> None:
        raise EventNotFound("no webhook event 'evt_x'", event_id="evt_x")

    return TestClient(ApiVersion(app))


@pytest.mark.parametrize(
    ("path", "before", "now"),
    [
        ("/v1/quote-zero", ("quote_invalid", 422), ("invalid_amount", 422)),
        ("/v1/no-entry", ("entry_not_found", 400), ("not_found", 404)),
        ("/v1/no-event", ("webhook_event_not_found", 404), ("not_found", 404)),
    ],
)
def test_one_spelling_per_meaning_from_the_new_version(
    path: str, before: tuple[str, int], now: tuple[str, int]
) -> None:
    client = _app()
    old = client.get(path)
    assert (old.json()["code"], old.status_code) == before
    assert old.headers["content-type"] == "application/problem+json"
    new = client.get(path, headers=NEW)
    body = new.json()
    assert (body["code"], new.status_code, body["status"]) == (*now, now[1])
    assert body["title"] == ErrorCode(now[0]).problem_title
    assert LEGACY_CODES[before[0]] == (ErrorCode(now[0]), before[1])


def test_the_http_layer_spells_no_code() -> None:
    """problem+json is built from ErrorCode members only: no code literal in the API layer's
    answers (problems.py, middleware.py, versioning.py)."""
    builders = {"problem", "problem_body", "problem_bytes", "Refused", "_answer"}
    found = []
    for name in ("problems.py", "middleware.py", "versioning.py"):
        tree = ast.parse((SRC / "api" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if called not in builders:
                    continue
                found += [
                    f"{name}:{node.lineno}: {arg.value!r}"
                    for arg in node.args[:3]
                    if isinstance(arg, ast.Constant)
                    and (isinstance(arg.value, int) or arg.value in set(ErrorCode))
                ]
    assert found == []


def test_not_found_is_spelled_once() -> None:
    spellings = sorted(c.value for c in ErrorCode if c.value.endswith("not_found"))
    assert spellings == ["not_found"]


def test_legacy_spellings_are_retired_and_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for old, (new, _status) in LEGACY_CODES.items():
        # the "not found" spellings are retired; `quote_invalid` stays for the other quote
        # refusals (terms or tier not offered, an amount outside the product's range)
        assert (old in set(ErrorCode)) == (old == "quote_invalid"), old
        assert f"`{old}`" in docs and f"`{new.value}`" in docs, old
    legacy_in_src = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.keyword) and node.arg == "legacy_code") or (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "legacy_code" for t in node.targets)
            ):
                value = node.value
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                legacy_in_src.add(value.value)
    assert legacy_in_src == set(LEGACY_CODES)
