"""A shopper's credit balance: how much a repayment may add to it, how it is used, and how it
is paid back (issue 24 item 8).

- **Cap.** A repayment may exceed everything the account owes (due or not) by at most the
  product's `repayment.overpayment_max_fen` (default 0: nothing beyond what is owed). A larger
  payment is refused whole with `overpayment_too_large`, nothing changed.
- **Use.** Money in the credit balance pays what falls due: the end of day, before it revolves,
  accrues penalties, cuts statements and ages arrears, applies each account's credit balance to
  its accrued charges and to the lines billed or due (up to the due date of the latest statement
  cut, statement day included, on a revolving product; up to today on the others), through the
  product's allocation order, exactly like a repayment (Dr customer credit balance, Cr the
  receivables). It is recorded as a repayment with the note `credit_balance`, so arrears, reports
  and a reversal see it like any payment; a reversal gives the credit balance back.
- **Pay back.** On request the balance (or part of it) is paid out to the shopper: Dr customer
  credit balance, Cr cash. The ledger refuses to take the balance below zero, so two requests at
  once cannot both pay the same money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, String, and_, cast, exists, select

from fenqi.clock import Clock
from fenqi.credit.accounts import customer_account, get_account, platform_account
from fenqi.credit.allocation import Owed, allocate_payment
from fenqi.credit.errors import CreditError
from fenqi.credit.owed import (
    RECEIVABLE,
    allocation_parts,
    close_paid_plans,
    outstanding_lines,
    pay_allocation,
)
from fenqi.credit.posting import leg, post
from fenqi.credit.repayments import INSERT_REPAYMENT, REPAYMENT_BY_CLIENT_ID
from fenqi.funding import wiring as funding
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import find_account
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.pricing.due_dates import add_months, roll, statement_due_date
from fenqi.products.model import ChargeKind, Product, ProductKind
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.credit import repayment_parts
from fenqi.store.schema.ledger import ledger_accounts, ledger_balances

NOTE = "credit_balance"


# ---------------------------------------------------------------- pure rules


def check_overpayment(product: Product, amount_fen: int, overpayment_fen: int) -> None:
    """Refuse a repayment whose excess over everything owed passes the product's cap."""
    cap = product.repayment.overpayment_max_fen
    if overpayment_fen > cap:
        owed = amount_fen - overpayment_fen
        raise CreditError(
            f"amount_fen: {amount_fen} is {overpayment_fen} more than the {owed} owed; "
            f"{product.name} accepts at most {cap} more",
            code="overpayment_too_large",
            field="amount_fen",
            owed_fen=owed,
            overpayment_max_fen=cap,
        )


def credit_horizon(product: Product, today: date) -> date:
    """The latest due date a credit balance pays on `today`: on a revolving product the due
    date of the latest statement cut (today's on a statement day), elsewhere today."""
    if product.kind is not ProductKind.REVOLVING:
        return today
    day = product.billing.statement_day
    assert day is not None
    statement = today.replace(day=day) if today.day >= day else add_months(today, -1, day)
    return max(today, roll(product, statement_due_date(product, statement)))


# ---------------------------------------------------------------- reads


def credit_balance_of(conn: Connection, credit_account_id: int, currency: str) -> int:
    """The account's credit balance (what fenqi owes the shopper), 0 if it never had one."""
    found = find_account(
        conn,
        AccountCode.CUSTOMER_CREDIT_BALANCE,
        OwnerKind.CUSTOMER,
        str(credit_account_id),
        currency,
    )
    return 0 if found is None else -ledger.get_balance(conn, found).net_debit_posted


# ---------------------------------------------------------------- use


