"""Hardship plans: a delinquent balance restructured into a new plan (re-aged).

A staff user whose role may approve hardship (collectors) moves everything still unpaid on the
account's open plans — principal, billed and unbilled fees, scheduled interest — into a new
plan of N monthly periods starting next month, with no new fee (the shopper pays no more than
they owed). The old plans close as `restructured`; days past due start again from the new
schedule. Charges already accrued stay owed unless the approver waives them. The caller writes
the audit record in the same transaction.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, insert, select, update

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.credit.lines import KINDS, line_from_row
from fenqi.credit.plan_refs import plan_ref
from fenqi.credit.posting import leg, post
from fenqi.credit.service import customer_account, get_account, platform_account
from fenqi.funding import wiring as funding
from fenqi.ledger.chart import AccountCode
from fenqi.money import split_evenly
from fenqi.pricing.due_dates import add_months
from fenqi.products.model import ChargeKind, Product
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_income
from fenqi.store.schema.credit import plan_lines as lines_t

HARDSHIP_TERMS_MAX = 36


def hardship_dates(today: date, terms: int) -> list[date]:
    return [add_months(today, i + 1) for i in range(terms)]


def restructure(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    terms: int,
    *,
    waive_charges: bool,
    client_id: str,
) -> int:
    if not 1 <= terms <= HARDSHIP_TERMS_MAX:
        raise CreditError(f"terms: 1 to {HARDSHIP_TERMS_MAX} months", code="invalid_terms")
    account = get_account(conn, credit_account_id, for_update=True)
    if account["charged_off_on"] is not None:
        raise CreditError(
            "a charged-off account cannot be restructured", code="account_charged_off"
        )
    if account["past_due_since"] is None:
        raise CreditError(
            "hardship plans are for accounts in arrears (days past due > 0)", code="not_delinquent"
        )
    open_ids = (
        conn.execute(
            select(plans.c.id).where(
                plans.c.credit_account_id == credit_account_id, plans.c.status == "open"
            )
        )
        .scalars()
        .all()
    )
    rows = conn.execute(select(lines_t).where(lines_t.c.plan_id.in_(open_ids))).mappings().all()
    old = [line_from_row(r) for r in rows]
    owed = {k: sum(x.unpaid(k) for x in old) for k in KINDS}
    earned = {
        k: sum(x.unpaid(k) for x, r in zip(old, rows, strict=True) if r["billed_on"] is not None)
        for k in (ChargeKind.FEE, ChargeKind.INTEREST)
    }
    if owed[ChargeKind.PRINCIPAL] <= 0:
        raise CreditError("nothing left to restructure", code="nothing_to_restructure")
    for x in old:
        conn.execute(
            update(lines_t)
            .where(lines_t.c.plan_id == x.plan_id, lines_t.c.period == x.period)
            .values(
                waived_principal_fen=lines_t.c.waived_principal_fen
                + x.unpaid(ChargeKind.PRINCIPAL),
                waived_fee_fen=lines_t.c.waived_fee_fen + x.unpaid(ChargeKind.FEE),
                waived_interest_fen=lines_t.c.waived_interest_fen + x.unpaid(ChargeKind.INTEREST),
            )
        )
    conn.execute(update(plans).where(plans.c.id.in_(open_ids)).values(status="restructured"))
    today = clock.today()
    dates = hardship_dates(today, terms)
    parts = {k: split_evenly(owed[k], terms) for k in KINDS}
    new_id = int(
        conn.execute(
            insert(plans)
            .values(
                credit_account_id=credit_account_id,
                order_ref=plan_ref("hardship", client_id),
                kind="hardship",
                terms=terms,
                method="hardship",
                purchase_date=today,
                principal_fen=owed[ChargeKind.PRINCIPAL],
                fee_fen=owed[ChargeKind.FEE],
                interest_fen=owed[ChargeKind.INTEREST],
                nominal_rate_bp=0,
                effective_rate_bp=0,
                status="open",
                created_at=clock.now(),
            )
            .returning(plans.c.id)
        ).scalar_one()
    )
    conn.execute(
        insert(lines_t),
        [
            {
                "plan_id": new_id,
                "period": i + 1,
                "credit_account_id": credit_account_id,
                "due_date": d,
                "principal_fen": parts[ChargeKind.PRINCIPAL][i],
                "fee_fen": parts[ChargeKind.FEE][i],
                "interest_fen": parts[ChargeKind.INTEREST][i],
                "paid_principal_fen": 0,
                "paid_fee_fen": 0,
                "paid_interest_fen": 0,
                "waived_principal_fen": 0,
                "waived_fee_fen": 0,
                "waived_interest_fen": 0,
            }
            for i, d in enumerate(dates)
        ],
    )
    if earned[ChargeKind.FEE] or earned[ChargeKind.INTEREST]:
        # what the old plans had earned and the new one owes stays earned
        conn.execute(
            insert(plan_income).values(
                plan_id=new_id,
                fee_earned_fen=earned[ChargeKind.FEE],
                interest_earned_fen=earned[ChargeKind.INTEREST],
            )
        )
    if waive_charges:
        _waive_charges(conn, clock, product, credit_account_id, client_id)
    funding.plans_replaced(  # the old plans' funders paid off, the new plan funded afresh
        conn, clock, credit_account_id, open_ids, new_id, owed[ChargeKind.PRINCIPAL], terms,
        f"hardship:{client_id}",
    )  # fmt: skip
    return new_id


def _waive_charges(
    conn: Connection, clock: Clock, product: Product, credit_account_id: int, client_id: str
) -> None:
    unpaid = accruals.c.accrued_fen - accruals.c.paid_fen - accruals.c.waived_fen
    owed = dict(
        conn.execute(
            select(accruals.c.kind, unpaid).where(accruals.c.credit_account_id == credit_account_id)
        ).all()
    )
    currency = product.currency
    postings = []
    waived: dict[str, int] = {}
    for kind, receivable, income in (
        ("penalty", AccountCode.PENALTY_RECEIVABLE, AccountCode.PENALTY_INCOME),
        ("interest", AccountCode.INTEREST_RECEIVABLE, AccountCode.INTEREST_INCOME),
    ):
        amount = int(owed.get(kind, 0) or 0)
        waived[kind] = amount
        postings.extend(
            leg(
                platform_account(conn, clock, income, currency),
                customer_account(conn, clock, credit_account_id, receivable, currency),
                amount,
                f"hardship_waive_{kind}",
            )
        )
    # waive what was read and is posted below, not whatever the row holds when updated: a
    # charge accrued meanwhile stays owed on both sides (the account's lock keeps the end of
    # day out, so this is a second guard)
    for kind, amount in waived.items():
        if amount > 0:
            conn.execute(
                update(accruals)
                .where(accruals.c.credit_account_id == credit_account_id, accruals.c.kind == kind)
                .values(waived_fen=accruals.c.waived_fen + amount)
            )
    post(
        conn,
        clock,
        f"hardship:{client_id}:waive",
        currency,
        postings,
        "charges waived in a hardship plan",
        "credit_account",
        str(credit_account_id),
    )
