"""Post-loan monitoring: existing accounts re-inquired at the bureau on a schedule.

`run(engine, clock, keys, client, run_date, interval_days=…, daily_cap=…)` selects, in one
query, the open credit accounts that are due on `run_date`: not closed, not charged off, opened
at least `interval_days` before, whose customer's `bureau_monitoring` consent is in force now,
and whose last successful monitoring inquiry is `interval_days` or more before `run_date` (or
none); the longest-unmonitored first, at most `daily_cap` a date. Each is inquired
(`inquiry.inquire`, purpose `post_loan_monitoring`: the report sealed, attributes kept, retention
date, audit) in its own transaction, and its outcome kept in `bureau_monitoring` (key: account,
run date). So:

- a rerun for the same date skips what is done (`ok`, or `refused`: the consent was withdrawn
  meanwhile, or the bureau refused) and inquires again what failed (`unavailable`, `error`);
- a bureau outage is recorded per account (`unavailable`, the circuit breaker making the rest
  fail fast) and the run goes on; no exception leaves the run;
- one inquiry per customer per run serves all of the customer's due accounts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, String, and_, cast, exists, func, or_, select

from fenqi.bureau.client import BureauClient
from fenqi.bureau.errors import BureauError
from fenqi.bureau.inquiry import PURPOSE_MONITORING, inquire
from fenqi.clock import Clock
from fenqi.privacy.consent import ConsentKind
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.bureau import bureau_monitoring, bureau_reports
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.parties import customers
from fenqi.store.schema.privacy import consents

log = logging.getLogger(__name__)

ERASED_PREFIX = "erased:"
DONE = ("ok", "refused")  # a rerun for the same date does not inquire these again


@dataclass(frozen=True, slots=True)
class Due:
    credit_account_id: int
    customer_id: int
    key_id: str
    id_number_enc: str


@dataclass
class MonitoringRun:
    run_date: date
    due: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    inquiries: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date.isoformat(),
            "due": self.due,
            "inquiries": self.inquiries,
            **{s: self.counts.get(s, 0) for s in ("ok", "unavailable", "refused", "error")},
        }


def due_accounts(
    conn: Connection,
    now: datetime,
    run_date: date,
    *,
    interval_days: int,
    limit: int,
    zone: str = "Asia/Shanghai",
) -> list[Due]:
    """The accounts due for monitoring on `run_date`, longest-unmonitored first (one query)."""
    if limit <= 0:
        return []
    ca, m = credit_accounts, bureau_monitoring
    cutoff = run_date - timedelta(days=interval_days)
    opened_by = datetime.combine(cutoff + timedelta(days=1), time.min, ZoneInfo(zone))
    last_ok = (
        select(func.max(m.c.run_date))
        .where(m.c.credit_account_id == ca.c.id, m.c.status == "ok", m.c.run_date <= run_date)
        .scalar_subquery()
    )
    consent_in_force = exists().where(
        consents.c.customer_id == customers.c.id,
        consents.c.kind == ConsentKind.BUREAU_MONITORING.value,
        consents.c.granted_at <= now,
        or_(consents.c.revoked_at.is_(None), consents.c.revoked_at > now),
    )
    done_today = exists().where(
        m.c.credit_account_id == ca.c.id, m.c.run_date == run_date, m.c.status.in_(DONE)
    )
    rows = conn.execute(
        select(ca.c.id, customers.c.id, customers.c.key_id, customers.c.id_number_enc)
        .select_from(ca.join(customers, cast(customers.c.id, String) == ca.c.customer_ref))
        .where(
            ca.c.status != "closed",
            ca.c.charged_off_on.is_(None),
            ca.c.opened_at < opened_by,
            ~customers.c.id_number_bidx.startswith(ERASED_PREFIX),
            consent_in_force,
            ~done_today,
            or_(last_ok.is_(None), last_ok <= cutoff),
        )
        .order_by(func.coalesce(last_ok, date(1900, 1, 1)), ca.c.id)
        .limit(limit)
    ).all()
    return [Due(int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]


def _done_count(conn: Connection, run_date: date) -> int:
    m = bureau_monitoring
    return int(
        conn.execute(
            select(func.count()).where(m.c.run_date == run_date, m.c.status.in_(DONE))
        ).scalar_one()
    )


def _keep(
    conn: Connection, clock: Clock, due: Due, run_date: date, outcome: tuple[str, str, int | None]
) -> None:
    status, code, report_id = outcome
    m = bureau_monitoring
    key = and_(m.c.credit_account_id == due.credit_account_id, m.c.run_date == run_date)
    values = {
        "status": status,
        "error_code": code[:48],
        "bureau_report_id": report_id,
        "updated_at": clock.now(),
    }
    if conn.execute(select(m.c.attempts).where(key)).first() is None:
        conn.execute(
            m.insert().values(
                credit_account_id=due.credit_account_id,
                run_date=run_date,
                customer_id=due.customer_id,
                attempts=1,
                **values,
            )
        )
    else:
        conn.execute(m.update().where(key).values(attempts=m.c.attempts + 1, **values))


def _inquire_one(
    engine: Engine,
    clock: Clock,
    keys: KeyRing,
    client: BureauClient,
    due: Due,
    *,
    retention_days: int,
) -> tuple[str, str, int | None]:
    """One account's inquiry in its own transaction; (status, error code, report row id)."""
    try:
        with engine.begin() as conn:
            subject = keys.decrypt(due.key_id, due.id_number_enc, context="customers.id_number")
            outcome = inquire(
                conn,
                clock,
                keys,
                client,
                due.customer_id,
                subject,
                PURPOSE_MONITORING,
                retention_days=retention_days,
                actor="bureau-monitor",
            )
        return outcome.status, outcome.error_code, outcome.report_row_id
    except BureauError as exc:  # no standing consent any more (audited by inquire)
        return "refused", exc.code, None
    except Exception as exc:  # one account's failure never stops the run
        log.exception("bureau monitoring: account %s failed", due.credit_account_id)
        return "error", type(exc).__name__, None


