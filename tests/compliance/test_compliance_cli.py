"""`fenqi compliance ...` as a user runs it: real processes, exit codes, JSON."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from bureau.test_bureau_cli import fenqi
from fenqi.clock import FixedClock
from fenqi.credit.customers import check_identity, register
from fenqi.privacy.crypto import load_or_create_keys_file
from fenqi.store.engine import make_engine
from fenqi.store.schema.parties import merchants
from support.api_server import id_number


def test_regimes_reports_and_data_subject_requests(tmp_path: Path) -> None:
    env = {
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'fenqi.sqlite'}",
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    assert fenqi("db", "upgrade", env=env).returncode == 0
    regimes = fenqi("compliance", "regimes", "--date", "2026-01-05", "--json", env=env)
    assert regimes.returncode == 0, regimes.stderr
    by_name = {r["name"]: r for r in json.loads(regimes.stdout)}
    assert by_name["cn_window_24"]["in_use"] and by_name["cn_window_24"]["cap_bp"] == 2400
    assert by_name["cn_private_lpr4"]["cap_bp"] == 1200 and not by_name["cn_private_lpr4"]["in_use"]
    rep = fenqi("compliance", "report", "overdue", "--month", "2026-01", "--json", env=env)
    assert rep.returncode == 0 and json.loads(rep.stdout)["totals"]["ledger_owed_fen"] == 0
    bad = fenqi("compliance", "report", "nonsense", "--month", "2026-01", env=env)
    assert bad.returncode == 2 and "report: one of" in bad.stderr

    clock = FixedClock.on(date(2026, 1, 2))
    keys = load_or_create_keys_file(tmp_path / "keys.json")
    engine = make_engine(env["FENQI_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(
            merchants.insert().values(
                id="m1",
                name="m1",
                category="x",
                currency="CNY",
                status="active",
                created_at=clock.now(),
            )
        )
        ident = check_identity("王小明", id_number(seq="611"), "13700001111", clock.today())
        customer, _ = register(conn, clock, keys, ident, "6k_10k", "m1")
    engine.dispose()

    out = fenqi(
        "compliance",
        "export",
        "--customer",
        str(customer),
        "--html",
        str(tmp_path / "me.html"),
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["customer"]["name"] == "王小明"
    assert "王小明" in (tmp_path / "me.html").read_text(encoding="utf-8")
    assert (tmp_path / "me.html").stat().st_mode & 0o077 == 0
    missing = fenqi("compliance", "export", "--customer", "999", env=env)
    assert missing.returncode == 2 and "not_found" in missing.stderr
    breach = fenqi("compliance", "breach-report", "--table", "customers", "--json", env=env)
    assert json.loads(breach.stdout) == [
        {
            "customer_id": customer,
            "name": "王*明",
            "phone": "137****1111",
            "id_number": id_number(seq="611")[:3] + "*" * 11 + id_number(seq="611")[-4:],
        }
    ]
    gone = fenqi("compliance", "delete", "--customer", str(customer), env=env)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["status"] == "scheduled"
    listed = fenqi("compliance", "requests", "--json", env=env)
    assert [(r["kind"], r["status"]) for r in json.loads(listed.stdout)] == [
        ("access", "completed"),
        ("deletion", "scheduled"),
    ]
