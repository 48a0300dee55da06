"""The end of day as an operator meets it: the first night of a fresh install, a date in the
future, a date already done, and a second run started while one runs (both databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from fenqi.batch.eod import RunInProgress, exclusive_run, run_eod
from fenqi.clock import FixedClock, SystemClock
from fenqi.context import build_context
from fenqi.settings import Settings
from fenqi.store.migrate import upgrade

DAY = date(2026, 1, 5)


def fenqi(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "FENQI_DATABASE_URL": url, "FENQI_KEYS_FILE": str(cwd / "k.json")},
        timeout=300,
    )


def test_the_first_night_of_a_fresh_install_runs(db_url: str, tmp_path: Path) -> None:
    """No credit accounts yet: the steps' per-product values have no product to map."""
    ctx = build_context(Settings(database_url=db_url), FixedClock.on(DAY, 23))
    upgrade(ctx.engine)
    try:
        figures = run_eod(ctx, DAY)[DAY.isoformat()]
        assert set(figures) == {
            "expire_holds",
            "apply_credit",
            "revolve",
            "accrue",
            "bill",
            "age",
            "charge_off",
            "funding_settle",
        }
        assert all(f == {"rows": 0, "amount_fen": 0} for f in figures.values())
    finally:
        ctx.engine.dispose()
    out = fenqi("eod", "--date", "2026-01-06", url=db_url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2026-01-06: ")


def test_a_second_run_is_refused_while_one_runs(db_url: str, tmp_path: Path) -> None:
    ctx = build_context(Settings(database_url=db_url), FixedClock.on(DAY, 23))
    upgrade(ctx.engine)
    try:
        with exclusive_run(ctx):
            with pytest.raises(RunInProgress), exclusive_run(ctx):  # a second connection
                pass
            out = fenqi("eod", "--date", DAY.isoformat(), url=db_url, cwd=tmp_path)
            assert out.returncode == 2
            assert "end-of-day run is in progress" in out.stderr
            assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 3
        again = fenqi("eod", "--date", DAY.isoformat(), url=db_url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr  # the lock went with its holder
    finally:
        ctx.engine.dispose()


def test_dates_after_the_business_date_need_a_flag_and_done_dates_say_so(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'book.sqlite'}"
    assert fenqi("db", "upgrade", url=url, cwd=tmp_path).returncode == 0
    today = SystemClock().today()  # the business date the command sees
    future, done = (today + timedelta(days=39)).isoformat(), (today - timedelta(days=2)).isoformat()
    out = fenqi("eod", "--date", future, url=url, cwd=tmp_path)
    assert out.returncode == 2
    assert f"--date {future} is after the business date" in out.stderr
    assert "--allow-future" in out.stderr and "Traceback" not in out.stderr
    ran = fenqi("eod", "--date", done, url=url, cwd=tmp_path)
    assert ran.returncode == 0 and ran.stdout.startswith(f"{done}: ")
    again = fenqi("eod", "--date", done, url=url, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == ""
    assert f"nothing to run: end of day is done through {done}" in again.stderr
    test_run = fenqi("eod", "--date", future, "--allow-future", "--json", url=url, cwd=tmp_path)
    assert test_run.returncode == 0, test_run.stderr
