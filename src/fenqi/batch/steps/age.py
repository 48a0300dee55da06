"""Step 5: age arrears (days past due, buckets) from the snapshot."""

from __future__ import annotations

from sqlalchemy import Connection, exists, func, or_, select, update

from fenqi.batch.sql import Partition
from fenqi.batch.steps.common import Result, RunFacts
from fenqi.batch.steps.snapshot import snapshot, take_snapshot
from fenqi.store.schema.credit import credit_accounts as ca


def age(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """The due date of each account's oldest amount due, unpaid and not revolving, from which
    its days past due and bucket follow. Only accounts where that date moves are written: one
    that stays late is not rewritten every day."""
    take_snapshot(conn, run, part)
    s = snapshot.c
    conn.execute(
        update(ca)
        .where(
            ca.c.id == s.account_id,
            s.past_due_since.is_not(None),
            or_(ca.c.past_due_since.is_(None), ca.c.past_due_since != s.past_due_since),
        )
        .values(past_due_since=s.past_due_since)
    )
    conn.execute(
        update(ca)
        .where(
            ca.c.id.between(part.lo, part.hi),
            ca.c.past_due_since.is_not(None),
            ~exists().where(s.account_id == ca.c.id, s.past_due_since.is_not(None)),
        )
        .values(past_due_since=None)
    )
    late = conn.execute(
        select(func.count()).select_from(snapshot).where(s.past_due_since.is_not(None))
    ).scalar_one()
    return int(late), 0
