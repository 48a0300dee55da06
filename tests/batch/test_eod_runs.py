"""The end-of-day run as a run: idempotent, restartable after a kill, catching up missed
dates, the same on a Dask cluster; and random lives keep the books exact (both databases)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from fenqi.batch.eod import run_eod
from fenqi.batch.steps import STEPS
from fenqi.ledger.service import trial_balance
from fenqi.products.model import RepaymentRule
from fenqi.store.schema.batch import accruals, batch_runs, batch_steps, statements
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.ledger import ledger_entries
from support.billing_world import World

START = date(2026, 1, 2)


def populate(world: World, accounts: int, seed: int) -> list[int]:
    """A mixed book: cycle purchases and installments, some paid, some partly, some not."""
    rng = random.Random(seed)
    ids = [world.open(customer=f"c{i}") for i in range(accounts)]
    for acct in ids:
        for _ in range(rng.randint(1, 3)):
            world.buy(acct, rng.randint(5, 400) * 100, rng.choice([0, 0, 3, 6, 12]))
    world.go_to(date(2026, 2, 10))
    for acct in ids:
        owed = world.summary(acct)["next_due_fen"]
        share = rng.choice([0, 0.1, 0.5, 1.0, 1.0])
        if owed and share:
            world.pay(acct, max(1, int(owed * share)))
    return ids


def state(engine: Engine) -> dict[str, Any]:
    """What an end-of-day run decides, without ids or timestamps."""
    with engine.connect() as conn:
        tb = trial_balance(conn)
        return {
            "tb": [(r["code"], r["debits_posted"], r["credits_posted"]) for r in tb.rows],
            "accruals": sorted(
                conn.execute(
                    select(
                        accruals.c.credit_account_id,
                        accruals.c.kind,
                        accruals.c.accrued_fen,
                        accruals.c.accrued_through,
                    )
                ).all()
            ),
            "statements": sorted(
                conn.execute(
                    select(
                        statements.c.credit_account_id,
                        statements.c.statement_date,
                        statements.c.total_fen,
                        statements.c.minimum_fen,
                    )
                ).all()
            ),
            "arrears": sorted(
                conn.execute(
                    select(
                        credit_accounts.c.id,
                        credit_accounts.c.past_due_since,
                        credit_accounts.c.charged_off_on,
                    )
                ).all()
            ),
            "entries": conn.execute(select(func.count()).select_from(ledger_entries)).scalar(),
        }


def test_running_a_date_twice_changes_nothing(db_url: str) -> None:
    world = World(db_url, START)
    populate(world, 12, seed=1)
    world.go_to(date(2026, 3, 12))
    before = state(world.ctx.engine)
    again = run_eod(world.ctx, date(2026, 3, 11))
    assert again == {}  # that date is done: nothing to run
    with world.ctx.engine.begin() as conn:
        conn.execute(
            batch_runs.update()
            .where(batch_runs.c.business_date == date(2026, 3, 11))
            .values(status="running")
        )  # as if the run had not been marked done
    run_eod(world.ctx, date(2026, 3, 11))
    assert state(world.ctx.engine) == before
    world.books_balance()
    world.close()


def test_missed_dates_are_caught_up_in_order(db_url: str) -> None:
    world = World(db_url, START)
    populate(world, 4, seed=2)
    world.go_to(date(2026, 2, 12))
    results = run_eod(world.ctx, date(2026, 2, 16))
    assert list(results) == ["2026-02-12", "2026-02-13", "2026-02-14", "2026-02-15", "2026-02-16"]
    with world.ctx.engine.connect() as conn:
        done = conn.execute(
            select(func.count()).select_from(batch_runs).where(batch_runs.c.status == "done")
        ).scalar_one()
    assert done == (date(2026, 2, 16) - START).days + 1
    world.close()


def test_dask_executor_gives_the_same_result(tmp_path: Path) -> None:
    local = World(f"sqlite:///{tmp_path / 'local.sqlite'}", START)
    dask = World(f"sqlite:///{tmp_path / 'dask.sqlite'}", START)
    for w in (local, dask):
        w.ctx.settings.eod_partition_size = 3
        populate(w, 10, seed=3)
        w.go_to(date(2026, 2, 20))
    for w, executor in ((local, "local"), (dask, "dask")):
        w.clock.set(w.clock.now() + timedelta(hours=13))
        run_eod(w.ctx, date(2026, 2, 20), executor=executor)
    assert state(local.ctx.engine) == state(dask.ctx.engine)
    with dask.ctx.engine.connect() as conn:
        run = (
            conn.execute(select(batch_runs).where(batch_runs.c.business_date == date(2026, 2, 20)))
            .mappings()
            .one()
        )
    assert run["executor"] == "dask" and run["partitions"] == 4
    dask.books_balance()
    local.close()
    dask.close()


def test_killed_run_resumes_to_the_same_result(db_url: str, tmp_path: Path) -> None:
    """A real `fenqi eod` process is killed half way; the rerun ends where an uninterrupted
    run ends (compared with a reference run on its own SQLite file)."""
    reference = World(f"sqlite:///{tmp_path / 'reference.sqlite'}", START)
    world = World(db_url, START)
    for w in (reference, world):
        populate(w, 40, seed=4)
        w.go_to(date(2026, 3, 1))
    run_eod(reference.ctx, date(2026, 3, 1))
    env = {
        **os.environ,
        "FENQI_DATABASE_URL": db_url,
        "FENQI_EOD_PARTITION_SIZE": "1",
        "FENQI_EOD_KILL_AFTER_STEPS": "100",
    }  # of 40 partitions × 8 steps = 320: killed inside partition 13 (steps 97 to 104)
    proc = subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "eod", "--date", "2026-03-01", "--json"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with world.ctx.engine.connect() as conn:
        recorded = conn.execute(
            select(func.count())
            .select_from(batch_steps)
            .join(batch_runs, batch_runs.c.id == batch_steps.c.run_id)
            .where(batch_runs.c.business_date == date(2026, 3, 1))
        ).scalar_one()
    # a partition is one transaction: the 12 done, not the 13th
    assert recorded == (100 // len(STEPS)) * len(STEPS) == 96
    with world.ctx.engine.connect() as conn:
        status = conn.execute(
            select(batch_runs.c.status).where(batch_runs.c.business_date == date(2026, 3, 1))
        ).scalar_one()
    assert status == "running"
    world.ctx.settings.eod_partition_size = 1
    run_eod(world.ctx, date(2026, 3, 1))
    assert state(world.ctx.engine)["tb"] == state(reference.ctx.engine)["tb"]
    for key in ("accruals", "statements", "arrears"):
        assert state(world.ctx.engine)[key] == state(reference.ctx.engine)[key], key
    world.books_balance()
    reference.close()
    world.close()


action = st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 2000), st.sampled_from([0, 3, 6, 12])),
    st.tuples(st.just("pay"), st.integers(1, 300_000)),
    st.tuples(st.just("refund"), st.integers(1, 100)),
    st.tuples(st.just("days"), st.integers(1, 40)),
)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=st.lists(action, min_size=1, max_size=12))
def test_random_lives_keep_the_books_exact(
    tmp_path_factory: Any, actions: list[tuple[Any, ...]]
) -> None:
    from fenqi.credit.refunds import refund_plan

    path = tmp_path_factory.mktemp("life") / "life.sqlite"
    world = World(f"sqlite:///{path}", START)
    # random payments may exceed what is owed: a product that keeps any excess as a credit
    # balance (which the end of day then applies to what falls due)
    world.product = world.product.model_copy(
        update={"repayment": RepaymentRule(overpayment_max_fen=10**9)}
    )
    acct = world.open()
    plans: list[int] = []
    day = START
    for step, (kind, *args) in enumerate(actions):
        if kind == "buy" and world.summary(acct)["available_fen"] >= args[0] * 100:
            plans.append(world.buy(acct, args[0] * 100, args[1]))
        elif kind == "pay":
            world.pay(acct, args[0])
        elif kind == "refund" and plans:
            plan = plans[args[0] % len(plans)]
            from fenqi.store.schema.credit import installment_plans

            with world.ctx.engine.begin() as conn:
                left = conn.execute(
                    select(
                        installment_plans.c.principal_fen - installment_plans.c.refunded_fen
                    ).where(installment_plans.c.id == plan)
                ).scalar_one()
                if left > 0:
                    refund_plan(
                        conn,
                        world.clock,
                        world.product,
                        plan,
                        "m1",
                        max(1, left * args[0] // 100),
                        f"refund-{step}",  # one id per refund: the same id is a replay
                    )
        elif kind == "days":
            day += timedelta(days=args[0])
            world.go_to(day)
            with world.ctx.engine.connect() as conn:
                through = conn.execute(select(func.max(accruals.c.accrued_through))).scalar()
            assert through is None or str(through) <= str(day - timedelta(days=1))
        world.books_balance()
        world.receivables_equal_owed(acct)
    before = state(world.ctx.engine)
    with world.ctx.engine.begin() as conn:  # replaying the last day charges nothing twice
        conn.execute(batch_runs.delete().where(batch_runs.c.status == "never"))
    if world.last_eod is not None:
        run_eod(world.ctx, world.last_eod)
        assert state(world.ctx.engine) == before
    world.close()
