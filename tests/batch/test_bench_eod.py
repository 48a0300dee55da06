"""bench/eod.py builds its portfolio and runs its end of day on both databases (a small one:
the benchmark's figures come from the command, not from here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import ModuleType

from support.bench import load_bench


def _bench() -> ModuleType:
    return load_bench("eod")


def test_the_benchmark_runs_on_a_small_portfolio(db_url: str) -> None:
    figures = _bench().bench(db_url, 2_260, "smoke")
    assert figures["accounts"] == 2_260
    assert figures["eod_s"] > 0 and figures["floor_s"] > 0 and figures["next_day_eod_s"] > 0
    # the late cycle accounts (id % 10 == 8) reaching 180 days today: id % 226 == 174, i.e.
    # 1078 and 2208; those past it were built charged off and are not charged off again
    assert figures["charged_off"] == 2
    assert figures["late_accounts"] > 0 and figures["billed_rows"] > 0


def test_the_floor_writes_every_row_it_touches_and_puts_it_back(tmp_path: Path) -> None:
    """SQLite skips writing a row whose new content equals the old one: a floor that set columns
    to themselves wrote no page (its write-ahead log stayed empty) and timed a read."""
    from sqlalchemy import text

    from fenqi.store.engine import make_engine
    from fenqi.store.migrate import upgrade

    bench = _bench()
    path = tmp_path / "floor.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    bench.build(engine, 500)
    checksum = text(
        "SELECT (SELECT sum(limit_fen) FROM credit_accounts),"
        " (SELECT sum(principal_fen) FROM plan_lines)"
    )
    with engine.connect() as conn:
        before = conn.execute(checksum).one()
    engine.dispose()  # the pool's connections go, so that a checkpoint can empty the log
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    raw.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists()  # (the last connection to close removes an empty log)
    assert bench.floor(engine) > 0
    assert wal.stat().st_size > 10 * 4096  # pages of the 500 accounts and their 2,100 lines
    with engine.connect() as conn:
        assert conn.execute(checksum).one() == before
    engine.dispose()
