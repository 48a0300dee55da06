"""`fenqi funding list|check|exposure` as a user runs them: a real process, exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fenqi.funding.loader import CATALOG_DIR


def fenqi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_list_json() -> None:
    out = fenqi("funding", "list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["platform_floor_bp"] == 3000
    assert {f["id"] for f in data["funders"]} == {
        "platform",
        "platform_usd",
        "platform_aud",
        "bank_example",
        "trust_example",
    }
    assert [p["id"] for p in data["programs"]] == ["colending_example"]


def test_check_good_and_bad(tmp_path: Path) -> None:
    program = CATALOG_DIR / "programs" / "colending_example.toml"
    good = fenqi("funding", "check", str(program))
    assert good.returncode == 0 and "defines program 'colending_example'" in good.stdout
    bad = tmp_path / "colending_example.toml"
    bad.write_text(
        program.read_text()
        .replace("share_bp = 5000", "share_bp = 5500")
        .replace("share_bp = 3000", "share_bp = 2500")
    )
    out = fenqi("funding", "check", str(bad))
    assert out.returncode == 2
    assert f"{bad}: shares: the platform's own share ('platform') is 2500 bp" in out.stderr
    # the floor is a setting
    lower = fenqi("funding", "check", str(bad), env={"FENQI_FUNDING_PLATFORM_FLOOR_BP": "2500"})
    assert lower.returncode == 0, lower.stderr


def test_exposure_on_a_new_database(tmp_path: Path) -> None:
    env = {"FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite'}"}
    assert fenqi("db", "upgrade", env=env).returncode == 0
    out = fenqi("funding", "exposure", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["funder"]: r for r in json.loads(out.stdout)}
    assert rows["bank_example"]["outstanding_fen"] == 0
    assert rows["bank_example"]["limit_total_fen"] == 20_000_000_000


def test_settle_a_date_with_nothing_funded(tmp_path: Path) -> None:
    env = {"FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite'}"}
    assert fenqi("db", "upgrade", env=env).returncode == 0
    out = fenqi("funding", "settle", "--date", "2026-11-26", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"date": "2026-11-26", "funders": [], "ledger_mismatches": []}
    bad = fenqi("funding", "settle", "--date", "2026-13-01", env=env)
    assert bad.returncode == 2 and "--date" in bad.stderr
