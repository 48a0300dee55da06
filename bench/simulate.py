"""What bounds the simulator: its CPU per service call against the database's own work.

One run of `fenqi simulate` on a fresh SQLite file (one process, the end of day off by default,
so the per-call path is what is measured), with every statement the services send through
`store.prepared` (the hot statements, savepoints included) timed inside the driver's
`execute`: that time is SQLite's work for those statements, parsing their parameters and
writing its pages, the floor for the same calls. Prints service calls, CPU per call, the
statements per call, the time in the driver, the ratio of the run's CPU to it, and the
statements that cost the database most; writes bench/results/simulate.json.

With `--db postgresql --workers N` it runs the parallel simulation instead and measures the CPU
of both sides per call: the worker processes' and the PostgreSQL server's (every `postgres`
process on this machine, from /proc). Their sum is what a call costs the machine, so
`cores / CPU per call` bounds the calls per second any number of workers can reach here; it
prints that bound for a few machine sizes, and for a full-take-up year of a million shoppers
(≈ 13.7 M calls, docs/simulation.md).

    python bench/simulate.py [--shoppers 3000] [--months 2] [--eod]
    python bench/simulate.py --db postgresql --workers 2 [--shoppers 3000] [--months 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"
TOP = 8
PG = os.environ.get("FENQI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH_DATABASE = "fenqi_bench_simulate"
YEAR_CALLS = 13_700_000  # a million shoppers, full take-up, 12 months (docs/simulation.md)
CORES = (2, 8, 16, 32)


def _postgres_cpu_seconds() -> float:
    """User + system CPU of every `postgres` process alive now, with that of its children that
    have ended (a backend's CPU moves to the postmaster when its connection closes)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            # utime, stime, cutime, cstime: fields 14 to 17 of proc(5)
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def _settled_postgres_cpu_seconds(limit_s: float = 5.0) -> float:
    """The server's CPU once backends that just closed are gone (a closing backend's CPU
    reaches the postmaster only when it is reaped): read until two reads agree."""
    deadline = time.monotonic() + limit_s
    last = _postgres_cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _postgres_cpu_seconds()
        if now == last:
            break
        last = now
    return last


def bench_parallel(shoppers: int, months: int, workers: int) -> dict[str, Any]:
    """The parallel run on a fresh PostgreSQL database; CPU of workers and server per call."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from fenqi.simulation.market import SimConfig
    from fenqi.simulation.parallel import run_parallel
    from fenqi.simulation.runner import simulation_context

    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}"))
        conn.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
    admin.dispose()
    url = make_url(PG).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    config = SimConfig(shoppers=shoppers, months=months, eod=False)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = simulation_context(
            url,
            models_dir=Path(tmp) / "models",
            keys_file=Path(tmp) / "keys.json",
            start=config.start,
        )
        try:
            server_before, main_before = _settled_postgres_cpu_seconds(), time.process_time()
            result = run_parallel(ctx, config, workers)
            ctx.engine.dispose()
            server = _settled_postgres_cpu_seconds() - server_before
            client = result.cpu_seconds + time.process_time() - main_before
        finally:
            ctx.engine.dispose()
    calls = result.counts.service_calls
    per_call = (client + server) / max(calls, 1)
    return {
        "db": "postgresql",
        "workers": workers,
        "shoppers": shoppers,
        "months": months,
        "service_calls": calls,
        "wall_seconds": round(result.seconds, 2),
        "calls_per_s": round(calls / max(result.seconds, 1e-9), 1),
        "client_cpu_ms_per_call": round(client / max(calls, 1) * 1000, 3),
        "server_cpu_ms_per_call": round(server / max(calls, 1) * 1000, 3),
        "bound_calls_per_s": {str(c): round(c / per_call, 1) for c in CORES},
        "year_hours_at_bound": {str(c): round(YEAR_CALLS * per_call / c / 3600, 1) for c in CORES},
        "checks": result.checks,
        "machine": platform.machine(),
        "cores_here": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def bench(shoppers: int, months: int, eod: bool) -> dict[str, Any]:
    """Run the simulation with the driver's time measured; the figures."""
    import fenqi.store.prepared as prepared
    from fenqi.simulation.market import SimConfig
    from fenqi.simulation.runner import run, simulation_context

    spent: dict[tuple[str, bool], list[float]] = defaultdict(lambda: [0, 0.0])
    executed = prepared._executed

    def timed(conn: Any, sql: str, bound: Any, *, many: bool) -> Any:
        started = time.perf_counter()
        cursor = executed(conn, sql, bound, many=many)
        figures = spent[(" ".join(sql.split())[:72], many)]
        figures[0] += len(bound) if many else 1
        figures[1] += time.perf_counter() - started
        return cursor

    prepared._executed = timed
    config = SimConfig(shoppers=shoppers, months=months, eod=eod)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = simulation_context(
            f"sqlite:///{tmp}/bench.sqlite",
            models_dir=Path(tmp) / "models",
            keys_file=Path(tmp) / "keys.json",
            start=config.start,
        )
        try:
            result = run(ctx, config)
        finally:
            ctx.engine.dispose()
            prepared._executed = executed

    calls = result.counts.service_calls
    in_driver = sum(s for _, s in spent.values())
    statements = sum(int(n) for n, _ in spent.values())
    cpu = result.cpu_seconds
    return {
        "shoppers": shoppers,
        "months": months,
        "eod": eod,
        "service_calls": calls,
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_call": round(cpu / max(calls, 1) * 1000, 3),
        "statements_per_call": round(statements / max(calls, 1), 1),
        "driver_seconds": round(in_driver, 2),
        "driver_ms_per_call": round(in_driver / max(calls, 1) * 1000, 3),
        "ratio_cpu_to_driver": round(cpu / max(in_driver, 1e-9), 2),
        "phase_seconds": {k: round(v, 2) for k, v in result.phase_seconds.items()},
        "costliest": [
            {"sql": sql, "many": many, "runs": int(n), "seconds": round(s, 3)}
            for (sql, many), (n, s) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:TOP]
        ],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=3_000)
    parser.add_argument("--months", type=int, default=2)
    parser.add_argument("--eod", action="store_true", help="Run the end of day too.")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=2, help="With --db postgresql.")
    args = parser.parse_args()
    if args.db == "postgresql":
        figures = bench_parallel(args.shoppers, args.months, args.workers)
        print(
            f"parallel simulator benchmark: {args.shoppers:,} shoppers x {args.months} months, "
            f"PostgreSQL, {args.workers} workers, {figures['cores_here']} cores here"
        )
        print(f"  service calls              : {figures['service_calls']:,}")
        print(f"  calls/s here               : {figures['calls_per_s']}")
        print(f"  CPU per call, workers      : {figures['client_cpu_ms_per_call']:.3f} ms")
        print(f"  CPU per call, PostgreSQL   : {figures['server_cpu_ms_per_call']:.3f} ms")
        for cores in CORES:
            print(
                f"  bound with {cores:2d} cores         : "
                f"{figures['bound_calls_per_s'][str(cores)]:8.1f} calls/s, a full-take-up "
                f"year in {figures['year_hours_at_bound'][str(cores)]} h"
            )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_name("simulate_parallel.json").write_text(json.dumps(figures, indent=2))
        return
    figures = bench(args.shoppers, args.months, args.eod)
    calls = figures["service_calls"]
    print(
        f"simulator benchmark: {args.shoppers:,} shoppers x {args.months} months, SQLite, "
        f"end of day {'on' if args.eod else 'off'}"
    )
    print(f"  service calls              : {calls:,}")
    print(f"  CPU per call               : {figures['cpu_ms_per_call']:.3f} ms")
    print(f"  statements per call        : {figures['statements_per_call']}")
    print(f"  in the driver (SQLite)     : {figures['driver_ms_per_call']:.3f} ms a call")
    print(f"  ratio CPU / driver         : {figures['ratio_cpu_to_driver']:.2f}")
    print("  costliest statements in the driver:")
    for row in figures["costliest"]:
        print(f"    {row['seconds']:7.3f} s {row['runs']:8,}  {row['sql']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
