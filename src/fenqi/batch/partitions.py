"""One partition of an end-of-day run: every step over an account-id range, in one transaction.

The control plane (`batch/eod.py`: runs, catch-up, one run at a time) plans the partitions;
an executor (`batch/executors.py`: in this process, or on Dask) runs each with `run_partition`.
Both import this module and not each other.

Locks (docs/architecture.md, lock order): a partition first locks its credit accounts' rows
(`FOR UPDATE`, in id order), the lock every online change to an account takes first, and only
then reads or writes anything of theirs; holds that expire are locked order, then account, then
hold, as a capture or void takes them. So the end of day and live traffic take turns per account
instead of deadlocking, and no step works on figures a call is changing. Should PostgreSQL still
report a deadlock or a serialization failure, the partition (all or nothing, and idempotent) is
rolled back and run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import DBAPIError

from fenqi.batch.sql import Partition
from fenqi.batch.steps import STEPS, RunFacts
from fenqi.context import Context
from fenqi.credit.accounts import lock_account_range
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.service import open_account
from fenqi.store.schema.batch import batch_steps
from fenqi.store.schema.credit import credit_accounts

log = logging.getLogger(__name__)

PLATFORM_CODES = (
    AccountCode.INTEREST_INCOME,
    AccountCode.PENALTY_INCOME,
    AccountCode.FEE_INCOME,
    AccountCode.UNEARNED_FEE_INCOME,
    AccountCode.UNEARNED_INTEREST_INCOME,
    AccountCode.CREDIT_LOSS_EXPENSE,
    AccountCode.LOSS_ALLOWANCE,
)
RETRYABLE = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock detected, serialization failure
ATTEMPTS_MAX = 5


@dataclass(frozen=True)
class RunPlan:
    run_id: int
    business_date: date
    partitions: tuple[Partition, ...]


def plan_partitions(max_id: int, size: int) -> tuple[Partition, ...]:
    if max_id <= 0:
        return (Partition(0, 1, 1),)
    return tuple(
        Partition(n, lo, min(lo + size - 1, max_id))
        for n, lo in enumerate(range(1, max_id + 1, size))
    )


def _facts(ctx: Context, conn: Connection, business_date: date, part: Partition) -> RunFacts:
    """What every step of one partition needs; only products that partition holds."""
    names = set(
        conn.execute(
            select(credit_accounts.c.product)
            .distinct()
            .where(credit_accounts.c.id.between(part.lo, part.hi))
        ).scalars()
    )
    products = {n: p for n, p in ctx.catalog.items() if n in names}
    platform = {
        (code, currency): open_account(
            conn, ctx.clock, code, OwnerKind.PLATFORM, "platform", currency
        )
        for currency in sorted({p.currency for p in products.values()})
        for code in PLATFORM_CODES
    }
    return RunFacts(
        business_date=business_date,
        now=ctx.clock.now(),
        clock=ctx.clock,
        products=products,
        cap_bp=ctx.settings.apr_cap_bp,
        charge_off_days=ctx.settings.charge_off_days,
        platform=platform,
    )


def run_partition(
    ctx: Context, plan: RunPlan, part: Partition, on_step: Callable[[str], None] | None = None
) -> None:
    """Every step for one partition in one transaction that also records each step, skipping
    steps already recorded (a partition that an older run left half done resumes at its first
    unrecorded step). A deadlock or serialization failure rolls the partition back and runs it
    again (up to ATTEMPTS_MAX times); `on_step` hears of each step once."""
    reported: set[str] = set()

    def heard(name: str) -> None:
        if on_step and name not in reported:
            reported.add(name)
            on_step(name)

    for attempt in range(1, ATTEMPTS_MAX + 1):
        try:
            _run_partition_once(ctx, plan, part, heard)
            return
        except DBAPIError as exc:
            if attempt == ATTEMPTS_MAX or getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
                raise
            log.warning(
                "end of day %s partition %s: %s; running it again (attempt %s)",
                plan.business_date,
                part.number,
                str(exc.orig).splitlines()[0],
                attempt + 1,
            )
            time.sleep(0.1 * attempt)


def _run_partition_once(
    ctx: Context, plan: RunPlan, part: Partition, on_step: Callable[[str], None]
) -> None:
    with ctx.engine.connect() as conn, _batch_pragmas(conn), conn.begin():
        # the partition's credit accounts first, in id order, before reading anything of theirs
        lock_account_range(conn, part.lo, part.hi)
        done = set(
            conn.execute(
                select(batch_steps.c.step).where(
                    batch_steps.c.run_id == plan.run_id, batch_steps.c.partition == part.number
                )
            ).scalars()
        )
        facts = _facts(ctx, conn, plan.business_date, part) if len(done) < len(STEPS) else None
        for name, step in STEPS:
            if name not in done:
                assert facts is not None
                rows, fen = step(conn, facts, part)
                conn.execute(
                    insert(batch_steps).values(
                        run_id=plan.run_id,
                        step=name,
                        partition=part.number,
                        rows=rows,
                        amount_fen=fen,
                        finished_at=ctx.clock.now(),
                    )
                )
                _maybe_die(ctx)
            on_step(name)


# SQLite settings of a partition's connection, put back when it is done:
# - wal_autocheckpoint: a commit leaves its pages in the write-ahead log, which is copied back into
#   the database (and synced) once it holds this many pages (256 MB of 4 KB pages) rather than
#   after every partition (SQLite's default is 1,000 pages), so the disk is synced a few times a
#   run instead of once a partition; the run's last commit (finish_run, on a connection with the
#   default) copies what is left;
# - temp_store: the partition's scratch tables (snapshot, charges, staged entries) and sorts stay
#   in memory (a few MB each) instead of a temporary file; putting it back drops them.
BATCH_PRAGMAS = {"wal_autocheckpoint": 65_536, "temp_store": 2}


@contextmanager
def _batch_pragmas(conn: Connection) -> Iterator[None]:
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection  # outside any transaction (a PRAGMA in one begins it)
    assert raw is not None
    before = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in BATCH_PRAGMAS}
    for name, value in BATCH_PRAGMAS.items():
        raw.execute(f"PRAGMA {name}={int(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name}={int(value)}")


_STEPS_DONE = [0]


def _maybe_die(ctx: Context) -> None:
    limit = ctx.settings.eod_kill_after_steps
    _STEPS_DONE[0] += 1
    if limit is not None and _STEPS_DONE[0] >= limit:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
