"""An account's figures as the shopper and the shop see them (limit, available, owed, next due)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection

from fenqi.credit.accounts import get_account
from fenqi.credit.owed import outstanding_lines
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import find_account
from fenqi.ledger.chart import AccountCode, OwnerKind


def account_summary(conn: Connection, credit_account_id: int, as_of: date) -> dict[str, Any]:
    account = get_account(conn, credit_account_id)
    principal = ledger.get_balance(conn, account["principal_account_id"])
    owed = outstanding_lines(conn, credit_account_id)
    owed_total = sum(sum(o.outstanding_fen.values()) for o in owed)
    upcoming = [o for o in owed if o.due_date >= as_of]
    next_due = min((o.due_date for o in upcoming), default=None)
    balance_id = find_account(
        conn,
        AccountCode.CUSTOMER_CREDIT_BALANCE,
        OwnerKind.CUSTOMER,
        str(credit_account_id),
        account["currency"],
    )
    credit_balance_fen = (
        0 if balance_id is None else -ledger.get_balance(conn, balance_id).net_debit_posted
    )
    return {
        "credit_account_id": credit_account_id,
        "product": account["product"],
        "status": account["status"],
        "currency": account["currency"],
        "limit_fen": account["limit_fen"],
        "available_fen": principal.available_fen,
        "held_fen": principal.debits_pending,
        "principal_owed_fen": principal.net_debit_posted,
        "owed_fen": owed_total,
        "overdue_fen": sum(sum(o.outstanding_fen.values()) for o in owed if o.due_date < as_of),
        "credit_balance_fen": credit_balance_fen,
        "next_due_date": next_due.isoformat() if next_due else None,
        "next_due_fen": sum(
            sum(o.outstanding_fen.values()) for o in upcoming if o.due_date == next_due
        ),
    }
