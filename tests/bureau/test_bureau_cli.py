"""`fenqi bureau ...` as a user runs it: real processes, exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def fenqi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_seed_report_and_reconcile(tmp_path: Path) -> None:
    env = {
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'fenqi.sqlite'}",
        "FENQI_BUREAU_DATABASE_URL": f"sqlite:///{tmp_path / 'bureau.sqlite'}",
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    seeded = fenqi("bureau", "seed", "--n", "300", "--json", env=env)
    assert seeded.returncode == 0, seeded.stderr
    out = json.loads(seeded.stdout)
    assert out["subjects"] == 300 and out["multi_lender_subjects"] > 0
    assert fenqi("db", "upgrade", env=env).returncode == 0
    rep = fenqi(
        "bureau",
        "report",
        "--month",
        "2026-01",
        "--out",
        str(tmp_path / "files"),
        "--json",
        env=env,
    )
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["records"] == 0
    rec = fenqi("bureau", "reconcile", "--month", "2026-01", env=env)
    assert rec.returncode == 0 and "0 difference(s)" in rec.stdout
    bad = fenqi("bureau", "report", "--month", "2026-1", env=env)
    assert bad.returncode == 2 and "--month" in bad.stderr
