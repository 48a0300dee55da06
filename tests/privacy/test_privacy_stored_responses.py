"""Stored idempotent responses at rest (SQLite and PostgreSQL): sealing, purge of expired rows
(the function and `fenqi purge-idempotency-keys`), re-sealing under a new key."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.stored_responses import open_stored, purge_expired, reseal, seal
from fenqi.store.schema.parties import idempotency_keys

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _row(engine: Engine, key: str, body: str, age: timedelta) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(idempotency_keys).values(
                scope="merchant:m",
                key=key,
                request_hash="h",
                status_code=201,
                response_body=body,
                created_at=NOW - age,
            )
        )


def test_purge_and_reseal(db_engine: Engine) -> None:
    ring = KeyRing.generate("k1")
    secret = '{"token": "st_secret"}'
    _row(db_engine, "old", seal(ring, secret), timedelta(hours=30))
    _row(db_engine, "new", seal(ring, secret), timedelta(hours=1))
    _row(db_engine, "plain", '{"ok": true}', timedelta(hours=2))
    with db_engine.begin() as conn:
        assert purge_expired(conn, NOW, 24) == 1
        rotated = ring.with_new_active_key("k2")
        assert reseal(conn, rotated) == 1  # the sealed one left; the plain one is not sealed
        assert reseal(conn, rotated) == 0
    with db_engine.connect() as conn:
        found = conn.execute(select(idempotency_keys.c.key, idempotency_keys.c.response_body))
        rows = {k: v for k, v in found}
    assert set(rows) == {"new", "plain"}
    assert rows["new"].startswith("sealed:k2:") and "st_secret" not in rows["new"]
    only_k2 = KeyRing({"k2": rotated.keys["k2"]}, "k2", rotated.blind_key)
    assert open_stored(only_k2, rows["new"]) == secret


def test_purge_command(db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    # the command reads the wall clock: a row from 2026-03-01 minus 30 h is long expired
    _row(db_engine, "old", '{"ok": true}', timedelta(hours=30))
    env = {**os.environ, "FENQI_DATABASE_URL": db_url, "FENQI_KEYS_FILE": str(tmp_path / "k.json")}
    out = subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "purge-idempotency-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "deleted 1 stored responses older than 24 h" in out.stdout
    with db_engine.connect() as conn:
        assert conn.execute(select(idempotency_keys.c.key)).all() == []
