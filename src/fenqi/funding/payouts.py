"""Paying partners, partners paying their disbursements, and monthly partner statements.

Recorded like merchant payouts (credit/checkout.py `pay_out`): the funder's ledger account is
locked (its balance row, SELECT ... FOR UPDATE) before it is read, so concurrent payouts take
turns: the first pays what is owed, the next finds nothing left and is refused with
`nothing_to_pay`. A payout never takes the account below zero (the ledger refuses it too).

- `pay_funder`: Dr funder_cash_due / Cr cash_clearing, the whole cash due to the funder.
- `receive_from_funder`: Dr cash_clearing / Cr funder_settlement, what the funder owes for its
  part of the disbursements (its settlement account's debit balance).
- `monthly_statement`: the month's daily settlement figures, payouts and receipts, and the
  funder's principal and cash due at the start and end of the month, from the ledger.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select

from fenqi.clock import Clock
from fenqi.errors import FenqiError
from fenqi.funding.model import FundingCatalog
from fenqi.funding.service import PLATFORM, funder_accounts
from fenqi.ledger.accounts import get_balance, open_account
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.entry import EntryRequest, PostingSpec
from fenqi.ledger.service import post_entry
from fenqi.store.schema.funding import funding_settlements as set_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_balances
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst

PAYOUT = "funder_payout"
RECEIPT = "funder_receipt"

_LOCK = (
    select(ledger_balances.c.account_id)
    .where(ledger_balances.c.account_id == bindparam("k_id"))
    .with_for_update()
)


class FunderPaymentError(FenqiError):
    code = "nothing_to_pay"
    http_status = 409


def _known(catalog: FundingCatalog, funder_id: str) -> str:
    funder = catalog.funders.get(funder_id)
    if funder is None:
        raise FenqiError(
            f"funder: no such funder {funder_id!r}", code="unknown_funder", http_status=404
        )
    return funder.currency


def _move(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    funder_id: str,
    client_id: str,
    code: AccountCode,
    posting: str,
) -> tuple[int, int | None]:
    currency = _known(catalog, funder_id)
    account = funder_accounts(conn, clock, funder_id, currency)[code]
    conn.execute(_LOCK, {"k_id": account})
    bal = get_balance(conn, account)
    if code is AccountCode.FUNDER_CASH_DUE:
        owed = bal.credits_posted - bal.debits_posted
    else:
        owed = bal.debits_posted - bal.credits_posted
    if owed <= 0:
        what = "owed to" if code is AccountCode.FUNDER_CASH_DUE else "owed by"
        raise FunderPaymentError(f"nothing {what} {funder_id}", funder=funder_id)
    cash = open_account(
        conn, clock, AccountCode.CASH_CLEARING, OwnerKind.PLATFORM, PLATFORM, currency
    )
    debit, credit = (account, cash) if code is AccountCode.FUNDER_CASH_DUE else (cash, account)
    result = post_entry(
        conn,
        clock,
        EntryRequest(
            f"funding:{posting}:{client_id}"[:128],
            currency,
            (PostingSpec(debit, credit, owed, posting),),
            description=f"{posting.replace('_', ' ')} {funder_id}",
            ref_kind="funder",
            ref_id=funder_id,
        ),
    )
    if not result.ok:
        raise FenqiError(
            f"the ledger refused the {posting}: {result.reject_code}", code="funding_ledger_refused"
        )
    return owed, result.entry_id


def pay_funder(
    conn: Connection, clock: Clock, catalog: FundingCatalog, funder_id: str, client_id: str
) -> dict[str, Any]:
    """Pay the funder all the cash due to it (principal collected for it, its income, ...)."""
    paid, entry = _move(
        conn, clock, catalog, funder_id, client_id, AccountCode.FUNDER_CASH_DUE, PAYOUT
    )
    return {"funder": funder_id, "paid_fen": paid, "entry_id": entry}


def receive_from_funder(
    conn: Connection, clock: Clock, catalog: FundingCatalog, funder_id: str, client_id: str
) -> dict[str, Any]:
    """Record the funder paying its part of the disbursements (its settlement balance)."""
    got, entry = _move(
        conn, clock, catalog, funder_id, client_id, AccountCode.FUNDER_SETTLEMENT, RECEIPT
    )
    return {"funder": funder_id, "received_fen": got, "entry_id": entry}


def _balance_on(conn: Connection, funder_id: str, code: AccountCode, day: date) -> int:
    """Credits less debits on the funder's account from entries up to `day`."""
    total = 0
    for side, sign in ((pst.c.credit_account_id, 1), (pst.c.debit_account_id, -1)):
        amount = conn.execute(
            select(func.coalesce(func.sum(pst.c.amount_fen), 0))
            .select_from(pst.join(ent, ent.c.id == pst.c.entry_id).join(acc, acc.c.id == side))
            .where(
                acc.c.owner_kind == OwnerKind.FUNDER.value,
                acc.c.owner_id == funder_id,
                acc.c.code == code.value,
                ent.c.business_date <= day,
                pst.c.phase == "posted",
            )
        ).scalar_one()
        total += sign * int(amount)
    return total


