"""The end-of-day steps, each a few set-based statements over one account partition.

Order (fixed): expire holds, decide revolving on today's due dates, accrue today's interest and
penalties, bill (earn fees and cut statements), age arrears, charge off, then the funders'
settlement (the day's charge-offs split among funders, their figures: funding/eod.py). Each
step is a function of (connection, run facts, partition) that returns (rows, amount_fen) for
the run's figures. Rules that vary by product are read from the product files, never branched
on names.

Accrue, bill and age read the partition's plan lines through one snapshot: a single pass over
the lines that matter today (due by today, or by the statement's due date on a statement day,
and not fully paid) that leaves one row per account in a temporary table, with everything the
three steps aggregate (revolving principal, penalty base, statement sums, the due date of the
oldest amount overdue). The snapshot is taken after revolve, once per partition and
connection, and is rebuilt whenever a step finds none for its partition (a resumed run), so
every step reads the same figures as if it had scanned the lines itself: the steps that run
after it change no column it holds.
"""

from __future__ import annotations

from sqlalchemy import Connection

from fenqi.batch.sql import Partition
from fenqi.batch.steps.accrue import accrue
from fenqi.batch.steps.age import age
from fenqi.batch.steps.bill import bill
from fenqi.batch.steps.charge_off import charge_off
from fenqi.batch.steps.common import Result, RunFacts
from fenqi.batch.steps.expire_holds import expire_holds
from fenqi.batch.steps.revolve import revolve
from fenqi.batch.steps.snapshot import take_snapshot
from fenqi.funding.eod import settle_partition as settle_funding


def _apply_credit(conn: Connection, run: RunFacts, part: Partition) -> Result:
    from fenqi.batch.credit_step import apply_credit

    return apply_credit(conn, run, part)


STEPS = (
    ("expire_holds", expire_holds),
    ("apply_credit", _apply_credit),  # credit balances pay what is due (batch/credit_step.py)
    ("revolve", revolve),
    ("accrue", accrue),
    ("bill", bill),
    ("age", age),
    ("charge_off", charge_off),
    (
        "funding_settle",
        settle_funding,
    ),  # day's losses into funding, funders' figures (funding/eod.py)
)

__all__ = [
    "STEPS",
    "Result",
    "RunFacts",
    "accrue",
    "age",
    "bill",
    "charge_off",
    "expire_holds",
    "revolve",
    "take_snapshot",
]
