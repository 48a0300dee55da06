"""SQL building blocks shared by the end-of-day steps (both SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    cast,
    func,
    literal,
    or_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from fenqi.store.schema.credit import plan_lines as lines


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


def _open(kind: str) -> ColumnElement[bool]:
    return lines.c[f"paid_{kind}_fen"] + lines.c[f"waived_{kind}_fen"] < lines.c[f"{kind}_fen"]


# UNPAID > 0 as the lines' check constraint (no part paid or waived past its amount) lets it be
# written: stops at the first part still owed instead of summing all nine columns every time
OPEN_LINE = or_(_open("principal"), _open("fee"), _open("interest"))


class _Least(FunctionElement[int]):
    """The smaller of two whole numbers, each evaluated once (a CASE would evaluate the one it
    returns twice, and neither database eliminates the repetition). Both arguments are never
    NULL here, where SQLite's min() and PostgreSQL's LEAST() differ."""

    type = BigInteger()
    inherit_cache = True
    name = "least"


class _Greatest(FunctionElement[int]):
    """The larger of two whole numbers (as _Least)."""

    type = BigInteger()
    inherit_cache = True
    name = "greatest"


@compiles(_Least)
@compiles(_Greatest)
def _extreme(element: FunctionElement[int], compiler: Any, **kw: Any) -> str:
    name = element.name
    if compiler.dialect.name == "sqlite":
        name = "min" if name == "least" else "max"
    return f"{name}({compiler.process(element.clauses, **kw)})"


def smaller(a: ColumnElement[int] | int, b: ColumnElement[int] | int) -> ColumnElement[int]:
    return _Least(_whole(a), _whole(b))


def larger(a: ColumnElement[int] | int, b: ColumnElement[int] | int) -> ColumnElement[int]:
    return _Greatest(_whole(a), _whole(b))


def _whole(value: ColumnElement[int] | int) -> ColumnElement[int]:
    return literal(value, BigInteger) if isinstance(value, int) else value


def isum(value: ColumnElement[int]) -> ColumnElement[int]:
    """SUM as a whole number of fen on both databases (PostgreSQL sums BIGINT as NUMERIC,
    which would make a following division fractional and the stored value rounded)."""
    return cast(func.sum(value), BigInteger)


def non_negative(value: ColumnElement[int]) -> ColumnElement[int]:
    return _Greatest(value, literal(0))
