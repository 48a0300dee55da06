"""SQL building blocks shared by the end-of-day steps (both SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.ledger import ledger_accounts


@dataclass(frozen=True, slots=True)
class Partition:
    """Credit accounts with lo <= id <= hi."""

    number: int
    lo: int
    hi: int


def unpaid(kind: str) -> ColumnElement[int]:
    return lines.c[f"{kind}_fen"] - lines.c[f"paid_{kind}_fen"] - lines.c[f"waived_{kind}_fen"]


UNPAID_PRINCIPAL = unpaid("principal")
UNPAID_FEE = unpaid("fee")
UNPAID_INTEREST = unpaid("interest")
UNPAID = UNPAID_PRINCIPAL + UNPAID_FEE + UNPAID_INTEREST


def days_between(
    conn: Connection, later: date, earlier: KeyedColumnElement[date] | ColumnElement[date]
) -> ColumnElement[int]:
    if conn.dialect.name == "sqlite":
        return cast(func.julianday(literal(later.isoformat())) - func.julianday(earlier), Integer)
    return cast(literal(later) - earlier, Integer)


def smaller(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    return case((a < b, a), else_=b)


def isum(value: ColumnElement[int]) -> ColumnElement[int]:
    """SUM as a whole number of fen on both databases (PostgreSQL sums BIGINT as NUMERIC,
    which would make a following division fractional and the stored value rounded)."""
    return cast(func.sum(value), BigInteger)


def non_negative(value: ColumnElement[int]) -> ColumnElement[int]:
    return case((value < 0, 0), else_=value)


def customer_ledger(code: str, name: str) -> FromClause:
    """An alias of ledger_accounts for a customer account code, to join on credit_accounts."""
    return ledger_accounts.alias(name)


def customer_join(
    alias: FromClause, code: str, account_id: ColumnElement[int]
) -> ColumnElement[bool]:
    return and_(
        alias.c.owner_kind == "customer",
        alias.c.owner_id == cast(account_id, String),
        alias.c.code == code,
    )


def in_partition(part: Partition) -> ColumnElement[bool]:
    return ca.c.id.between(part.lo, part.hi)
