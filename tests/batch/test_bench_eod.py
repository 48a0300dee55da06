"""bench/eod.py builds its portfolio and runs its end of day on both databases (a small one:
the benchmark's figures come from the command, not from here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "eod.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_eod", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_on_a_small_portfolio(db_url: str) -> None:
    figures = _bench().bench(db_url, 2_260, "smoke")
    assert figures["accounts"] == 2_260
    assert figures["eod_s"] > 0 and figures["floor_s"] > 0
    # the late cycle accounts (id % 10 == 8) reaching 180 days today: id % 226 == 174, i.e.
    # 1078 and 2208; those past it were built charged off and are not charged off again
    assert figures["charged_off"] == 2
    assert figures["late_accounts"] > 0 and figures["billed_rows"] > 0