def month_bounds(month: str) -> tuple[date, date]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        first = date(year, mon, 1)
    except ValueError:
        raise FenqiError(
            f"month: {month!r} is not a month like 2026-01", code="invalid_month", field="month"
        ) from None
    return first, date(year, mon, monthrange(year, mon)[1])


def monthly_statement(
    conn: Connection, catalog: FundingCatalog, funder_id: str, month: str
) -> dict[str, Any]:
    """A funder's statement for a month (YYYY-MM): opening and closing principal and cash due
    (from the ledger), the month's settlement figures day by day and in total (from the daily
    settlement rows), and what was paid each way."""
    currency = _known(catalog, funder_id)
    first, last = month_bounds(month)
    before = date.fromordinal(first.toordinal() - 1)
    cols = [
        "disbursed_fen",
        "principal_collected_fen",
        "income_collected_fen",
        "losses_fen",
        "recoveries_fen",
        "due_to_funder_fen",
    ]
    days = [
        {"date": r.business_date.isoformat(), **{c: int(getattr(r, c)) for c in cols}}
        for r in conn.execute(
            select(set_t)
            .where(
                set_t.c.funder_id == funder_id,
                set_t.c.business_date.between(first, last),
            )
            .order_by(set_t.c.business_date)
        ).all()
    ]
    paid = dict(
        conn.execute(
            select(pst.c.code, func.sum(pst.c.amount_fen))
            .select_from(pst.join(ent, ent.c.id == pst.c.entry_id))
            .where(
                ent.c.ref_kind == "funder",
                ent.c.ref_id == funder_id,
                pst.c.code.in_([PAYOUT, RECEIPT]),
                and_(ent.c.business_date >= first, ent.c.business_date <= last),
            )
            .group_by(pst.c.code)
        ).all()
    )
    return {
        "funder": funder_id,
        "currency": currency,
        "month": month,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "opening_principal_fen": _balance_on(conn, funder_id, AccountCode.FUNDER_PRINCIPAL, before),
        "closing_principal_fen": _balance_on(conn, funder_id, AccountCode.FUNDER_PRINCIPAL, last),
        "opening_cash_due_fen": _balance_on(conn, funder_id, AccountCode.FUNDER_CASH_DUE, before),
        "closing_cash_due_fen": _balance_on(conn, funder_id, AccountCode.FUNDER_CASH_DUE, last),
        "days": days,
        "totals": {c: sum(d[c] for d in days) for c in cols},
        "paid_to_funder_fen": int(paid.get(PAYOUT, 0)),
        "received_from_funder_fen": int(paid.get(RECEIPT, 0)),
    }
