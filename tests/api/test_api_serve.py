"""`fenqi serve` as a user starts it (default logging, access log on): every request gets an
access line with its request id and nothing else (issue 24 item 1: a ~90-line "Logging error"
per request and no access line), personal data sent in any spelling stays out of the log (issue
25 item 6: `%2B86+139+...` in clear), and more workers than the database has connections for are
refused at start (issue 25 item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from support.api_server import free_port

PHONE_SPELLINGS = ["%2B86+139+1234+5678", "%2B8613912345678", "139-1234-5678", "13912345678"]
ID_NUMBER = "11010519491231002X"


def _env(tmp_path: Path, db_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FENQI_DATABASE_URL": db_url,
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
        "FENQI_MODELS_DIR": str(tmp_path / "models"),
        **extra,
    }


def test_serve_logs_one_redacted_access_line_per_request(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fenqi.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path, db_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        for _ in range(600):  # until it listens (migrations first); no timing is asserted
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()
                time.sleep(0.1)
        ids = []
        for number, spelling in enumerate(PHONE_SPELLINGS):
            request_id = f"probe-{number}-{uuid.uuid4().hex[:6]}"
            ids.append(request_id)
            ok = client.get(
                f"/healthz?phone={spelling}&id_number={ID_NUMBER}",
                headers={"X-Request-Id": request_id},
            )
            assert ok.status_code == 200 and ok.headers["x-request-id"] == request_id
            search = client.get(
                f"/v1/ops/customers?phone={spelling}", headers={"X-Request-Id": request_id + "s"}
            )
            assert search.status_code == 401
            ids.append(request_id + "s")
            lost = client.get(
                f"/{spelling}/{ID_NUMBER}", headers={"X-Request-Id": request_id + "p"}
            )
            assert lost.status_code == 404
            ids.append(request_id + "p")
        bad = client.post(
            "/v1/orders",
            content=b'{"merchant_order_ref": "a\\u0000b"}',
            headers={"Content-Type": "application/json", "Idempotency-Key": "k"},
        )
        assert bad.status_code == 422
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    log = out + err
    assert "Logging error" not in log and "Traceback" not in log, log[:3000]
    access = [line for line in log.splitlines() if '"GET ' in line or '"POST ' in line]
    for request_id in ids:
        assert sum(f"[{request_id}]" in line for line in access) == 1, (request_id, access)
    assert any('"POST /v1/orders HTTP/1.1" 422' in line for line in access), access
    assert any("/healthz?phone=***&id_number=***" in line for line in access), access
    for leaked in ("1391234", "1234+5678", "139+1234", "1234 5678", "12345678", "19491231"):
        assert leaked not in log, (leaked, [line for line in access if leaked in line])


def test_serve_refuses_more_workers_than_connections(tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        return  # SQLite has no connection limit
    out = subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "serve", "--workers", "4", "--port", "1"],
        cwd=tmp_path,
        env=_env(tmp_path, db_url, FENQI_DB_POOL_SIZE="40", FENQI_DB_MAX_OVERFLOW="20"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "4 worker(s) × 60 connections" in out.stderr and "max_connections" in out.stderr
