"""The command line as a user runs it: a real `fenqi` process, exit codes and JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fenqi.products.catalog_loader import CATALOG_DIR


def fenqi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_products_list_json() -> None:
    out = fenqi("products", "list", "--json")
    assert out.returncode == 0, out.stderr
    names = {p["name"] for p in json.loads(out.stdout)}
    assert {"huabei", "baitiao", "pay_in_4", "affirm_loan"} <= names


def test_products_check_good_and_bad(tmp_path: Path) -> None:
    good = fenqi("products", "check", str(CATALOG_DIR / "huabei.toml"))
    assert good.returncode == 0 and "ok:" in good.stdout
    bad = tmp_path / "huabei.toml"
    bad.write_text(
        (CATALOG_DIR / "huabei.toml")
        .read_text()
        .replace("statement_day = 1", "statement_day = 40", 1)
    )
    out = fenqi("products", "check", str(bad))
    assert out.returncode != 0
    assert str(bad) in out.stderr and "billing.statement_day" in out.stderr
    assert "Traceback" not in out.stderr


def test_quote_json_matches_schedule_rules() -> None:
    out = fenqi(
        "quote",
        "--product",
        "huabei",
        "--amount",
        "600000",
        "--terms",
        "12",
        "--date",
        "2026-01-02",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    q = json.loads(out.stdout)
    assert len(q["schedule"]) == 12
    assert sum(x["principal_fen"] for x in q["schedule"]) == 600_000
    assert q["totals"]["total_fen"] == sum(x["total_fen"] for x in q["schedule"])
    assert q["schedule"][0]["due_date"] == "2026-02-10"
    assert 0 < q["annualized_rate"]["nominal_bp"] <= 2400


def test_quote_refusals_name_the_problem() -> None:
    out = fenqi("quote", "--product", "huabei", "--amount", "600000", "--terms", "7", "--json")
    assert out.returncode == 2 and "terms" in out.stderr and "offers" in out.stderr
    out = fenqi("quote", "--product", "nope", "--amount", "1", "--terms", "3")
    assert out.returncode == 2 and "no such product" in out.stderr
    out = fenqi("quote", "--product", "huabei", "--amount", "100", "--terms", "3", "--date", "x")
    assert out.returncode == 2 and "--date" in out.stderr


def test_quote_over_a_lowered_cap_is_refused() -> None:
    out = fenqi(
        "quote",
        "--product",
        "huabei",
        "--amount",
        "600000",
        "--terms",
        "12",
        env={"FENQI_APR_CAP_BP": "1000"},
    )
    assert out.returncode == 2
    assert "cap" in out.stderr


def test_db_upgrade_then_trial_balance(db_url: str) -> None:
    env = {"FENQI_DATABASE_URL": db_url}
    up = fenqi("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert "revision" in up.stdout
    tb = fenqi("ledger", "trial-balance", "--json", env=env)
    assert tb.returncode == 0, tb.stderr
    assert json.loads(tb.stdout)["balanced"] is True
    rec = fenqi("ledger", "reconcile", "--json", env=env)
    assert rec.returncode == 0 and json.loads(rec.stdout)["ok"] is True


def test_demo_runs_and_balances(tmp_path: Path) -> None:
    out = fenqi("demo", "--scripted", "--database", str(tmp_path / "demo.sqlite"))
    assert out.returncode == 0, out.stderr
    assert "12 installments" in out.stdout and "interest-free cycle" in out.stdout
    assert "annualized rate (IRR method)" in out.stdout
    assert "trial balance balanced (zero)" in out.stdout
    assert "every balance equals its postings" in out.stdout
