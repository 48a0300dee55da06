"""Disputes (异议) of reported credit records: opened by the shopper or by staff for them,
investigated with evidence from the ledger within the statutory limit, corrected or confirmed.

征信业管理条例 (2013) art. 25: the subject may dispute information; the reporting institution
answers within 20 days (`FENQI_BUREAU_DISPUTE_DAYS`). While a dispute is open the account's
records carry the dispute flag (PBOC `DISPUTE`, Metro 2 compliance condition `XB`) from the
next report on. The outcome:

- `corrected`: the disputed date's record is derived again from the ledger and arrears
  (`reporting.build_records(only=...)`) after the source was put right (a payment applied, a
  late date cleared), and where the investigation found a reported field wrong that the ledger
  cannot show for a past date, the investigator's `fix` (status, days past due, amount past
  due; never the balance, which stays the ledger's) is applied on top. The result replaces the
  reported record as a correction record and the correction file goes to the bureau. When
  neither changes anything there is nothing to correct: refused (or confirm instead).
- `confirmed`: the record stands; the reason is kept and the subject is told.

Every step is audited (`bureau.dispute_opened`, `bureau.dispute_corrected`,
`bureau.dispute_confirmed`, `bureau.dispute_refused` for a refusal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from fenqi.bureau.client import BureauClient
from fenqi.bureau.corrections import DisputeError, DisputeStatus
from fenqi.bureau.errors import BureauUnavailable
from fenqi.clock import Clock
from fenqi.privacy import audit
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.masking import redact_text
from fenqi.store.schema.bureau import bureau_records
from fenqi.store.schema.compliance import bureau_disputes
from fenqi.store.schema.credit import credit_accounts, plan_lines, repayments

CLAIM_CHARS_MAX = 2000
NOTE_CHARS_MAX = 2000


class DisputeItem(StrEnum):
    BALANCE = "balance"
    STATUS = "status"
    PAST_DUE = "past_due"
    DAYS_PAST_DUE = "days_past_due"
    HISTORY = "history"
    CHARGE_OFF = "charge_off"
    LIMIT = "limit"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: `customer:<id>` (the shopper) or `staff:<id>`, and through which channel."""

    kind: str  # customer | staff | system
    id: str
    channel: str  # api | wallet | console | cli

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}"


def _account(conn: Connection, account_id: int) -> Any:
    return conn.execute(
        select(credit_accounts.c.id, credit_accounts.c.customer_ref).where(
            credit_accounts.c.id == account_id
        )
    ).first()


