"""Early payoff of one plan (提前还款): the quote is pure, the payoff is one transaction.

The shopper pays all unpaid principal, the fee and interest of periods already billed (periods
due up to and including the current one), and, unless the product waives them
(`early_payoff.refund_unbilled_fee`), the fees of later periods; interest of later periods is
never charged because it has not accrued. A product may add a penalty on the principal repaid
early (`early_payoff.penalty_bp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select, update

from fenqi.clock import Clock
from fenqi.credit.accounts import customer_account, get_account, platform_account
from fenqi.credit.errors import CreditError, NotFound
from fenqi.credit.lines import KINDS, Line, column, line_from_row
from fenqi.credit.owed import close_paid_plans
from fenqi.credit.posting import leg, post
from fenqi.funding import wiring as funding
from fenqi.ledger.chart import AccountCode
from fenqi.money import apply_bp
from fenqi.products.model import ChargeKind, Product
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines_t


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    plan_id: int
    as_of: date
    principal_fen: int
    fee_fen: int
    interest_fen: int
    penalty_fen: int
    fee_waived_fen: int
    interest_waived_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.fee_fen + self.interest_fen + self.penalty_fen

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "as_of": self.as_of.isoformat(),
            "principal_fen": self.principal_fen,
            "fee_fen": self.fee_fen,
            "interest_fen": self.interest_fen,
            "penalty_fen": self.penalty_fen,
            "fee_waived_fen": self.fee_waived_fen,
            "interest_waived_fen": self.interest_waived_fen,
            "total_fen": self.total_fen,
        }


def billed_through(lines: list[Line], as_of: date) -> date:
    """The due date of the current period: the first unpaid line due on or after `as_of`."""
    future = [x.due_date for x in lines if x.due_date >= as_of and x.unpaid_total > 0]
    return min(future) if future else as_of


def payoff_quote(plan_id: int, lines: list[Line], product: Product, as_of: date) -> PayoffQuote:
    if not product.early_payoff.allowed:
        raise CreditError(f"{product.name} does not allow early payoff", code="payoff_not_allowed")
    cutoff = billed_through(lines, as_of)
    billed = [x for x in lines if x.due_date <= cutoff]
    later = [x for x in lines if x.due_date > cutoff]
    principal = sum(x.unpaid(ChargeKind.PRINCIPAL) for x in lines)
    later_fee = sum(x.unpaid(ChargeKind.FEE) for x in later)
    fee_waived = later_fee if product.early_payoff.refund_unbilled_fee else 0
    early_principal = sum(x.unpaid(ChargeKind.PRINCIPAL) for x in later)
    return PayoffQuote(
        plan_id=plan_id,
        as_of=as_of,
        principal_fen=principal,
        fee_fen=sum(x.unpaid(ChargeKind.FEE) for x in billed) + later_fee - fee_waived,
        interest_fen=sum(x.unpaid(ChargeKind.INTEREST) for x in billed),
        penalty_fen=apply_bp(early_principal, product.early_payoff.penalty_bp),
        fee_waived_fen=fee_waived,
        interest_waived_fen=sum(x.unpaid(ChargeKind.INTEREST) for x in later),
    )


def _load(conn: Connection, credit_account_id: int, plan_id: int) -> tuple[Any, list[Line]]:
    # the account row first, as repayments, conversions and refunds take it, so the lines read
    # below are not changing under a concurrent repayment
    get_account(conn, credit_account_id, for_update=True)
    plan = (
        conn.execute(select(plans).where(plans.c.id == plan_id).with_for_update())
        .mappings()
        .first()
    )
    if plan is None or plan["credit_account_id"] != credit_account_id:
        raise NotFound(f"plan {plan_id} not found")
    if plan["status"] != "open":
        raise CreditError(f"plan {plan_id} is {plan['status']}", code="plan_not_open")
    rows = conn.execute(select(lines_t).where(lines_t.c.plan_id == plan_id)).mappings().all()
    return plan, [line_from_row(r) for r in rows]


def quote_payoff(
    conn: Connection, product: Product, credit_account_id: int, plan_id: int, as_of: date
) -> PayoffQuote:
    _, lines = _load(conn, credit_account_id, plan_id)
    return payoff_quote(plan_id, lines, product, as_of)


def pay_off(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    plan_id: int,
    amount_fen: int,
    client_id: str,
) -> PayoffQuote:
    """Pay a plan off. `amount_fen` must equal the quote (so a stale quote cannot slip by)."""
    plan, lines = _load(conn, credit_account_id, plan_id)
    q = payoff_quote(plan_id, lines, product, clock.today())
    if amount_fen != q.total_fen:
        raise CreditError(
            f"amount_fen: the payoff amount today is {q.total_fen}, not {amount_fen}",
            code="payoff_amount_mismatch",
            payoff_fen=q.total_fen,
        )
    cutoff = billed_through(lines, clock.today())
    currency = product.currency
    cash = platform_account(conn, clock, AccountCode.CASH_CLEARING, currency)

    def cust(code: AccountCode) -> int:
        return customer_account(conn, clock, credit_account_id, code, currency)

    postings = []
    receivable = {
        ChargeKind.PRINCIPAL: AccountCode.PRINCIPAL_RECEIVABLE,
        ChargeKind.FEE: AccountCode.FEE_RECEIVABLE,
        ChargeKind.INTEREST: AccountCode.INTEREST_RECEIVABLE,
    }
    unearned = {
        ChargeKind.FEE: AccountCode.UNEARNED_FEE_INCOME,
        ChargeKind.INTEREST: AccountCode.UNEARNED_INTEREST_INCOME,
    }
    for line in lines:
        later = line.due_date > cutoff
        paid: dict[str, Any] = {}
        for kind in KINDS:
            owed = line.unpaid(kind)
            waive = (
                owed
                if later
                and (
                    kind is ChargeKind.INTEREST
                    or (kind is ChargeKind.FEE and product.early_payoff.refund_unbilled_fee)
                )
                else 0
            )
            if waive:
                col = lines_t.c[column("waived", kind)]
                paid[col.name] = col + waive
                postings.extend(
                    leg(
                        platform_account(conn, clock, unearned[kind], currency),
                        cust(receivable[kind]),
                        waive,
                        f"payoff_waive_{kind.value}",
                    )
                )
            if owed - waive:
                col = lines_t.c[column("paid", kind)]
                paid[col.name] = col + (owed - waive)
                postings.extend(leg(cash, cust(receivable[kind]), owed - waive, kind.value))
        if paid:
            conn.execute(
                update(lines_t)
                .where(lines_t.c.plan_id == plan_id, lines_t.c.period == line.period)
                .values(paid)
            )
    postings.extend(
        leg(
            cash,
            platform_account(conn, clock, AccountCode.FEE_INCOME, currency),
            q.penalty_fen,
            "payoff_penalty",
        )
    )
    conn.execute(
        update(plans)
        .where(plans.c.id == plan_id)
        .values(
            fee_removed_fen=plans.c.fee_removed_fen + q.fee_waived_fen,
            interest_removed_fen=plans.c.interest_removed_fen + q.interest_waived_fen,
        )
    )
    post(
        conn,
        clock,
        f"payoff:{client_id}",
        currency,
        postings,
        f"early payoff of plan {plan_id}",
        "plan",
        str(plan_id),
    )
    close_paid_plans(conn, credit_account_id)
    funding.plan_paid_off(conn, clock, plan_id, q, client_id)  # after the posting: funders
    assert plan["id"] == plan_id
    return q
