"""Event-driven reporting (`fenqi.bureau.events`) on SQLite and PostgreSQL: the day's events
found from the books, their records derived like the monthly ones, validated, reconciled,
accepted by the bureau over HTTP, and never sent twice; `fenqi bureau report --events`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import select, update

from bureau.test_monitoring import fenqi
from bureau.test_reporting import world_with_customer
from fenqi.bureau import events
from fenqi.bureau.client import HttpBureauClient
from fenqi.bureau.records import AccountRecord, ReportStatus
from fenqi.bureau.reporting import ledger_owed_as_of
from fenqi.credit.operations import change_account_status
from fenqi.store.schema.bureau import bureau_events
from fenqi.store.schema.credit import credit_accounts
from support.billing_world import World
from support.bureau_server import TOKEN_OF, running_bureau


def build(w: World, day: date) -> events.EventRun:
    grace = {name: p.billing.grace_days for name, p in w.ctx.catalog.items()}
    with w.ctx.engine.begin() as conn:
        return events.build(conn, w.clock, w.ctx.keys, day, grace_of=grace)


def send(w: World, run: events.EventRun, client: HttpBureauClient) -> int:
    sent = 0
    for fmt, (text, accounts) in events.unsent_files(run, w.clock).items():
        result = client.submit(fmt, text)
        with w.ctx.engine.begin() as conn:
            events.mark_sent(conn, run.day, accounts, str(result.submission_id), w.clock.now())
        sent += result.records
    return sent


def test_event_records_are_derived_validated_reconciled_and_sent_once(db_url: str) -> None:
    w, account = world_with_customer(db_url)
    opened_on = w.clock.today()
    w.buy(account, 300_000, 3)
    with running_bureau(db_url, w.clock) as bureau:
        client = HttpBureauClient(bureau.url, TOKEN_OF["fenqi"], w.clock)
        w.go_to(date(2026, 1, 3))
        opened = build(w, opened_on)
        assert opened.events == {account: {"opened"}}
        assert opened.differences == []
        [rec] = _records_of(opened)
        assert rec.as_of == opened_on and rec.balance_minor >= 300_000
        assert send(w, opened, client) == 1
        # a rerun of the day finds the same event, derives the same record, sends nothing
        again = build(w, opened_on)
        assert again.events == opened.events and again.unsent == set()
        assert events.unsent_files(again, w.clock) == {}
        assert send(w, again, client) == 0
        assert build(w, date(2026, 1, 3)).events == {}  # nothing happened that day

        # paid in full and closed the same day: both events, the record says closed
        day = date(2026, 1, 5)
        w.go_to(day)
        with w.ctx.engine.connect() as conn:
            owed = ledger_owed_as_of(conn, day)[0][account]
        w.pay(account, owed)
        with w.ctx.engine.begin() as conn:
            change_account_status(conn, w.clock, 1, account, "close", "customer asked")
        closed = build(w, day)
        assert closed.events == {account: {"paid_off", "closed"}}
        [rec] = _records_of(closed)
        assert (rec.status, rec.balance_minor) == (ReportStatus.CLOSED, 0)
        assert closed.differences == []
        assert "|3|0|" in events.unsent_files(closed, w.clock)["pboc"][0]  # status 3, balance 0
        assert send(w, closed, client) == 1
        assert send(w, build(w, day), client) == 0
        with w.ctx.engine.connect() as conn:
            rows = conn.execute(select(bureau_events).order_by(bureau_events.c.event)).all()
        assert [(r.event, r.sent_at is not None) for r in rows] == [
            ("closed", True),
            ("opened", True),
            ("paid_off", True),
        ]

    # a charge-off is an event on its date
    with w.ctx.engine.begin() as conn:
        conn.execute(
            update(credit_accounts)
            .where(credit_accounts.c.id == account)
            .values(charged_off_on=date(2026, 1, 20))
        )
        assert events.detect(conn, date(2026, 1, 20)) == {account: {"charged_off"}}


def test_report_events_command(tmp_path: Path) -> None:
    env = {
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'fenqi.sqlite'}",
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    assert fenqi("db", "upgrade", env=env).returncode == 0
    args = ("bureau", "report", "--events", "--date", "2026-03-01", "--out", str(tmp_path))
    out = fenqi(*args, "--json", env=env)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert (body["accounts"], body["records"], body["written"]) == (0, 0, {})
    assert fenqi("bureau", "report", "--events", env=env).returncode == 2
    assert fenqi("bureau", "report", "--date", "2026-03-01", env=env).returncode == 2
    assert fenqi("bureau", "report", env=env).returncode == 2


def _records_of(run: events.EventRun) -> list[AccountRecord]:
    return list(run.report.records) if run.report else []
