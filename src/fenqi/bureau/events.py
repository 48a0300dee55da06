"""Event-driven reporting: account records on the day of an event, between monthly files.

Events of a date (business zone), each found in one query:

- `opened`: `credit_accounts.opened_at` falls on the date;
- `closed`: the account was closed that day (the audited `account.close`, the only way to close);
- `charged_off`: `credit_accounts.charged_off_on` is the date;
- `paid_off`: the ledger shows something owed at the end of the day before and nothing at the
  end of this one (paid in full, or settled: a charged-off balance paid or waived).

`build(conn, clock, keys, day, …)` keeps each event found in `bureau_events` (key: account, date,
event), derives the records of those accounts as of the date with the monthly reporting's own
code (`reporting.build_records(only=…)`: ledger balance, arrears, notice before a first negative
record, history, corrections), validates the files and reconciles those records with the ledger.
`unsent_files` holds only the records of accounts with an event not yet sent, and `mark_sent`
records what the bureau accepted: a rerun of the day sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from fenqi.bureau.reporting import (
    FORMAT_OF_CURRENCY,
    ReconDifference,
    ReportRun,
    build_records,
    ledger_owed_as_of,
    write_files,
)
from fenqi.clock import Clock
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.bureau import bureau_events, bureau_records
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.privacy import audit_log

EVENTS = ("opened", "closed", "charged_off", "paid_off")


def detect(conn: Connection, day: date, zone: str = "Asia/Shanghai") -> dict[int, set[str]]:
    """Credit account id → the events it had on `day`."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time.min, tz)
    end = start + timedelta(days=1)
    ca = credit_accounts
    found: dict[int, set[str]] = {}

    def add(ids: Any, event: str) -> None:
        for i in ids:
            found.setdefault(int(i), set()).add(event)

    add(
        conn.execute(select(ca.c.id).where(ca.c.opened_at >= start, ca.c.opened_at < end))
        .scalars()
        .all(),
        "opened",
    )
    add(
        conn.execute(select(ca.c.id).where(ca.c.charged_off_on == day)).scalars().all(),
        "charged_off",
    )
    closed = conn.execute(
        select(audit_log.c.target_id).where(
            audit_log.c.action == "account.close",
            audit_log.c.target_kind == "credit_account",
            audit_log.c.at >= start,
            audit_log.c.at < end,
        )
    ).scalars()
    add((t for t in closed if str(t).isdigit()), "closed")
    before, _ = ledger_owed_as_of(conn, day - timedelta(days=1))
    after, _ = ledger_owed_as_of(conn, day)
    add((a for a, owed in before.items() if owed > 0 and after.get(a, 0) <= 0), "paid_off")
    return found


@dataclass
class EventRun:
    day: date
    events: dict[int, set[str]] = field(default_factory=dict)
    report: ReportRun | None = None
    unsent: set[int] = field(default_factory=set)
    differences: list[ReconDifference] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = {e: sum(e in s for s in self.events.values()) for e in EVENTS}
        return {
            "date": self.day.isoformat(),
            "accounts": len(self.events),
            "events": counts,
            "records": len(self.report.records) if self.report else 0,
            "unsent_records": len(self.unsent),
            "notices_recorded": self.report.notices if self.report else 0,
            "reconciliation_differences": len(self.differences),
        }


def reconcile_accounts(conn: Connection, day: date, account_ids: set[int]) -> list[ReconDifference]:
    """The records kept for `day` of these accounts against the ledger as of the day."""
    if not account_ids:
        return []
    owed, _ = ledger_owed_as_of(conn, day, sorted(account_ids))
    rows = conn.execute(
        select(bureau_records.c.credit_account_id, bureau_records.c.balance_fen).where(
            bureau_records.c.as_of == day,
            bureau_records.c.credit_account_id.in_(sorted(account_ids)),
        )
    ).all()
    reported = {int(a): int(b) for a, b in rows}
    out = []
    for account_id in sorted(account_ids):
        ledger = max(0, owed.get(account_id, 0))
        if account_id not in reported:
            if ledger > 0:
                out.append(ReconDifference(account_id, None, ledger, "owing but not reported"))
        elif reported[account_id] != ledger:
            out.append(ReconDifference(account_id, reported[account_id], ledger, "balance differs"))
    return out


def build(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    day: date,
    *,
    grace_of: dict[str, int] | None = None,
    zone: str = "Asia/Shanghai",
) -> EventRun:
    """Find the day's events, keep them, derive and validate the records (the caller's
    transaction)."""
    run = EventRun(day, detect(conn, day, zone))
    now = clock.now()
    e = bureau_events.c
    kept = {
        (int(r.credit_account_id), r.event): r.sent_at
        for r in conn.execute(select(bureau_events).where(e.event_date == day))
    }
    for account_id, events in sorted(run.events.items()):
        for event in sorted(events):
            if (account_id, event) not in kept:
                conn.execute(
                    bureau_events.insert().values(
                        credit_account_id=account_id, event_date=day, event=event, detected_at=now
                    )
                )
                kept[(account_id, event)] = None
    run.unsent = {a for (a, _), sent in kept.items() if sent is None}
    if run.events:
        report = build_records(
            conn, clock, keys, day, grace_of=grace_of, zone=zone, only=set(run.events)
        )
        write_files(report, clock)  # validated: a malformed record raises here
        run.report = report
    run.differences = reconcile_accounts(conn, day, set(run.events))
    return run


def unsent_files(run: EventRun, clock: Clock) -> dict[str, tuple[str, set[int]]]:
    """Format → (validated file of the records not sent yet, their accounts)."""
    if run.report is None:
        return {}
    mine = [r for r in run.report.records if int(r.account_ref) in run.unsent]
    files = write_files(ReportRun(run.day, records=mine), clock) if mine else {}
    return {
        fmt: (text, {int(r.account_ref) for r in mine if FORMAT_OF_CURRENCY[r.currency] == fmt})
        for fmt, text in files.items()
    }


def mark_sent(
    conn: Connection, day: date, account_ids: set[int], submission_id: str, at: datetime
) -> int:
    e = bureau_events.c
    result = conn.execute(
        bureau_events.update()
        .where(
            e.event_date == day,
            e.credit_account_id.in_(sorted(account_ids)),
            e.sent_at.is_(None),
        )
        .values(sent_at=at, submission_id=submission_id)
    )
    return int(result.rowcount)
