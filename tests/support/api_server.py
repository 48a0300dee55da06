"""A real fenqi API over HTTP for tests: uvicorn in a thread on a free port, a fixed clock,
a model trained once per test session, and helpers to act as a shop, a shopper and staff."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fenqi.api.app import create_app
from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.settings import Settings
from fenqi.store.engine import create_all, make_engine

STAFF_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_api(
    db_url: str,
    models_dir: Path,
    tmp: Path,
    start: date = date(2026, 1, 2),
    *,
    private_webhooks: bool = True,  # the tests' receivers listen on 127.0.0.1
    cookie_secure: bool = False,
    test_db_url: str | None = None,  # the test book (test-mode keys); set up when given
) -> Iterator[Api]:
    settings = Settings(
        database_url=db_url,
        test_database_url=test_db_url,
        test_mode=test_db_url is not None,
        models_dir=models_dir,
        keys_file=tmp / "keys.json",
        webhook_allow_private_networks=private_webhooks,
        cookie_secure=cookie_secure,  # the tests' clients speak plain http
    )
    clock = FixedClock.on(start)
    engine = make_engine(db_url)
    create_all(engine)
    ctx = build_context(settings, clock, engine)
    if test_db_url is not None:
        from fenqi.store.books import claim_book

        assert ctx.test_mode is not None
        create_all(ctx.test_mode.engine)
        claim_book(engine, "live", clock)
        claim_book(ctx.test_mode.engine, "test", clock)
    app = create_app(ctx)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "API did not start"
    try:
        yield Api(f"http://127.0.0.1:{port}", ctx, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        if test_db_url is not None and ctx.test_mode is not None:
            ctx.test_mode.engine.dispose()


class Api:
    def __init__(self, base: str, ctx: Any, clock: FixedClock) -> None:
        self.base = base
        self.ctx = ctx
        self.clock = clock
        self.http = httpx.Client(base_url=base, timeout=60)

    def post(
        self, path: str, token: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key or uuid.uuid4().hex}
        return self.http.post(path, json=body, headers=headers)

    def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        return self.http.get(path, headers={"Authorization": f"Bearer {token}"}, params=params)

    def staff_token(self, username: str = "admin", role: str = "admin") -> str:
        from fenqi.privacy.staff import create_staff, get_staff_by_username

        with self.ctx.engine.begin() as conn:
            if get_staff_by_username(conn, username) is None:
                create_staff(conn, self.clock, username, STAFF_PASSWORD, role)
        r = self.http.post(
            "/v1/ops/sessions", json={"username": username, "password": STAFF_PASSWORD}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def merchant(
        self,
        merchant_id: str = "m_shop",
        category: str = "electronics",
        webhook_url: str | None = None,
    ) -> str:
        admin = self.staff_token()
        r = self.post(
            "/v1/ops/merchants",
            admin,
            {
                "id": merchant_id,
                "name": merchant_id,
                "category": category,
                "webhook_url": webhook_url,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    def apply(
        self, api_key: str, id_number: str, phone: str, product: str = "huabei", **behaviour: Any
    ) -> httpx.Response:
        body = {
            "product": product,
            "name": "张三",
            "id_number": id_number,
            "phone": phone,
            "income_band": "10k_20k",
            "consents": [
                {"kind": "bureau_inquiry", "text_version": "2026-01", "scope": "credit decision"},
                {"kind": "shopping_data", "text_version": "2026-01", "scope": "orders and returns"},
            ],
            "behaviour": {
                "account_age_days": 2000,
                "orders_12m": 40,
                "spend_12m_fen": 3_000_000,
                "return_rate_bp": 300,
                "other_lenders": 0,
                **behaviour,
            },
        }
        return self.post("/v1/applications", api_key, body)

    def shopper_token(self, api_key: str, customer_id: int) -> str:
        r = self.post("/v1/shopper-sessions", api_key, {"customer_id": customer_id})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def id_number(birth: str = "19900307", seq: str = "123") -> str:
    """A valid resident ID number (GB 11643 check digit) for tests."""
    from fenqi.privacy.identity import check_char

    body = "110105" + birth + seq
    return body + check_char(body)
