"""The complaints register (issue 18): complaints staff take from customers, with an answer date
and an outcome, audited; counted in the regulatory "complaints and disputes" report.

The answer date defaults to 15 days after the complaint was received (银行保险机构消费投诉处理
管理办法 art. 22: a decision within 15 days of acceptance; fenqi's reading for a lender); staff
may set an earlier or later one. The text is kept redacted (ID numbers and mobiles masked).

Every change is audited (`complaint.opened`, `complaint.closed`); a refusal is too
(`complaint.refused`), through `attempt`, which runs the change in a savepoint so a refusal
leaves nothing half done and its audit entry is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from fenqi.clock import Clock
from fenqi.errors import FenqiError
from fenqi.privacy import audit
from fenqi.privacy.masking import redact_text
from fenqi.store.schema.compliance import complaints
from fenqi.store.schema.parties import customers

CHANNELS = ("phone", "letter", "email", "app", "in_person", "social_media", "regulator", "other")
CATEGORIES = (
    "billing",
    "repayment",
    "collection",
    "bureau_report",
    "privacy",
    "pricing",
    "product",
    "service",
    "fraud",
    "other",
)
OUTCOMES = ("upheld", "partly_upheld", "rejected", "withdrawn")
ANSWER_DAYS = 15
Actor = tuple[str, str]  # (kind, id): ("staff", "7"), ("system", "cli")


class ComplaintError(FenqiError):
    code = "complaint_invalid"
    http_status = 422


def opened_in(col: Any, start: date, end: date) -> Any:
    """`col` (an instant) falls on a day from `start` to `end`, Beijing time: the months of the
    regulatory reports."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    lo = datetime.combine(start, time.min, tz)
    hi = datetime.combine(end + timedelta(days=1), time.min, tz)
    return (col >= lo) & (col < hi)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ComplaintError(f"{name}: {value!r} is not one of {', '.join(allowed)}", field=name)
    return value


def _row(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    for k in ("opened_at", "closed_at", "due_on"):
        if d.get(k) is not None:
            d[k] = d[k].isoformat()
    return d


def get_complaint(conn: Connection, complaint_id: int) -> dict[str, Any]:
    row = conn.execute(select(complaints).where(complaints.c.id == complaint_id)).first()
    if row is None:
        raise ComplaintError(
            f"complaint {complaint_id} not found", code="not_found", http_status=404
        )
    return _row(row)


def open_complaint(
    conn: Connection,
    clock: Clock,
    actor: Actor,
    *,
    customer_id: int,
    channel: str,
    category: str,
    text: str,
    due_on: date | None = None,
) -> dict[str, Any]:
    _one_of("channel", channel, CHANNELS)
    _one_of("category", category, CATEGORIES)
    if not text.strip():
        raise ComplaintError("text: say what the customer complains about", field="text")
    found = conn.execute(select(customers.c.id).where(customers.c.id == customer_id)).first()
    if found is None:
        raise ComplaintError(f"customer {customer_id} not found", code="not_found", http_status=404)
    today = clock.today()
    due = due_on or today + timedelta(days=ANSWER_DAYS)
    if due < today:
        raise ComplaintError("due_on: the answer date cannot be in the past", field="due_on")
    new_id = conn.execute(
        complaints.insert()
        .values(
            customer_id=customer_id,
            channel=channel,
            category=category,
            text=redact_text(text.strip())[:4000],
            status="open",
            opened_at=clock.now(),
            opened_by=f"{actor[0]}:{actor[1]}",
            due_on=due,
            outcome_note="",
        )
        .returning(complaints.c.id)
    ).scalar_one()
    audit.record(
        conn,
        clock,
        actor_kind=actor[0],
        actor_id=actor[1],
        action="complaint.opened",
        target_kind="complaint",
        target_id=int(new_id),
        detail={"customer_id": customer_id, "channel": channel, "category": category},
    )
    return get_complaint(conn, int(new_id))


def close_complaint(
    conn: Connection, clock: Clock, actor: Actor, complaint_id: int, outcome: str, note: str
) -> dict[str, Any]:
    _one_of("outcome", outcome, OUTCOMES)
    if not note.strip():
        raise ComplaintError("note: the answer given to the customer", field="note")
    current = get_complaint(conn, complaint_id)
    if current["status"] != "open":
        raise ComplaintError(
            f"complaint {complaint_id} is closed already",
            code="complaint_closed",
            http_status=409,
        )
    conn.execute(
        complaints.update()
        .where(complaints.c.id == complaint_id, complaints.c.status == "open")
        .values(
            status="closed",
            closed_at=clock.now(),
            closed_by=f"{actor[0]}:{actor[1]}",
            outcome=outcome,
            outcome_note=redact_text(note.strip())[:4000],
        )
    )
    audit.record(
        conn,
        clock,
        actor_kind=actor[0],
        actor_id=actor[1],
        action="complaint.closed",
        target_kind="complaint",
        target_id=complaint_id,
        reason=outcome,
        detail={"late": clock.today() > date.fromisoformat(current["due_on"])},
    )
    return get_complaint(conn, complaint_id)


def list_complaints(
    conn: Connection,
    *,
    status: str | None = None,
    customer_id: int | None = None,
    overdue_on: date | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    c = complaints.c
    q = select(complaints).order_by(c.id.desc()).limit(limit)
    if status:
        q = q.where(c.status == status)
    if customer_id is not None:
        q = q.where(c.customer_id == customer_id)
    if overdue_on is not None:
        q = q.where(c.status == "open", c.due_on < overdue_on)
    return [_row(r) for r in conn.execute(q)]


def attempt(
    conn: Connection,
    clock: Clock,
    actor: Actor,
    target: tuple[str, Any],
    change: Callable[[], dict[str, Any]],
) -> dict[str, Any] | FenqiError:
    """Run `change` in a savepoint; a refusal is rolled back, audited as `complaint.refused`
    in the caller's transaction, and returned (not raised), so the audit entry is kept."""
    try:
        with conn.begin_nested():
            return change()
    except FenqiError as exc:
        audit.record(
            conn,
            clock,
            actor_kind=actor[0],
            actor_id=actor[1],
            action="complaint.refused",
            target_kind=target[0],
            target_id=target[1],
            reason=exc.message,
            detail={"code": exc.code},
        )
        return exc


def complaint_rows(conn: Connection, start: date, end: date) -> list[dict[str, Any]]:
    """The report's rows: complaints received from `start` to `end` (business dates), by
    category and status (closed ones by outcome)."""

    c = complaints.c
    return [
        {
            "kind": "complaint",
            "what": category,
            "status": status if status == "open" else f"closed:{outcome}",
            "count": int(n),
        }
        for category, status, outcome, n in conn.execute(
            select(c.category, c.status, c.outcome, func.count())
            .where(opened_in(c.opened_at, start, end))
            .group_by(c.category, c.status, c.outcome)
            .order_by(c.category, c.status, c.outcome)
        )
    ]


def overdue_complaints(conn: Connection, on: date) -> int:
    c = complaints.c
    return int(
        conn.execute(select(func.count()).where(c.status == "open", c.due_on < on)).scalar_one()
    )
