"""The end-of-day run for one business date, and the catch-up of missed dates.

Control plane here, data plane in steps/ (one module per step): the run is split into
account-id partitions; each partition runs every step in order in one transaction, which also
records each step in `batch_steps` (`batch/partitions.py`; an executor, `batch/executors.py`,
runs them: neither imports this module). A killed run resumes at the first partition not recorded
(a partition is all or nothing); a repeated date finds its run done and changes nothing.
Missed dates are run one by one in order before the date asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.engine import make_url

from fenqi.batch.executors import run_dask, run_local
from fenqi.batch.partitions import RunPlan, plan_partitions, run_partition
from fenqi.batch.steps import STEPS
from fenqi.clock import Clock
from fenqi.context import Context
from fenqi.errors import FenqiError
from fenqi.store.schema.batch import batch_runs, batch_steps
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.upsert import insert_ignore

MAX_CATCH_UP_DAYS = 366
__all__ = [
    "BatchError",
    "FutureDate",
    "RunInProgress",
    "RunPlan",
    "plan_partitions",
    "run_eod",
    "run_partition",
]


class BatchError(FenqiError):
    code = "batch_error"
    http_status = 409


class RunInProgress(BatchError):
    code = "batch_in_progress"


class FutureDate(BatchError):
    code = "batch_future_date"
    http_status = 422


def start_run(ctx: Context, business_date: date, executor: str) -> RunPlan | None:
    """The plan of the run for a date (created on first start); None if that date is done."""
    with ctx.engine.begin() as conn:
        max_id = int(
            conn.execute(select(func.coalesce(func.max(credit_accounts.c.id), 0))).scalar_one()
        )
        size = ctx.settings.eod_partition_size
        parts = plan_partitions(max_id, size)
        insert_ignore(
            conn,
            batch_runs,
            {
                "business_date": business_date,
                "status": "running",
                "executor": executor,
                "partitions": len(parts),
                "started_at": ctx.clock.now(),
                "figures": {"partition_size": size, "max_account_id": max_id},
            },
            ["business_date"],
        )
        run = (
            conn.execute(select(batch_runs).where(batch_runs.c.business_date == business_date))
            .mappings()
            .one()
        )
        if run["status"] == "done":
            return None
        # a resumed run keeps the partitions it started with
        figures = run["figures"]
        parts = plan_partitions(int(figures["max_account_id"]), int(figures["partition_size"]))
        return RunPlan(int(run["id"]), business_date, parts)


def finish_run(ctx: Context, plan: RunPlan) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        recorded = conn.execute(
            select(func.count()).where(batch_steps.c.run_id == plan.run_id)
        ).scalar_one()
        expected = len(plan.partitions) * len(STEPS)
        if recorded != expected:
            raise BatchError(f"run {plan.run_id} has {recorded} of {expected} steps recorded")
        figures = _figures(conn, plan.run_id)
        previous = conn.execute(
            select(batch_runs.c.figures).where(batch_runs.c.id == plan.run_id)
        ).scalar_one()
        conn.execute(
            update(batch_runs)
            .where(batch_runs.c.id == plan.run_id)
            .values(
                status="done", finished_at=ctx.clock.now(), figures={**previous, "steps": figures}
            )
        )
    return figures


def _figures(conn: Connection, run_id: int) -> dict[str, Any]:
    rows = conn.execute(
        select(batch_steps.c.step, func.sum(batch_steps.c.rows), func.sum(batch_steps.c.amount_fen))
        .where(batch_steps.c.run_id == run_id)
        .group_by(batch_steps.c.step)
    ).all()
    return {step: {"rows": int(r), "amount_fen": int(a)} for step, r, a in rows}


def dates_to_run(ctx: Context, business_date: date) -> list[date]:
    """The dates not yet done up to `business_date`, oldest first (catch-up)."""
    with ctx.engine.connect() as conn:
        last = conn.execute(
            select(func.max(batch_runs.c.business_date)).where(batch_runs.c.status == "done")
        ).scalar()
        pending = (
            conn.execute(select(batch_runs.c.business_date).where(batch_runs.c.status != "done"))
            .scalars()
            .all()
        )
    if isinstance(last, str):
        last = date.fromisoformat(last)
    start = business_date if last is None else last + timedelta(days=1)
    start = min([start, *[d if isinstance(d, date) else date.fromisoformat(d) for d in pending]])
    if business_date < start:
        return [] if last is not None and business_date <= last else [business_date]
    days = (business_date - start).days + 1
    if days > MAX_CATCH_UP_DAYS:
        raise BatchError(f"{days} dates to catch up; run from {start} in smaller steps first")
    return [start + timedelta(days=i) for i in range(days)]


def check_business_date(ctx: Context, business_date: date, allow_future: bool = False) -> None:
    """Refuse a date after today's business date (the operator's zone): the end of day of a
    date that has not come would bill, age and charge accounts early. Tests and simulations
    that move time on purpose say so (`allow_future`)."""
    today = ctx.clock.today()
    if business_date > today and not allow_future:
        raise FutureDate(
            f"--date {business_date} is after the business date {today} "
            f"(today in {ctx.settings.timezone}); end of day runs for dates that have come. "
            "To run it anyway on a test database, add --allow-future"
        )


def last_done(ctx: Context) -> date | None:
    """The latest business date whose run is done."""
    with ctx.engine.connect() as conn:
        last = conn.execute(
            select(func.max(batch_runs.c.business_date)).where(batch_runs.c.status == "done")
        ).scalar()
    return date.fromisoformat(last) if isinstance(last, str) else last


# PostgreSQL advisory lock of the end of day: (this key, a hash of the schema), so two schemas
# of one database (the tests' schemas, tenants) do not exclude each other.
EOD_LOCK_KEY = 0x0E0D
_LOCK = text("SELECT pg_try_advisory_lock(:k, hashtext(coalesce(current_schema(), '')))")
_UNLOCK = text("SELECT pg_advisory_unlock(:k, hashtext(coalesce(current_schema(), '')))")


@contextmanager
def exclusive_run(ctx: Context) -> Iterator[None]:
    """One end-of-day run at a time per database, refused at once (RunInProgress) when another
    process is running one. The lock is the database's own and dies with its holder, so a
    killed run leaves nothing to clear and is resumed by the next `fenqi eod`:
    - PostgreSQL: a session advisory lock on a connection held for the run (idle between);
    - SQLite: an exclusive transaction on a small side database beside the file
      (`<file>-eod.lock`), SQLite's file locking; a database in memory is one process's own."""
    engine = ctx.engine
    busy = RunInProgress(
        "an end-of-day run is in progress on this database (another process holds its lock); "
        "wait for it to finish, then run again: finished dates are skipped"
    )
    if engine.dialect.name == "postgresql":
        key = {"k": EOD_LOCK_KEY}
        with engine.connect() as conn:
            got = conn.execute(_LOCK, key).scalar_one()
            conn.commit()
            if not got:
                raise busy
            try:
                yield
            finally:
                conn.execute(_UNLOCK, key)
                conn.commit()
        return
    database = make_url(engine.url).database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import sqlite3

    lock = sqlite3.connect(f"{database}-eod.lock", timeout=0, isolation_level=None)
    try:
        try:
            lock.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise busy from exc
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
    finally:
        lock.close()


def run_eod(
    ctx: Context,
    business_date: date,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    clock_for: Callable[[date], Clock] | None = None,
) -> dict[str, Any]:
    """Run end of day for `business_date`, catching up missed dates first."""
    if executor not in ("local", "dask"):
        raise BatchError(f"executor: {executor!r} is not local or dask", http_status=422)
    results: dict[str, Any] = {}
    with exclusive_run(ctx):
        for day in dates_to_run(ctx, business_date):
            plan = start_run(ctx, day, executor)
            if plan is None:
                results[day.isoformat()] = {"status": "already done"}
                continue
            if executor == "dask":
                run_dask(ctx, plan, scheduler)
            else:
                run_local(ctx, plan, progress)
            results[day.isoformat()] = finish_run(ctx, plan)
    return results
