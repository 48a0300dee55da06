"""Parallel simulation on PostgreSQL: worker processes over shopper partitions, one ledger.

Shopper i belongs to worker i mod n. Each worker runs the services for its shoppers on its own
connection, one call per transaction (short locks; a deadlock on a shared ledger row is retried);
the coordinator opens the shops first and runs each day's end of day once, between two
barriers, after every worker has finished the day. The draws are made for the whole population
in every worker, so the workers together make the same marketplace as one process would (the
order of database ids differs). SQLite has one writer, so this needs PostgreSQL; separate SQLite
files per partition would be several ledgers, not one platform.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from fenqi.clock import FixedClock
from fenqi.context import Context, build_context
from fenqi.settings import Settings
from fenqi.simulation.market import SimConfig, Simulation
from fenqi.simulation.runner import SimResult, ledger_checks, portfolio_metrics, training_table

WORKERS_MAX = 64
BARRIER_TIMEOUT_SECONDS = 3_600  # a worker silent for an hour has died; the run stops


@dataclass(frozen=True)
class WorkerSpec:
    database_url: str
    models_dir: Path
    keys_file: Path
    flow_file: Path | None
    config: SimConfig
    part: int
    parts: int


def _worker(spec: WorkerSpec, barrier: Any, results: Any) -> None:
    settings = Settings(
        database_url=spec.database_url,
        models_dir=spec.models_dir,
        keys_file=spec.keys_file,
        risk_flow_file=spec.flow_file,
    )
    ctx = build_context(settings, FixedClock.on(spec.config.start, 8))
    _relaxed_commits(ctx.engine)

    def day_done(_day: int) -> None:
        barrier.wait()  # every worker has finished the day: the coordinator runs end of day
        barrier.wait()  # end of day done: the next day may start

    try:
        config = replace(spec.config, eod=False, batch_ops=1)
        sim = Simulation(
            ctx, config, partition=(spec.part, spec.parts), day_done=day_done, resumable=False
        )
        sim.run()
        st = sim.state
        mine = [i for i in range(config.shoppers) if i % spec.parts == spec.part]
        results.put(
            {
                "part": spec.part,
                "counts": vars(sim.counts),
                "cpu_seconds": sim.cpu_seconds,
                "accounts": {
                    i: (int(st.account_of[i]), int(st.opened_day[i]))
                    for i in mine
                    if st.account_of[i]
                },
                "features": st.features,
                "max_dpd": st.max_dpd,
                "first_90_day": st.first_90_day,
            }
        )
    except BaseException:
        barrier.abort()
        raise
    finally:
        ctx.engine.dispose()


def _relaxed_commits(engine: Engine) -> None:
    """A simulation's commits need not wait for the disk: `synchronous_commit = off` can lose
    the last few transactions in a crash of the database server, never make them inconsistent
    (PostgreSQL manual, "Asynchronous Commit"), and a simulation is rerun by seed. The workers
    commit once per service call, so this is most of what a commit costs them."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit TO OFF")
        dbapi_conn.commit()


def run_parallel(
    ctx: Context,
    config: SimConfig,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Run `config` with `workers` processes on the context's PostgreSQL database."""
    if make_url(ctx.settings.database_url).get_backend_name() != "postgresql":
        raise ValueError("--workers needs PostgreSQL: SQLite has one writer")
    if not 1 <= workers <= WORKERS_MAX:
        raise ValueError(f"workers must be in 1..{WORKERS_MAX}")
    started = time.perf_counter()
    coordinator = Simulation(ctx, config, resumable=False)
    coordinator.open_shops()
    spawn = mp.get_context("spawn")  # no inherited connections or model threads
    barrier = spawn.Barrier(workers + 1, timeout=BARRIER_TIMEOUT_SECONDS)
    results = spawn.Queue()
    s = ctx.settings
    procs = [
        spawn.Process(
            target=_worker,
            args=(
                WorkerSpec(
                    s.database_url,
                    s.models_dir,
                    s.keys_file,
                    s.risk_flow_file,
                    config,
                    part,
                    workers,
                ),
                barrier,
                results,
            ),
            name=f"fenqi-sim-{part}",
        )
        for part in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for d in range(config.days):
            barrier.wait()
            coordinator._timed("end_of_day", coordinator._end_of_day, d)
            barrier.wait()
            if progress:
                progress(d + 1, config.days)
        parts = [results.get(timeout=BARRIER_TIMEOUT_SECONDS) for _ in procs]
    except BaseException:
        barrier.abort()
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join(timeout=60)
    _merge(coordinator, parts)
    coordinator.seconds = time.perf_counter() - started
    with ctx.engine.connect() as conn:
        metrics = portfolio_metrics(conn, coordinator)
        checks = ledger_checks(conn)
    return SimResult(
        config,
        coordinator.counts,
        coordinator.seconds,
        metrics,
        training_table(coordinator),
        checks,
        coordinator.phase_seconds,
        coordinator.cpu_seconds,
    )


def _merge(sim: Simulation, parts: list[dict[str, Any]]) -> None:
    """The workers' counts and observations, as if one process had run them."""
    st, c = sim.state, sim.counts
    for part in sorted(parts, key=lambda p: int(p["part"])):
        for key, value in part["counts"].items():
            if key == "refusals":
                for code, n in value.items():
                    c.refusals[code] = c.refusals.get(code, 0) + n
            else:
                setattr(c, key, getattr(c, key) + value)
        sim.cpu_seconds += float(part["cpu_seconds"])
        for i, (account, opened) in part["accounts"].items():
            st.account_of[i], st.opened_day[i] = account, opened
            st.shopper_of_account[account] = i
        st.features.update(part["features"])
        st.max_dpd.update(part["max_dpd"])
        st.first_90_day.update(part["first_90_day"])
