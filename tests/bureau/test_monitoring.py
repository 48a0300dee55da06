"""Post-loan monitoring (`fenqi.bureau.monitoring`), over real HTTP to the bureau service, on
SQLite and PostgreSQL: who is due, consent, idempotency per date, outage recorded and picked up
by a rerun, the daily cap, the ops API; and `fenqi bureau monitor` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fenqi.bureau import monitoring
from fenqi.bureau.client import CircuitBreaker, HttpBureauClient
from fenqi.bureau.inquiry import PURPOSE_MONITORING, stored_report
from fenqi.privacy.audit import list_entries
from fenqi.privacy.consent import ConsentKind, record_consent, revoke_consent
from fenqi.store.schema.bureau import bureau_monitoring, bureau_reports
from support.api_server import Api, free_port, id_number, running_api
from support.bureau_server import TOKEN_OF, running_bureau


def _accounts(api: Api, n: int) -> list[dict[str, Any]]:
    key = api.merchant()
    out = []
    for i in range(n):
        r = api.apply(key, id_number(seq=f"4{i:02d}"), f"138123405{i:02d}")
        assert r.status_code == 201 and r.json()["outcome"] == "approved", r.text
        out.append(r.json())
    return out


def _consent(api: Api, customer_id: int) -> None:
    with api.ctx.engine.begin() as conn:
        record_consent(
            conn,
            api.clock,
            customer_id,
            ConsentKind.BUREAU_MONITORING,
            text_version="2026-01",
            channel="test",
        )


def _run(api: Api, client: Any, on: date, cap: int = 100) -> monitoring.MonitoringRun:
    return monitoring.run(
        api.ctx.engine,
        api.clock,
        api.ctx.keys,
        client,
        on,
        interval_days=30,
        daily_cap=cap,
        retention_days=365,
    )


def _client(api: Api, url: str, **kw: Any) -> HttpBureauClient:
    return HttpBureauClient(url, TOKEN_OF["fenqi"], api.clock, sleep=lambda _s: None, **kw)


def test_monitoring_schedule_consent_idempotency_and_outage(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with (
        running_api(db_url, models_dir, tmp_path) as api,
        running_bureau(f"sqlite:///{tmp_path / 'bureau.sqlite'}", api.clock) as bureau,
    ):
        accs = _accounts(api, 3)
        for a in accs[:2]:  # the third never consented to monitoring
            _consent(api, int(a["customer_id"]))
        live = _client(api, bureau.url)
        # too early: the accounts were opened less than 30 days ago
        assert _run(api, live, api.clock.today() + timedelta(days=10)).due == 0
        api.clock.advance(timedelta(days=31))
        day = api.clock.today()
        # the bureau is down: every due account recorded unavailable, the run goes on
        dead = _client(
            api,
            f"http://127.0.0.1:{free_port()}",
            retries=0,
            breaker=CircuitBreaker(api.clock, failures_to_open=1),
        )
        down = _run(api, dead, day)
        assert down.summary() == {
            "run_date": day.isoformat(),
            "due": 2,
            "inquiries": 2,
            "ok": 0,
            "unavailable": 2,
            "refused": 0,
            "error": 0,
        }
        # the rerun picks up what failed; a third run that day has nothing to do
        up = _run(api, live, day)
        assert (up.due, up.counts) == (2, {"ok": 2})
        assert _run(api, live, day).due == 0
        with api.ctx.engine.connect() as conn:
            rows = conn.execute(select(bureau_monitoring)).all()
            assert sorted((r.status, r.attempts) for r in rows) == [("ok", 2), ("ok", 2)]
            reports = conn.execute(
                select(bureau_reports).where(bureau_reports.c.purpose == PURPOSE_MONITORING)
            ).all()
            assert sorted(r.status for r in reports) == ["ok", "ok", "unavailable", "unavailable"]
            ok = next(r for r in reports if r.status == "ok")
            assert ok.retention_until == day + timedelta(days=365)
            report = stored_report(conn, api.ctx.keys, int(ok.id))
            assert report is not None
            assert report.subject_id in {id_number(seq="400"), id_number(seq="401")}
            assert ok.report_enc and id_number(seq="400") not in ok.report_enc  # sealed
            audited = list_entries(conn, action="bureau.inquiry")
            assert sum(1 for e in audited if e.detail.get("purpose") == PURPOSE_MONITORING) == 4
        # the next month: due again after the interval, not before
        assert _run(api, live, day + timedelta(days=29)).due == 0
        api.clock.advance(timedelta(days=30))
        later = _run(api, live, api.clock.today(), cap=1)  # both due, the cap allows one
        assert (later.due, later.counts) == (1, {"ok": 1})
        assert _run(api, live, api.clock.today(), cap=1).due == 0  # the daily cap is spent
        with api.ctx.engine.begin() as conn:  # the other withdraws monitoring: not inquired
            revoke_consent(conn, api.clock, int(accs[1]["customer_id"]), "bureau_monitoring")
        api.clock.advance(timedelta(minutes=1))
        assert _run(api, live, api.clock.today(), cap=10).due == 0

        # the ops API shows the latest monitoring inquiry's attributes
        token = api.staff_token("support1", "support")
        acc = int(accs[0]["credit_account_id"])
        r = api.get(f"/v1/ops/accounts/{acc}/bureau-monitoring", token)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["last_run"]["status"] == "ok"
        assert body["latest_report"]["run_date"] == api.clock.today().isoformat()
        assert "worst_dpd_24m" in body["latest_report"]["attributes"]
        none = api.get(f"/v1/ops/accounts/{accs[2]['credit_account_id']}/bureau-monitoring", token)
        assert none.json()["last_run"] is None and none.json()["latest_report"] is None
        assert api.get("/v1/ops/accounts/999999/bureau-monitoring", token).status_code == 404


def test_a_failure_in_one_account_does_not_stop_the_run(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    class Flaky:
        lender = "fenqi"
        calls = 0

        def inquire(self, subject: str, purpose: str, auth: object) -> object:
            Flaky.calls += 1
            raise RuntimeError("a bug in a client")

        def submit(self, *a: object) -> object:
            raise AssertionError

    with running_api(db_url, models_dir, tmp_path) as api:
        for a in _accounts(api, 2):
            _consent(api, int(a["customer_id"]))
        api.clock.advance(timedelta(days=31))
        result = _run(api, Flaky(), api.clock.today())
        assert (result.due, result.counts, Flaky.calls) == (2, {"error": 2}, 2)
        with api.ctx.engine.connect() as conn:
            codes = {r.error_code for r in conn.execute(select(bureau_monitoring))}
        assert codes == {"RuntimeError"}


def fenqi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_monitor_command(tmp_path: Path) -> None:
    env = {
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'fenqi.sqlite'}",
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
        "FENQI_BUREAU_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens: an outage
        "FENQI_BUREAU_RETRIES": "0",
    }
    assert fenqi("db", "upgrade", env=env).returncode == 0
    out = fenqi("bureau", "monitor", "--date", "2026-03-01", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["due"] == 0
    bad = fenqi("bureau", "monitor", "--date", "2026-3-1", env=env)
    assert bad.returncode == 2 and "--date" in bad.stderr
    unset = fenqi("bureau", "monitor", env={**env, "FENQI_BUREAU_URL": ""})
    assert unset.returncode == 2 and "FENQI_BUREAU_URL" in unset.stderr
