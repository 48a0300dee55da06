"""A stopped simulation goes on from its last finished day and ends as if it had never stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from fenqi.context import Context
from fenqi.simulation import checkpoint
from fenqi.simulation.market import SimConfig, Simulation, Stopped
from fenqi.simulation.runner import SimResult, resume, run
from fenqi.store.schema.credit import plan_lines
from fenqi.store.schema.parties import applications as applications_table

CONFIG = SimConfig(shoppers=300, months=2, seed=5)


class Stop(Exception):
    """Stands for a kill in the middle of a day."""


def _same(a: SimResult, b: SimResult) -> None:
    assert vars(a.counts) == vars(b.counts)
    assert a.metrics == b.metrics
    assert a.checks == b.checks == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    assert a.training.equals(b.training)


def test_a_run_stopped_mid_day_resumes_to_the_same_marketplace(
    make_ctx: Callable[[Engine], Context],
    db_engine: Engine,
    run_on_sqlite: Callable[[SimConfig, str], SimResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = run_on_sqlite(CONFIG, "whole.sqlite")

    ctx = make_ctx(db_engine)
    refunds = Simulation._refunds

    def stop_on(day: int) -> Callable[[Simulation, int], None]:
        def refunds_then_stop(self: Simulation, d: int) -> None:
            refunds(self, d)
            if d == day:
                raise Stop  # the day's applications, purchases and refunds are undone with it

        return refunds_then_stop

    # stopped before the first due date (day 40), then again after it, with late payers
    monkeypatch.setattr(Simulation, "_refunds", stop_on(30))
    with pytest.raises(Stop):
        run(ctx, CONFIG)
    with db_engine.connect() as conn:
        saved = checkpoint.load(conn)
        dues_ahead = conn.execute(
            select(func.count())
            .select_from(plan_lines)
            .where(
                plan_lines.c.due_date > CONFIG.start + timedelta(days=29),
                plan_lines.c.due_date < CONFIG.start + timedelta(days=CONFIG.days),
            )
        ).scalar_one()
    assert saved.day == 29 and dues_ahead > 0
    monkeypatch.setattr(Simulation, "_refunds", stop_on(44))
    with pytest.raises(Stop):
        resume(make_ctx(db_engine))
    with db_engine.connect() as conn:
        saved = checkpoint.load(conn)
    assert saved.day == 43
    assert saved.meta["counts"]["purchases"] < whole.counts.purchases
    assert all(len(saved.arrays[k]) > 0 for k in ("refunds", "late", "watch"))

    monkeypatch.setattr(Simulation, "_refunds", refunds)
    again = resume(make_ctx(db_engine))
    _same(again, whole)
    assert again.config == CONFIG


def test_asked_to_stop_it_stops_between_calls_and_keeps_the_finished_days(
    make_ctx: Callable[[Engine], Context], db_engine: Engine
) -> None:
    config = SimConfig(shoppers=120, months=1, seed=4)
    asked = [0]

    def stop() -> bool:  # asked before every call and every day: yes from the 150th time
        asked[0] += 1
        return asked[0] >= 150

    with pytest.raises(Stopped):
        run(make_ctx(db_engine), config, stop=stop)
    with db_engine.connect() as conn:
        saved = checkpoint.load(conn)
        applications = conn.execute(select(func.count()).select_from(applications_table))
        in_database = applications.scalar_one()
    # the day under way left nothing behind: the database has what the checkpoint counted
    assert saved.meta["counts"]["applications"] == in_database > 0
    again = resume(make_ctx(db_engine))
    assert again.counts.applications == 120  # everyone applies once: none twice, none lost
    assert again.checks == {"trial_balance_zero": True, "reconciliation_mismatches": 0}


def test_resuming_a_finished_run_changes_nothing(
    make_ctx: Callable[[Engine], Context], db_engine: Engine
) -> None:
    config = SimConfig(shoppers=80, months=1, seed=2)
    first = run(make_ctx(db_engine), config)
    again = resume(make_ctx(db_engine))
    _same(again, first)


def test_nothing_to_resume_is_a_clear_error(
    make_ctx: Callable[[Engine], Context], db_engine: Engine
) -> None:
    with pytest.raises(checkpoint.NothingToResume, match="no simulation checkpoint"):
        resume(make_ctx(db_engine))


def test_a_checkpoint_is_data_not_code() -> None:
    arrays = {
        "account_of": np.array([0, 7, 9], dtype=np.int64),
        "late": np.zeros((0, 2), dtype=np.int64),
    }
    meta: dict[str, Any] = {"counts": {"purchases": 3, "refusals": {"risk_decline": 1}}}
    back, meta_back = checkpoint.decode(checkpoint.encode(arrays, meta))
    assert meta_back == meta
    assert set(back) == set(arrays)
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())
    import io

    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), evil=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        checkpoint.decode(buffer.getvalue())


def _fenqi(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fenqi.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "FENQI_KEYS_FILE": str(cwd / "keys.json")},
    )


def _checkpoint_day(path: Path) -> int:
    try:
        with sqlite3.connect(path) as conn:
            row = conn.execute("SELECT day FROM simulation_checkpoints").fetchone()
    except sqlite3.Error:
        return -1
    return -1 if row is None else int(row[0])


def test_simulate_killed_then_resumed_from_the_command_line(
    tmp_path: Path, models_dir: Path
) -> None:
    options = ["--shoppers", "200", "--months", "2", "--seed", "3", "--models-dir",
               str(models_dir), "--json"]  # fmt: skip
    whole = _fenqi("simulate", *options, "--database", f"sqlite:///{tmp_path / 'a.sqlite'}",
                   cwd=tmp_path)  # fmt: skip
    out, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err
    expected = json.loads(out)

    db = tmp_path / "b.sqlite"
    go_on = ["--resume", "--models-dir", str(models_dir), "--json", "--database",
              f"sqlite:///{db}"]  # fmt: skip
    # stopped as a shutdown stops it (SIGTERM), then killed outright (SIGKILL), then finished
    for args, sig, at in ((options, signal.SIGTERM, 10), (go_on, signal.SIGKILL, 30)):
        if args is options:
            args = [*options, "--database", f"sqlite:///{db}"]
        stopped = _fenqi("simulate", *args, cwd=tmp_path)
        deadline = time.monotonic() + 600
        while _checkpoint_day(db) < at and stopped.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stopped.poll() is None, "the run ended before it could be stopped"
        stopped.send_signal(sig)
        _, err = stopped.communicate(timeout=120)
        day = _checkpoint_day(db)
        assert at <= day < 59
        if sig == signal.SIGTERM:
            assert stopped.returncode == 130
            assert f"stopped: {day + 1} of 61 simulated days are done" in err
            assert f"fenqi simulate --resume --database sqlite:///{db}" in err

    resumed = _fenqi("simulate", *go_on, cwd=tmp_path)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    data = json.loads(out)
    for key in ("counts", "metrics", "checks", "shoppers", "months", "seed"):
        assert data[key] == expected[key], key

    elsewhere = _fenqi("simulate", "--resume", "--models-dir", str(tmp_path / "other"),
                       "--database", f"sqlite:///{db}", cwd=tmp_path)  # fmt: skip
    _, err = elsewhere.communicate(timeout=600)
    assert elsewhere.returncode != 0 and "models_dir" in err
    nothing = _fenqi("simulate", "--resume", "--database",
                     f"sqlite:///{tmp_path / 'none.sqlite'}", cwd=tmp_path)  # fmt: skip
    _, err = nothing.communicate(timeout=600)
    assert nothing.returncode != 0 and "no simulation checkpoint" in err
    parallel = _fenqi("simulate", "--resume", "--workers", "2", "--database",
                      f"sqlite:///{db}", cwd=tmp_path)  # fmt: skip
    _, err = parallel.communicate(timeout=600)
    assert parallel.returncode != 0 and "--workers" in err
