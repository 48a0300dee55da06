"""Staff sign-in (issue 25 item 9, and item 11c's Secure cookies), over HTTP on SQLite and
PostgreSQL: failures are audited, throttled per account and per address with the counts in
the database, a burst of wrong passwords costs a handful of hashes, and cookies are Secure by
default."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from fenqi.store.schema.privacy import audit_log
from support.api_server import STAFF_PASSWORD, Api, running_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _login(api: Api, username: str, password: str) -> httpx.Response:
    return api.http.post("/v1/ops/sessions", json={"username": username, "password": password})


def _failed_audits(api: Api) -> list[dict[str, object]]:
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "staff.login_failed")
        ).scalars()
        return [json.loads(r) for r in rows]


def test_api_logins_are_throttled_per_account_and_address_and_audited(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.staff_token("vic", "finance")
        for _ in range(api.ctx.settings.login_failures_max):
            r = _login(api, "vic", "wrong password 123")
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        locked = _login(api, "vic", STAFF_PASSWORD)  # even the right password now waits
        assert locked.status_code == 429 and locked.json()["code"] == "too_many_attempts"
        assert int(locked.headers["Retry-After"]) > 0
        audits = _failed_audits(api)
        assert [a["reason"] for a in audits] == ["wrong_password"] * 5 + ["throttled"]
        assert all(a["username"] == "vic" and a["address"] == "127.0.0.1" for a in audits)
        assert all("wrong password" not in str(a) for a in audits)  # never the password

        api.clock.advance(timedelta(minutes=api.ctx.settings.login_lock_minutes + 1))
        assert _login(api, "vic", STAFF_PASSWORD).status_code == 201
        # a success clears the account's count: one more failure does not lock it
        assert _login(api, "vic", "wrong password 123").status_code == 401
        assert _login(api, "vic", STAFF_PASSWORD).status_code == 201

        # per address: failures over many names from one address lock the address
        api.ctx.settings.login_address_failures_max = 4
        for n in range(3):
            assert _login(api, f"nobody{n}", "guess guess guess").status_code == 401
        assert _login(api, "nobody9", "guess guess guess").status_code == 429
        assert _login(api, "vic", STAFF_PASSWORD).status_code == 429


def test_a_burst_of_wrong_passwords_costs_a_handful_of_hashes(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.staff_token("wen", "finance")
        with ThreadPoolExecutor(max_workers=30) as pool:
            codes = list(
                pool.map(lambda _: _login(api, "wen", "not it at all").status_code, range(30))
            )
        assert set(codes) <= {401, 429}
        # each 401 is a password checked; the lock stops the rest before any hashing
        limit = api.ctx.settings.login_failures_max
        assert limit <= codes.count(401) <= limit + 1, codes
        assert len(_failed_audits(api)) == 30


def test_console_login_throttled_and_cookies_secure_by_default(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path, cookie_secure=True) as api:
        api.staff_token("cara", "finance")
        client = httpx.Client(base_url=api.base, timeout=60)
        form = client.get("/console/login")
        assert "secure" in form.headers["set-cookie"].lower()  # the CSRF cookie
        token = CSRF.search(form.text)
        assert token
        # a Secure cookie is not sent back over plain http by a client: send it by hand
        cookie = {"Cookie": f"fenqi_csrf={form.cookies['fenqi_csrf']}"}
        data = {"username": "cara", "password": "nope nope nope", "csrf_token": token.group(1)}
        for _ in range(api.ctx.settings.login_failures_max):
            r = client.post("/console/login", data=data, headers=cookie)
            assert r.status_code == 401, r.text
        r = client.post("/console/login", data=data | {"password": STAFF_PASSWORD}, headers=cookie)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
        assert all(a["via"] == "console" for a in _failed_audits(api))
        api.clock.advance(timedelta(minutes=api.ctx.settings.login_lock_minutes + 1))
        ok = client.post("/console/login", data=data | {"password": STAFF_PASSWORD}, headers=cookie)
        assert ok.status_code == 303, ok.text
        session_cookie = ok.headers["set-cookie"].lower()
        assert "secure" in session_cookie and "httponly" in session_cookie
