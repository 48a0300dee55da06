"""What bounds the simulator: its CPU per service call against the database's own work.

One run of `fenqi simulate` on a fresh SQLite file (one process, the end of day off by default,
so the per-call path is what is measured), with every statement the services send through
`store.prepared` (the hot statements, savepoints included) timed inside the driver's
`execute`: that time is SQLite's work for those statements, parsing their parameters and
writing its pages, the floor for the same calls. Prints service calls, CPU per call, the
statements per call, the time in the driver, the ratio of the run's CPU to it, and the
statements that cost the database most; writes bench/results/simulate.json.

    python bench/simulate.py [--shoppers 3000] [--months 2] [--eod]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"
TOP = 8


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
    args = parser.parse_args()
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
