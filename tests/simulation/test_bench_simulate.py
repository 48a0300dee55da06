"""bench/simulate.py runs a small simulation and measures the driver's share (the figures come
from the command, not from here)."""

from __future__ import annotations

import time
from types import ModuleType

from sqlalchemy import create_engine, text

import fenqi.store.prepared as prepared
from support.bench import load_bench


def _bench() -> ModuleType:
    return load_bench("simulate")


def test_the_benchmark_times_the_statements_of_a_small_run() -> None:
    module = _bench()
    executed = prepared._executed
    figures = module.bench(40, 1, False)
    assert prepared._executed is executed  # put back
    assert figures["service_calls"] > 40 and figures["statements_per_call"] > 10
    assert 0 < figures["driver_seconds"] < figures["cpu_seconds"]
    assert figures["ratio_cpu_to_driver"] > 1
    costliest = figures["costliest"]
    assert len(costliest) == module.TOP and all(row["runs"] > 0 for row in costliest)
    seconds = [row["seconds"] for row in costliest]
    assert seconds == sorted(seconds, reverse=True)
    # the services' own statements, the writes among them: a purchase's, an application's
    assert any(row["sql"].startswith("INSERT INTO ") for row in costliest)
    assert all(
        row["sql"].split()[0]
        in {"INSERT", "UPDATE", "SELECT", "DELETE", "SAVEPOINT", "RELEASE", "ROLLBACK"}
        for row in costliest
    )


def test_the_parallel_benchmark_reads_the_servers_cpu(db_url: str) -> None:
    """The PostgreSQL server runs on this machine (CI starts it): its processes' CPU grows
    while it works, and their ended children's CPU is counted."""
    if not db_url.startswith("postgresql"):
        return
    cpu = _bench()._settled_postgres_cpu_seconds
    before = cpu()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            started = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)")).scalar()
            busy = time.perf_counter() - started  # the server's work, on one of its cores
    finally:
        engine.dispose()  # the backend ends: its CPU is now the postmaster's children's
    assert before > 0
    assert cpu() - before >= 0.5 * busy