def run(
    engine: Engine,
    clock: Clock,
    keys: KeyRing,
    client: BureauClient,
    run_date: date,
    *,
    interval_days: int,
    daily_cap: int,
    retention_days: int,
    zone: str = "Asia/Shanghai",
) -> MonitoringRun:
    """Inquire every account due on `run_date` (see the module's docstring)."""
    result = MonitoringRun(run_date)
    with engine.connect() as conn:
        room = daily_cap - _done_count(conn, run_date)
        due = due_accounts(
            conn, clock.now(), run_date, interval_days=interval_days, limit=room, zone=zone
        )
    result.due = len(due)
    by_customer: dict[int, tuple[str, str, int | None]] = {}
    for item in due:
        outcome = by_customer.get(item.customer_id)
        if outcome is None:
            outcome = _inquire_one(engine, clock, keys, client, item, retention_days=retention_days)
            by_customer[item.customer_id] = outcome
            result.inquiries += 1
        try:
            with engine.begin() as conn:
                _keep(conn, clock, item, run_date, outcome)
        except Exception:  # recorded next run: the account stays due
            log.exception("bureau monitoring: keeping account %s", item.credit_account_id)
            outcome = ("error", "keep_failed", None)
        result.counts[outcome[0]] = result.counts.get(outcome[0], 0) + 1
    return result


def latest(conn: Connection, credit_account_id: int) -> dict[str, Any]:
    """The account's latest monitoring run and the bureau attributes of its latest successful
    monitoring inquiry (no personal data: the report itself stays sealed)."""
    m, r = bureau_monitoring, bureau_reports
    last = conn.execute(
        select(m)
        .where(m.c.credit_account_id == credit_account_id)
        .order_by(m.c.run_date.desc())
        .limit(1)
    ).first()
    ok = conn.execute(
        select(m.c.run_date, r.c.id, r.c.requested_at, r.c.retention_until, r.c.attributes)
        .join(r, r.c.id == m.c.bureau_report_id)
        .where(m.c.credit_account_id == credit_account_id, m.c.status == "ok")
        .order_by(m.c.run_date.desc())
        .limit(1)
    ).first()
    return {
        "credit_account_id": credit_account_id,
        "last_run": None
        if last is None
        else {
            "run_date": last.run_date.isoformat(),
            "status": last.status,
            "error_code": last.error_code,
            "attempts": int(last.attempts),
        },
        "latest_report": None
        if ok is None
        else {
            "run_date": ok.run_date.isoformat(),
            "bureau_report_id": int(ok.id),
            "requested_at": ok.requested_at.isoformat(),
            "retention_until": ok.retention_until.isoformat(),
            "attributes": json.loads(ok.attributes),
        },
    }