def open_dispute(
    conn: Connection,
    clock: Clock,
    actor: Actor,
    *,
    account_id: int,
    item: str,
    claim: str,
    record_as_of: date | None = None,
    customer_id: int | None = None,
    answer_days: int = 20,
) -> dict[str, Any]:
    """Open a dispute on the record of `account_id` reported for `record_as_of` (default: the
    latest reported). A shopper (`customer_id` given) may dispute only their own account: any
    other is "not found", as if it did not exist."""
    account = _account(conn, account_id)
    if account is None or (customer_id is not None and account.customer_ref != str(customer_id)):
        raise DisputeError(
            f"credit account {account_id} not found", code="not_found", http_status=404
        )
    try:
        what = DisputeItem(item)
    except ValueError:
        known = ", ".join(i.value for i in DisputeItem)
        raise DisputeError(f"item: {item!r} is not one of {known}", field="item") from None
    claim = claim.strip()
    if not claim or len(claim) > CLAIM_CHARS_MAX:
        raise DisputeError(f"claim: 1..{CLAIM_CHARS_MAX} characters", field="claim")
    r = bureau_records.c
    stmt = select(r.as_of).where(r.credit_account_id == account_id)
    stmt = stmt.where(r.as_of == record_as_of) if record_as_of else stmt.order_by(r.as_of.desc())
    as_of = conn.execute(stmt.limit(1)).scalar()
    if as_of is None:
        on = f" for {record_as_of.isoformat()}" if record_as_of else ""
        raise DisputeError(
            f"credit account {account_id}: no record was reported{on}; nothing to dispute",
            field="record_as_of",
        )
    d = bureau_disputes.c
    if conn.execute(
        select(d.id).where(
            d.credit_account_id == account_id, d.record_as_of == as_of, d.status == "open"
        )
    ).first():
        raise DisputeError(
            f"a dispute of this account's {as_of.isoformat()} record is already open",
            code="dispute_exists",
            http_status=409,
        )
    now = clock.now()
    values = {
        "credit_account_id": account_id,
        "customer_id": int(account.customer_ref),
        "record_as_of": as_of,
        "item": what.value,
        "claim": redact_text(claim),
        "status": DisputeStatus.OPEN.value,
        "opened_at": now,
        "opened_by": actor.ref,
        "channel": actor.channel,
        "due_on": clock.today() + timedelta(days=answer_days),
        "outcome_note": "",
        "evidence": "{}",
        "correction_sent": "",
    }
    inserted = conn.execute(bureau_disputes.insert().values(**values)).inserted_primary_key
    assert inserted is not None
    new_id = int(inserted[0])
    audit.record(
        conn,
        clock,
        actor_kind=actor.kind,
        actor_id=actor.id,
        action="bureau.dispute_opened",
        target_kind="credit_account",
        target_id=account_id,
        detail={"dispute_id": new_id, "record_as_of": as_of.isoformat(), "item": what.value},
    )
    return get_dispute(conn, new_id)


def get_dispute(conn: Connection, dispute_id: int) -> dict[str, Any]:
    row = (
        conn.execute(select(bureau_disputes).where(bureau_disputes.c.id == dispute_id))
        .mappings()
        .first()
    )
    if row is None:
        raise DisputeError(f"dispute {dispute_id} not found", code="not_found", http_status=404)
    return _view(row)


def _view(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys()}  # noqa: SIM118 - a RowMapping
    for k in ("record_as_of", "due_on"):
        out[k] = out[k].isoformat()
    for k in ("opened_at", "resolved_at"):
        out[k] = out[k].isoformat() if out[k] else None
    out["evidence"] = json.loads(out["evidence"] or "{}")
    return out


