"""End-of-day step: credit balances pay what is due (issue 24 item 8).

Runs before revolve, accrue, bill and age, so that money the shopper already has with fenqi
counts toward the minimum payment, stops penalties, is on the statement cut today and keeps the
account current. The accounts are found with one set-based query per product (a positive credit
balance and a line due by the product's credit horizon); each found account is then paid from
its balance through the repayment rules (`fenqi.credit.credit_balance.apply_credit_balance`):
few accounts have a credit balance, so this is a handful of rows a night, not a scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from fenqi.batch.sql import Partition
from fenqi.credit.credit_balance import (
    accounts_with_credit_due,
    apply_credit_balance,
    credit_horizon,
)

if TYPE_CHECKING:
    from fenqi.batch.steps.common import RunFacts


def apply_credit(conn: Connection, run: RunFacts, part: Partition) -> tuple[int, int]:
    day = run.business_date
    horizons = {name: credit_horizon(p, day) for name, p in run.products.items()}
    found = accounts_with_credit_due(conn, part.lo, part.hi, horizons)
    total = 0
    for account_id, product in found:
        total += apply_credit_balance(
            conn,
            run.clock,
            run.products[product],
            account_id,
            day,
            f"eod:{day}:credit:{account_id}",
        )
    return len(found), total
