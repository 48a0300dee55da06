"""Step 1: expire the holds whose time ran out."""

from __future__ import annotations

from sqlalchemy import Connection

from fenqi.batch.sql import Partition
from fenqi.batch.steps.common import Result, RunFacts


def expire_holds(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Authorizations past their expiry release their hold (done once, in partition 0)."""
    if part.number != 0:
        return 0, 0
    from fenqi.credit.checkout import expire_orders

    return expire_orders(conn, run.clock), 0
