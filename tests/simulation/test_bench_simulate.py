"""bench/simulate.py runs a small simulation and measures the driver's share (the figures come
from the command, not from here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import fenqi.store.prepared as prepared

BENCH = Path(__file__).resolve().parents[2] / "bench" / "simulate.py"


def test_the_benchmark_times_the_statements_of_a_small_run() -> None:
    spec = importlib.util.spec_from_file_location("bench_simulate", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    executed = prepared._executed
    figures = module.bench(40, 1, False)
    assert prepared._executed is executed  # put back
    assert figures["service_calls"] > 40 and figures["statements_per_call"] > 10
    assert 0 < figures["driver_seconds"] < figures["cpu_seconds"]
    assert figures["ratio_cpu_to_driver"] > 1
    assert any(row["sql"].startswith("INSERT INTO ledger_entries") for row in figures["costliest"])
