"""`fenqi simulate` and `fenqi whatif` as a user runs them: a real process, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fenqi.risk as fenqi_risk

DEFAULT_FLOW = Path(fenqi_risk.__file__).parent / "flows" / "default.json"


def fenqi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "FENQI_KEYS_FILE": str(cwd / "keys.json")},
        timeout=600,
    )


def test_simulate_prints_figures_and_throughput(tmp_path: Path, models_dir: Path) -> None:
    out = fenqi(
        "simulate", "--shoppers", "60", "--months", "1", "--seed", "4", "--no-eod",
        "--database", f"sqlite:///{tmp_path / 'sim.sqlite'}", "--models-dir", str(models_dir),
        "--training-table", str(tmp_path / "train.csv"), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["counts"]["applications"] == 60 and data["counts"]["purchases"] > 0
    assert data["throughput"]["shoppers_per_s"] > 0 and data["throughput"]["purchases_per_s"] > 0
    assert data["checks"] == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    assert (tmp_path / "train.csv").read_text().startswith("age,income_band,")
    # standard error is a pipe here, as in a log: the last day's progress is a plain line
    assert out.stderr.strip().splitlines()[-1].startswith("simulating: day 30/30, 0:00:")
    text = fenqi(
        "simulate", "--shoppers", "30", "--months", "1", "--no-eod",
        "--database", f"sqlite:///{tmp_path / 'sim2.sqlite'}", "--models-dir", str(models_dir),
        cwd=tmp_path,
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "shoppers/s" in text.stdout and "purchases/s" in text.stdout


def test_whatif_compares_two_flows(tmp_path: Path, models_dir: Path, strict_flow: Path) -> None:
    html = tmp_path / "whatif.html"
    out = fenqi(
        "whatif", "--flow", str(DEFAULT_FLOW), "--flow", str(strict_flow), "--shoppers", "80",
        "--months", "1", "--no-eod", "--models-dir", str(models_dir), "--out", str(html),
        "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {r["metric"]: r for r in data["comparison"]}
    default, strict = (a["name"] for a in data["arms"])
    assert rows["approval_rate_bp"][strict] < rows["approval_rate_bp"][default]
    assert {"profit_fen", "bad_debt_rate_bp", "fee_income_fen"} <= set(rows)
    assert html.is_file() and "Plotly" in html.read_text()
    bad = fenqi("whatif", "--flow", str(DEFAULT_FLOW), cwd=tmp_path)
    assert bad.returncode != 0


def test_the_simulate_command_runs_zen_with_one_tokio_worker_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fenqi.simulation.cli import _one_tokio_worker

    monkeypatch.delenv("TOKIO_WORKER_THREADS", raising=False)
    _one_tokio_worker()
    assert os.environ["TOKIO_WORKER_THREADS"] == "1"
    monkeypatch.setenv("TOKIO_WORKER_THREADS", "4")
    _one_tokio_worker()
    assert os.environ["TOKIO_WORKER_THREADS"] == "4"


def test_progress_in_a_log_is_a_line_a_minute_with_the_time_left() -> None:
    from fenqi.simulation.cli import _plain_progress

    clock, lines = [1000.0], list[str]()
    tick = _plain_progress("simulating", lambda: clock[0], lines.append)
    tick(100, 365)  # a resumed run: its first day done is its start
    for day in range(101, 365):
        clock[0] += 6.0  # six seconds a day
        tick(day, 365)
    assert lines[0] == "simulating: day 110/365, 0:01:00 taken, about 0:25:30 left"
    assert len(lines) == 26 and lines[-1].startswith("simulating: day 360/365, 0:26:00 taken")
    clock[0] += 1.0
    tick(365, 365)  # the last day always
    assert lines[-1] == "simulating: day 365/365, 0:26:25 taken, about 0:00:00 left"
