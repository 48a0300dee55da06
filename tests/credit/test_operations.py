"""Staff actions have one home, `fenqi.credit.operations` (issue 22): the API, the console and
the CLI call it, so each action applies the same rules and writes the same audit entry; the
interfaces write no audit rows of their own (tests/test_architecture.py: and run no SQL)."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, update

from fenqi.clock import FixedClock
from fenqi.credit import operations
from fenqi.privacy.audit import ActorKind, list_entries
from fenqi.store.schema.webhooks import webhook_deliveries
from fenqi.webhooks.outbox import enqueue

SRC = Path(__file__).resolve().parents[2] / "src" / "fenqi"
STAFF_PAGES = ("api/routes_ops.py", "web/routes_console.py")
LOGIN_FUNCTIONS = {"login"}  # signing in is audited by the sign-in itself, beside the session


def _calls(path: Path) -> list[tuple[str, str]]:
    """(enclosing top-level function, called name) of every call in a module."""
    out = []
    for top in ast.parse(path.read_text(encoding="utf-8")).body:
        for node in ast.walk(top):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                out.append((getattr(top, "name", ""), name))
    return out


def test_staff_pages_write_no_audit_rows_of_their_own() -> None:
    for rel in STAFF_PAGES:
        path = SRC / rel
        audits = [fn for fn, name in _calls(path) if name == "record"]
        assert set(audits) <= LOGIN_FUNCTIONS, (rel, audits)


def test_a_replay_is_audited_alike_for_staff_and_the_cli(db_engine: Engine) -> None:
    clock = FixedClock.on(date(2026, 1, 5), 10)
    with db_engine.begin() as conn:
        event_id = enqueue(conn, clock, "m1", "repayment.received", {"amount_fen": 500})
    for who, kind, actor_id in (
        (7, ActorKind.STAFF, "7"),
        (operations.CLI, ActorKind.SYSTEM, "cli"),
    ):
        with db_engine.begin() as conn:  # the last delivery failed for good: replay it
            conn.execute(update(webhook_deliveries).values(status="dead"))
            delivery_id = operations.replay_webhook_event(conn, clock, who, event_id)
        with db_engine.connect() as conn:
            [entry] = list_entries(conn, action="webhooks.replay", actor_id=actor_id)
        assert entry.actor_kind is kind
        assert (entry.target_kind, entry.target_id) == ("webhook_event", event_id)
        assert entry.detail == {"delivery_id": delivery_id}
