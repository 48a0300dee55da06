"""Recoveries: money paid on a charged-off account."""

from __future__ import annotations

from sqlalchemy import Connection

from fenqi.clock import Clock
from fenqi.credit.accounts import customer_account, platform_account
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.entry import PostingSpec


def recovery_postings(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    currency: str,
    cash: int,
    amount_fen: int,
) -> list[PostingSpec]:
    """A payment on a charged-off account recovers written-off receivables: the loss
    recognized at charge-off is taken back as recovery income."""
    if amount_fen == 0:
        return []
    written_off = customer_account(
        conn, clock, credit_account_id, AccountCode.WRITTEN_OFF_RECEIVABLE, currency
    )
    return [
        PostingSpec(cash, written_off, amount_fen, "recovery"),
        PostingSpec(
            platform_account(conn, clock, AccountCode.LOSS_ALLOWANCE, currency),
            platform_account(conn, clock, AccountCode.RECOVERY_INCOME, currency),
            amount_fen,
            "recovery",
        ),
    ]
