"""A small world for ledger tests: one customer with a limit, one merchant, the platform."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from fenqi.clock import Clock
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.service import open_account


@dataclass
class World:
    principal: int
    fee: int
    credit_balance: int
    merchant: int
    cash: int
    fee_income: int


def make_world(
    conn: Connection, clock: Clock, owner: str = "c1", limit_fen: int = 100_000
) -> World:
    def acct(code: AccountCode, kind: OwnerKind, oid: str, cap: int | None = None) -> int:
        return open_account(conn, clock, code, kind, oid, "CNY", cap)

    return World(
        principal=acct(AccountCode.PRINCIPAL_RECEIVABLE, OwnerKind.CUSTOMER, owner, limit_fen),
        fee=acct(AccountCode.FEE_RECEIVABLE, OwnerKind.CUSTOMER, owner),
        credit_balance=acct(AccountCode.CUSTOMER_CREDIT_BALANCE, OwnerKind.CUSTOMER, owner),
        merchant=acct(AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, "m1"),
        cash=acct(AccountCode.CASH_CLEARING, OwnerKind.PLATFORM, "platform"),
        fee_income=acct(AccountCode.FEE_INCOME, OwnerKind.PLATFORM, "platform"),
    )