def apply_credit_balance(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    as_of: date,
    client_id: str,
) -> int:
    """Pay what is due by the credit horizon from the account's credit balance; returns the
    amount applied (0 when there is no balance or nothing due). Idempotent by `client_id`."""
    if REPAYMENT_BY_CLIENT_ID.run(conn, {"k_client_id": client_id}).mapping():
        return 0
    account = get_account(conn, credit_account_id, for_update=True)
    if account["charged_off_on"] is not None or account["status"] == "closed":
        return 0
    currency = account["currency"]
    balance = credit_balance_of(conn, credit_account_id, currency)
    if balance <= 0:
        return 0
    horizon = credit_horizon(product, as_of)
    owed: list[Owed] = [
        o for o in outstanding_lines(conn, credit_account_id) if o.due_date <= horizon
    ]
    amount = min(balance, sum(sum(o.outstanding_fen.values()) for o in owed))
    if amount <= 0:
        return 0
    allocation = allocate_payment(amount, owed, product.allocation_order, as_of)
    assert allocation.overpayment_fen == 0
    pay_allocation(conn, credit_account_id, allocation)
    source = customer_account(
        conn, clock, credit_account_id, AccountCode.CUSTOMER_CREDIT_BALANCE, currency
    )
    postings = []
    for kind, part in allocation.by_kind_fen.items():
        receivable = customer_account(conn, clock, credit_account_id, RECEIVABLE[kind], currency)
        postings.extend(leg(source, receivable, part, kind.value))
    entry_id = post(
        conn,
        clock,
        f"credit-applied:{client_id}",
        currency,
        postings,
        "credit balance applied to what is due",
        "credit_account",
        str(credit_account_id),
    )
    assert entry_id is not None
    close_paid_plans(conn, credit_account_id)
    funding.lines_paid(  # after the posting; dated as the repayment row is (as_of)
        conn, funding.OnDay(clock, as_of), allocation.parts, f"credit-applied:{client_id}", account
    )
    by_kind = allocation.by_kind_fen
    stored = INSERT_REPAYMENT.run(
        conn,
        {
            "credit_account_id": credit_account_id,
            "client_id": client_id,
            "amount_fen": amount,
            "to_principal_fen": by_kind[ChargeKind.PRINCIPAL],
            "to_fee_fen": by_kind[ChargeKind.FEE],
            "to_interest_fen": by_kind[ChargeKind.INTEREST],
            "to_penalty_fen": by_kind[ChargeKind.PENALTY],
            "to_credit_balance_fen": 0,
            "ledger_entry_id": entry_id,
            "business_date": as_of,
            "created_at": clock.now(),
            "note": NOTE,
        },
    ).mapping()
    assert stored is not None
    parts = allocation_parts(stored["id"], allocation)
    conn.execute(repayment_parts.insert(), parts)
    return amount


def accounts_with_credit_due(
    conn: Connection, lo: int, hi: int, horizon_of: dict[str, date]
) -> list[tuple[int, str]]:
    """(account id, product) of the accounts in lo..hi, not charged off, whose credit balance
    is positive and that owe a line due by their product's horizon: one set-based query."""
    la, lb = ledger_accounts.c, ledger_balances.c
    out: list[tuple[int, str]] = []
    for product, horizon in sorted(horizon_of.items()):
        due = exists().where(
            lines.c.credit_account_id == ca.c.id,
            lines.c.due_date <= horizon,
            lines.c.principal_fen
            + lines.c.fee_fen
            + lines.c.interest_fen
            - lines.c.paid_principal_fen
            - lines.c.paid_fee_fen
            - lines.c.paid_interest_fen
            - lines.c.waived_principal_fen
            - lines.c.waived_fee_fen
            - lines.c.waived_interest_fen
            > 0,
        )
        rows = conn.execute(
            select(ca.c.id)
            .join(
                ledger_accounts,
                and_(
                    la.code == AccountCode.CUSTOMER_CREDIT_BALANCE.value,
                    la.owner_kind == OwnerKind.CUSTOMER.value,
                    la.owner_id == cast(ca.c.id, String),
                    la.currency == ca.c.currency,
                ),
            )
            .join(ledger_balances, lb.account_id == la.id)
            .where(
                ca.c.id.between(lo, hi),
                ca.c.product == product,
                ca.c.charged_off_on.is_(None),
                lb.credits_posted - lb.debits_posted > 0,
                due,
            )
            .order_by(ca.c.id)
        ).scalars()
        out.extend((int(i), product) for i in rows)
    return out


# ---------------------------------------------------------------- pay back


@dataclass(frozen=True, slots=True)
class CreditPayout:
    amount_fen: int
    credit_balance_fen: int  # what is left
    entry_id: int


def pay_back_credit_balance(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    amount_fen: int | None,
    client_id: str,
) -> CreditPayout:
    """Pay the shopper their credit balance (all of it, or `amount_fen` of it): Dr customer
    credit balance, Cr cash. The ledger's balance rule refuses to go below zero."""
    account = get_account(conn, credit_account_id, for_update=True)
    currency = account["currency"]
    balance = credit_balance_of(conn, credit_account_id, currency)
    amount = balance if amount_fen is None else amount_fen
    if amount <= 0 or amount > balance:
        raise CreditError(
            f"amount_fen: {amount} is not within the credit balance of {balance}"
            if amount_fen is not None
            else "there is no credit balance to pay back",
            code="no_credit_balance" if balance <= 0 else "exceeds_credit_balance",
            field="amount_fen",
            credit_balance_fen=balance,
        )
    source = customer_account(
        conn, clock, credit_account_id, AccountCode.CUSTOMER_CREDIT_BALANCE, currency
    )
    cash = platform_account(conn, clock, AccountCode.CASH_CLEARING, currency)
    entry_id = post(
        conn,
        clock,
        f"credit-payout:{client_id}",
        currency,
        leg(source, cash, amount, "credit_balance_paid_out"),
        "credit balance paid back to the shopper",
        "credit_account",
        str(credit_account_id),
    )
    assert entry_id is not None
    return CreditPayout(amount, balance - amount, entry_id)
