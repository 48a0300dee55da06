"""`fenqi bureau monitor` and `fenqi bureau report --events --send` as a user runs them, on a
real account, against the bureau service over HTTP: an outage exits 1 and the rerun picks it
up; the events file is sent once."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import insert

from bureau.test_monitoring import fenqi
from fenqi.clock import FixedClock
from fenqi.credit.customers import check_identity, register
from fenqi.privacy.consent import ConsentKind, record_consent
from fenqi.privacy.crypto import load_or_create_keys_file
from fenqi.store.schema.parties import merchants
from support.api_server import free_port, id_number
from support.billing_world import World
from support.bureau_server import TOKEN_OF, running_bureau


def test_monitor_and_event_commands_on_a_real_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fenqi.sqlite'}"
    keys_file = tmp_path / "keys.json"
    env = {"FENQI_DATABASE_URL": url, "FENQI_KEYS_FILE": str(keys_file)}
    assert fenqi("db", "upgrade", env=env).returncode == 0
    w = World(url, date(2026, 1, 2), product="renxingfu")
    w.ctx.__dict__["keys"] = load_or_create_keys_file(keys_file)  # the commands' keys
    with w.ctx.engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id="m1",
                name="m1",
                category="electronics",
                currency="CNY",
                status="active",
                created_at=w.clock.now(),
            )
        )
        ident = check_identity("李四", id_number(seq="611"), "13900006111", w.clock.today())
        customer, _ = register(conn, w.clock, w.ctx.keys, ident, "6k_10k", "m1")
        record_consent(
            conn,
            w.clock,
            customer,
            ConsentKind.BUREAU_MONITORING,
            text_version="v1",
            channel="test",
        )
    account = w.open(limit_fen=1_000_000, customer=str(customer))
    w.buy(account, 200_000, 3)
    w.ctx.engine.dispose()

    with running_bureau(
        f"sqlite:///{tmp_path / 'bureau.sqlite'}", FixedClock.on(date(2026, 3, 1))
    ) as b:
        live = {**env, "FENQI_BUREAU_URL": b.url, "FENQI_BUREAU_TOKEN": TOKEN_OF["fenqi"]}
        dead = {
            **live,
            "FENQI_BUREAU_URL": f"http://127.0.0.1:{free_port()}",
            "FENQI_BUREAU_RETRIES": "0",
        }
        monitor = ("bureau", "monitor", "--date", "2026-03-01", "--json")
        down = fenqi(*monitor, env=dead)
        assert down.returncode == 1, down.stderr
        assert json.loads(down.stdout) | {"run_date": ""} == {
            "run_date": "",
            "due": 1,
            "inquiries": 1,
            "ok": 0,
            "unavailable": 1,
            "refused": 0,
            "error": 0,
        }
        up = fenqi(*monitor, env=live)
        assert up.returncode == 0, up.stderr
        assert (json.loads(up.stdout)["due"], json.loads(up.stdout)["ok"]) == (1, 1)
        assert json.loads(fenqi(*monitor, env=live).stdout)["due"] == 0  # done for the date

        events = ("bureau", "report", "--events", "--date", "2026-01-02", "--out", str(tmp_path))
        sent = fenqi(*events, "--send", "--json", env=live)
        assert sent.returncode == 0, sent.stderr
        body = json.loads(sent.stdout)
        assert body["events"]["opened"] == 1 and body["sent"]["pboc"]["records"] == 1
        assert Path(body["written"]["pboc"]).stat().st_mode & 0o777 == 0o600
        again = json.loads(fenqi(*events, "--send", "--json", env=live).stdout)
        assert (again["unsent_records"], again["sent"]) == (0, {})  # not sent twice
