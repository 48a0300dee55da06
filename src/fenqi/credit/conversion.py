"""Turning purchases paid in the interest-free cycle into installments (交易分期 / 账单分期).

A purchase (or all cycle purchases billed on one statement) that nothing has been paid on yet
becomes a new installment plan for its unpaid principal, priced by the product's terms from the
conversion date. The principal stays where it is in the ledger; only the new plan's fee and
interest are booked. The old plans are marked `converted`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, select, update

from fenqi.clock import Clock
from fenqi.credit.conversion_window import conversion_refusal
from fenqi.credit.errors import CreditError, NotFound
from fenqi.credit.lines import Line, line_from_row
from fenqi.credit.plan_refs import plan_ref
from fenqi.credit.plans import offer
from fenqi.credit.posting import leg, post
from fenqi.credit.service import customer_account, get_account, platform_account, store_plan
from fenqi.funding import wiring as funding
from fenqi.ledger.chart import AccountCode
from fenqi.pricing.quote import Quote
from fenqi.products.model import ChargeKind, Product
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines_t


def _convertible(
    conn: Connection,
    credit_account_id: int,
    plan_ids: list[int],
    window: tuple[Product, date] | None = None,
) -> int:
    """The unpaid principal of the plans, after checking each may be converted (and, given
    `window` (product, today), that today is in its conversion window)."""
    if not plan_ids:
        raise CreditError("plan_ids: name at least one purchase", code="nothing_to_convert")
    # the account row first, as repayments, payoffs and refunds take it: a repayment racing
    # this conversion either comes first (and the plan is partly paid) or sees the new plan
    get_account(conn, credit_account_id, for_update=True)
    total = 0
    for plan_id in plan_ids:
        plan = (
            conn.execute(select(plans).where(plans.c.id == plan_id).with_for_update())
            .mappings()
            .first()
        )
        if plan is None or plan["credit_account_id"] != credit_account_id:
            raise NotFound(f"plan {plan_id} not found")
        if plan["kind"] != "cycle" or plan["status"] != "open":
            raise CreditError(
                f"plan {plan_id} is not an open interest-free-cycle purchase",
                code="not_convertible",
            )
        rows = conn.execute(select(lines_t).where(lines_t.c.plan_id == plan_id)).mappings().all()
        lines = [line_from_row(r) for r in rows]
        if any(x.paid[ChargeKind.PRINCIPAL] for x in lines):
            raise CreditError(
                f"plan {plan_id} is partly paid; pay it or repay first", code="not_convertible"
            )
        if window is not None:
            _check_window(window[0], plan_id, lines, window[1])
        total += sum(x.unpaid(ChargeKind.PRINCIPAL) for x in lines)
    return total


def _check_window(product: Product, plan_id: int, lines: list[Line], today: date) -> None:
    for line in lines:
        refusal = conversion_refusal(product, line.due_date, today)
        if refusal is not None:
            raise CreditError(
                f"plan {plan_id}: {refusal.message}", code=refusal.code, plan_id=plan_id
            )


def conversion_quote(
    conn: Connection,
    product: Product,
    credit_account_id: int,
    plan_ids: list[int],
    terms: int,
    as_of: date,
    cap_bp: int,
    tier: str | None = None,
) -> Quote:
    principal = _convertible(conn, credit_account_id, plan_ids, (product, as_of))
    return offer(product, principal, terms, as_of, cap_bp=cap_bp, tier=tier).quote


def convert(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    plan_ids: list[int],
    terms: int,
    cap_bp: int,
    client_id: str,
    tier: str | None = None,
) -> int:
    q = conversion_quote(
        conn, product, credit_account_id, plan_ids, terms, clock.today(), cap_bp, tier
    )
    for plan_id in plan_ids:
        conn.execute(
            update(lines_t)
            .where(lines_t.c.plan_id == plan_id)
            .values(waived_principal_fen=lines_t.c.principal_fen - lines_t.c.paid_principal_fen)
        )
        conn.execute(update(plans).where(plans.c.id == plan_id).values(status="converted"))
    s = q.schedule
    new_id = store_plan(
        conn, clock, credit_account_id, plan_ref("conversion", client_id), "installments", q
    )
    currency = product.currency
    post(
        conn,
        clock,
        f"convert:{client_id}",
        currency,
        [
            *leg(
                customer_account(
                    conn, clock, credit_account_id, AccountCode.FEE_RECEIVABLE, currency
                ),
                platform_account(conn, clock, AccountCode.UNEARNED_FEE_INCOME, currency),
                s.fee_fen,
                "fee",
            ),
            *leg(
                customer_account(
                    conn, clock, credit_account_id, AccountCode.INTEREST_RECEIVABLE, currency
                ),
                platform_account(conn, clock, AccountCode.UNEARNED_INTEREST_INCOME, currency),
                s.interest_fen,
                "interest",
            ),
        ],
        f"conversion of plans {plan_ids} into {terms} installments",
        "plan",
        str(new_id),
    )
    funding.plans_replaced(  # after the posting: the bill's funders paid off, new plan funded
        conn, clock, credit_account_id, plan_ids, new_id, s.principal_fen, terms,
        f"convert:{client_id}",
    )  # fmt: skip
    return new_id
