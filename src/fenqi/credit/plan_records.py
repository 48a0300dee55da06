"""A plan and its lines as rows: written once when a purchase (or a conversion) books it."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from fenqi.clock import Clock
from fenqi.pricing.quote import Quote
from fenqi.pricing.schedule import Schedule
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines


def store_plan(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    order_ref: str,
    kind: str,
    quote: Quote,
    *,
    ledger_entry_id: int | None = None,
    schedule: Schedule | None = None,
) -> int:
    """Write a plan and its lines (from the quote's schedule, or another schedule)."""
    s = schedule or quote.schedule
    plan_id = int(
        _INSERT_PLAN.run(
            conn,
            {
                "credit_account_id": credit_account_id,
                "order_ref": order_ref,
                "kind": kind,
                "terms": len(s.lines),
                "method": quote.pricing.method.value,
                "purchase_date": s.start_date,
                "principal_fen": s.principal_fen,
                "fee_fen": s.fee_fen,
                "interest_fen": s.interest_fen,
                "nominal_rate_bp": quote.rate.nominal_bp,
                "effective_rate_bp": quote.rate.effective_bp,
                "status": "open",
                "ledger_entry_id": ledger_entry_id,
                "created_at": clock.now(),
            },
        ).scalar_one()
    )
    zero = dict.fromkeys(
        (
            "paid_principal_fen",
            "paid_fee_fen",
            "paid_interest_fen",
            "waived_principal_fen",
            "waived_fee_fen",
            "waived_interest_fen",
        ),
        0,
    )
    _INSERT_LINES.many(
        conn,
        [
            {
                "plan_id": plan_id,
                "period": x.period,
                "credit_account_id": credit_account_id,
                "due_date": x.due_date,
                "principal_fen": x.principal_fen,
                "fee_fen": x.fee_fen,
                "interest_fen": x.interest_fen,
                **zero,
            }
            for x in s.lines
        ],
    )
    return plan_id


_INSERT_PLAN = Prepared(insert(plans).returning(plans.c.id))
_INSERT_LINES = Prepared(insert(lines))
