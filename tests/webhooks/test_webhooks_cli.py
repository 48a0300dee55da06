"""`fenqi webhooks ...` as a user runs it: a real process on a SQLite file, delivering to a
live local receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from fenqi.clock import SystemClock
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.webhooks import webhook_endpoints
from fenqi.webhooks.outbox import enqueue
from fenqi.webhooks.signing import verify
from webhooks.webhook_receiver import SECRET, Receiver

RUN_APP = "from fenqi.webhooks.cli import app; app(prog_name='fenqi webhooks')"


def webhooks(
    db_url: str, *args: str, stdin: str | None = None, allow_private: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_APP, *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={
            **os.environ,
            "FENQI_DATABASE_URL": db_url,
            "COLUMNS": "200",
            # the receiver listens on 127.0.0.1
            "FENQI_WEBHOOK_ALLOW_PRIVATE_NETWORKS": str(allow_private).lower(),
        },
        timeout=120,
    )


def test_set_endpoint_worker_list_replay(tmp_path: Path, receiver: Receiver) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = make_engine(db_url)
    create_all(engine)
    clock = SystemClock()
    with engine.begin() as conn:
        event_id = enqueue(conn, clock, "m1", "repayment.received", {"amount_fen": 500})
    engine.dispose()

    out = webhooks(db_url, "set-endpoint", "m1", receiver.url, "--secret-stdin", stdin=SECRET)
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout

    out = webhooks(db_url, "worker", "--once")
    assert out.returncode == 0, out.stderr
    assert "delivered 1" in out.stdout
    [req] = receiver.requests
    assert json.loads(req.body)["id"] == event_id
    signed_at = int(req.headers["Fenqi-Signature"].split(",")[0].removeprefix("t="))
    assert verify(SECRET.encode(), req.headers["Fenqi-Signature"], req.body, now=signed_at)

    out = webhooks(db_url, "list", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["event_id"] == event_id and row["status"] == "delivered"

    out = webhooks(db_url, "replay", event_id)
    assert out.returncode == 0, out.stderr
    out = webhooks(db_url, "list", "--status", "pending", "--json")
    assert [r["event_id"] for r in json.loads(out.stdout)] == [event_id]
    out = webhooks(db_url, "list")  # the table view
    assert out.returncode == 0 and "repayment.received" in out.stdout

    out = webhooks(db_url, "replay", event_id)  # still pending: refused, cleanly
    assert out.returncode != 0 and "webhook_replay_conflict" in out.stderr
    assert "Traceback" not in out.stderr


def test_clean_errors(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = make_engine(db_url)
    create_all(engine)
    engine.dispose()
    for args, expected in [
        (("replay", "evt_missing"), "not_found"),  # the CLI speaks the current vocabulary
        (("list", "--status", "lost"), "--status"),
        (("set-endpoint", "m1", "ftp://example.com/x"), "url:"),
    ]:
        out = webhooks(db_url, *args)
        assert out.returncode != 0, args
        assert expected in out.stderr and "Traceback" not in out.stderr, out.stderr
    # a platform that does not allow private networks (the default) refuses them, and keeps
    # nothing
    for url in ("http://169.254.169.254/latest/meta-data", "https://localhost:8443/hooks"):
        out = webhooks(db_url, "set-endpoint", "m1", url, allow_private=False)
        assert out.returncode != 0 and "unsafe_webhook_url" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_endpoints)).scalar() == 0
    out = webhooks(db_url, "set-endpoint", "m1", "https://shop.example/hooks", allow_private=False)
    assert out.returncode == 0 and "signing secret (shown once): whsec_" in out.stdout
    out = webhooks(db_url, "worker", "--once")
    assert out.returncode == 0 and "claimed 0" in out.stdout


def test_purge(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = make_engine(db_url)
    create_all(engine)
    engine.dispose()
    out = webhooks(db_url, "purge", "--days", "30")
    assert out.returncode == 0 and "purged 0 events" in out.stdout, out.stderr