def list_disputes(
    conn: Connection,
    *,
    status: str | None = None,
    customer_id: int | None = None,
    overdue_on: date | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Disputes, oldest first; `overdue_on`: only open ones whose answer date is before it."""
    d = bureau_disputes.c
    stmt = select(bureau_disputes).order_by(d.id).limit(limit)
    if status:
        stmt = stmt.where(d.status == status)
    if customer_id is not None:
        stmt = stmt.where(d.customer_id == customer_id)
    if overdue_on is not None:
        stmt = stmt.where(d.status == "open", d.due_on < overdue_on)
    return [_view(r) for r in conn.execute(stmt).mappings()]


def evidence(conn: Connection, account_id: int, as_of: date) -> dict[str, Any]:
    """What the ledger says about the disputed date, beside what was reported."""
    from fenqi.bureau.reporting import ledger_owed_as_of

    owed, charged = ledger_owed_as_of(conn, as_of)
    rec = (
        conn.execute(
            select(bureau_records).where(
                bureau_records.c.credit_account_id == account_id, bureau_records.c.as_of == as_of
            )
        )
        .mappings()
        .first()
    )
    reported = None
    if rec is not None:
        reported = {
            k: rec[k]
            for k in ("status", "dpd", "balance_fen", "past_due_fen", "charge_off_fen", "special")
        }
    pl = plan_lines.c
    due = conn.execute(
        select(
            pl.due_date,
            pl.principal_fen + pl.fee_fen + pl.interest_fen,
            pl.paid_principal_fen + pl.paid_fee_fen + pl.paid_interest_fen,
        )
        .where(pl.credit_account_id == account_id, pl.due_date <= as_of)
        .order_by(pl.due_date)
    ).all()
    rp = repayments.c
    paid = conn.execute(
        select(rp.id, rp.business_date, rp.amount_fen, rp.reversed_at)
        .where(rp.credit_account_id == account_id, rp.business_date <= as_of)
        .order_by(rp.business_date, rp.id)
    ).all()
    return {
        "as_of": as_of.isoformat(),
        "reported": reported,
        "ledger_balance_fen": max(0, owed.get(account_id, 0)),
        "ledger_charge_off_fen": charged.get(account_id, 0),
        "due_lines": [
            {"due_date": r[0].isoformat(), "due_fen": int(r[1]), "paid_fen": int(r[2])} for r in due
        ],
        "repayments": [
            {
                "id": int(r.id),
                "business_date": r.business_date.isoformat(),
                "amount_fen": int(r.amount_fen),
                "reversed": r.reversed_at is not None,
            }
            for r in paid
        ],
    }


def resolve_dispute(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    actor: Actor,
    dispute_id: int,
    outcome: str,
    note: str,
    *,
    grace_of: dict[str, int] | None = None,
    client: BureauClient | None = None,
    fix: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Close a dispute as `corrected` or `confirmed` (see the module's docstring)."""
    dispute = get_dispute(conn, dispute_id)
    if dispute["status"] != DisputeStatus.OPEN:
        raise DisputeError(
            f"dispute {dispute_id} is already {dispute['status']}",
            code="dispute_closed",
            http_status=409,
        )
    if outcome not in (DisputeStatus.CORRECTED, DisputeStatus.CONFIRMED):
        raise DisputeError("outcome: corrected or confirmed", field="outcome")
    note = note.strip()
    if not note or len(note) > NOTE_CHARS_MAX:
        raise DisputeError(f"note: 1..{NOTE_CHARS_MAX} characters (the reason)", field="note")
    account_id = int(dispute["credit_account_id"])
    as_of = date.fromisoformat(dispute["record_as_of"])
    found = evidence(conn, account_id, as_of)
    if fix and outcome == DisputeStatus.CORRECTED:
        found["fix"] = fix  # kept: every later derivation of this record applies it
    # closed before any record is derived again, so the correction does not carry the flag
    conn.execute(
        bureau_disputes.update()
        .where(bureau_disputes.c.id == dispute_id)
        .values(
            status=outcome,
            resolved_at=clock.now(),
            resolved_by=actor.ref,
            outcome_note=redact_text(note),
            evidence=json.dumps(found, default=str),
        )
    )
    sent = ""
    if outcome == DisputeStatus.CORRECTED:
        sent = _correct(conn, clock, keys, account_id, as_of, grace_of, client)
        conn.execute(
            bureau_disputes.update()
            .where(bureau_disputes.c.id == dispute_id)
            .values(correction_sent=sent)
        )
    audit.record(
        conn,
        clock,
        actor_kind=actor.kind,
        actor_id=actor.id,
        action=f"bureau.dispute_{outcome}",
        target_kind="credit_account",
        target_id=account_id,
        reason=note,
        detail={"dispute_id": dispute_id, "record_as_of": as_of.isoformat(), "sent": sent},
    )
    return get_dispute(conn, dispute_id)


def _correct(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    account_id: int,
    as_of: date,
    grace_of: dict[str, int] | None,
    client: BureauClient | None,
) -> str:
    from fenqi.bureau.reporting import build_records, write_files

    run = build_records(conn, clock, keys, as_of, grace_of=grace_of, only={account_id})
    if run.corrections == 0:
        raise DisputeError(
            f"the ledger still gives the record reported for {as_of.isoformat()}: nothing to "
            "correct (put the source right first, or confirm the record)",
            code="dispute_nothing_to_correct",
            http_status=409,
        )
    files = write_files(run, clock)
    if client is None:
        return "pending"  # `fenqi bureau report --send` for that date sends it
    try:
        for fmt, content in files.items():
            client.submit(fmt, content)
    except BureauUnavailable:
        return "pending"
    return "sent"
