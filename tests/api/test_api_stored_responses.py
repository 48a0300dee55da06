"""Stored idempotent responses (issue 25 items 4 and 8), over HTTP on SQLite and PostgreSQL:
no secret in clear in `idempotency_keys`, a replay still works after `fenqi rotate-keys` has
retired the old key, responses expire, and staff keys are scoped by actor and target."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fenqi.api.deps import idempotent
from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.ledger.entry import IdempotencyConflict
from fenqi.privacy.crypto import KeyRing
from fenqi.settings import Settings
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.parties import idempotency_keys
from support.api_server import Api, id_number, running_api


def _bodies(api: Api) -> list[str]:
    with api.ctx.engine.connect() as conn:
        return [b or "" for b in conn.execute(select(idempotency_keys.c.response_body)).scalars()]


def _onboard(api: Api, admin: str, key: str) -> Any:
    return api.post(
        "/v1/ops/merchants",
        admin,
        {
            "id": "m_sealed",
            "name": "Sealed shop",
            "category": "general",
            "webhook_url": "https://shop.example/hooks",
        },
        key=key,
    )


def test_secrets_are_sealed_and_replay_after_rotation(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    # the CLI reads the wall clock (and purges responses older than the window): start today
    today = date.today()
    with running_api(db_url, models_dir, tmp_path, today) as api:
        admin = api.staff_token()
        first = _onboard(api, admin, "onboard-1")
        assert first.status_code == 201, first.text
        shop_key, webhook_secret = first.json()["api_key"], first.json()["webhook_secret"]
        assert webhook_secret
        app = api.apply(shop_key, id_number(seq="771"), "13811112222").json()
        session = api.post(
            "/v1/shopper-sessions", shop_key, {"customer_id": app["customer_id"]}, key="sess-1"
        )
        assert session.status_code == 201, session.text
        token = session.json()["token"]
        bodies = _bodies(api)
        for secret in (shop_key, webhook_secret, token):
            assert all(secret not in b for b in bodies), [b[:300] for b in bodies if secret in b]
        assert sum(b.startswith("sealed:") for b in bodies) >= 2
        again = _onboard(api, admin, "onboard-1")
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["api_key"] == shop_key
        ring = api.ctx.keys

    # rotate: a new active key k2, then retire k1 altogether
    new_key = base64.b64encode(os.urandom(32)).decode()
    old = ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in ring.keys.items())
    blind = base64.b64encode(ring.blind_key).decode()
    env = {
        **os.environ,
        "FENQI_DATABASE_URL": db_url,
        "FENQI_DATA_KEYS": f"{old},k2:{new_key}",
        "FENQI_DATA_KEY_ACTIVE": "k2",
        "FENQI_BLIND_INDEX_KEY": blind,
    }
    out = subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "re-sealed" in out.stdout
    only_new = tmp_path / "k2-only"
    only_new.mkdir()
    retired = KeyRing({"k2": base64.b64decode(new_key)}, "k2", ring.blind_key)
    (only_new / "keys.json").write_text(retired.to_json())
    (only_new / "keys.json").chmod(0o600)
    with running_api(db_url, models_dir, only_new, today) as api:
        assert api.ctx.keys.keys.keys() == {"k2"}
        admin = api.staff_token()
        replay = _onboard(api, admin, "onboard-1")
        assert replay.status_code == 201, replay.text
        assert replay.json()["api_key"] == shop_key
        assert all(shop_key not in b for b in _bodies(api))

        # after the window the stored response is gone and the key runs anew
        api.clock.advance(timedelta(hours=api.ctx.settings.idempotency_window_hours + 1))
        reused = _onboard(api, api.staff_token(), "onboard-1")
        assert reused.status_code == 409 and reused.json()["code"] == "merchant_exists", reused.text


def test_staff_keys_are_scoped_by_actor_and_target(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shops = {m: api.merchant(m) for m in ("m_one", "m_two")}
        for n, (m, key) in enumerate(shops.items()):
            app = api.apply(key, id_number(seq=f"8{n}1"), f"1380000{n}333").json()
            assert app["outcome"] == "approved", app
            r = api.post(
                "/v1/orders",
                key,
                {
                    "credit_account_id": app["credit_account_id"],
                    "amount_fen": 10_000,
                    "currency": "CNY",
                    "terms": 0,
                    "merchant_order_ref": f"{m}-1",
                    "capture": True,
                },
            )
            assert r.status_code == 201, r.text
        alice = api.staff_token("alice", "finance")
        bob = api.staff_token("bob", "finance")
        one = api.post("/v1/ops/merchants/m_one/payouts", alice, key="payout-1")
        two = api.post("/v1/ops/merchants/m_two/payouts", bob, key="payout-1")
        assert one.status_code == 201, one.text
        assert two.status_code == 201, two.text
        assert one.json()["paid_fen"] > 0 and two.json()["paid_fen"] > 0
        # the same user's same key for another shop is another payout, not a replay
        three = api.post("/v1/ops/merchants/m_two/payouts", alice, key="payout-1")
        assert three.status_code == 422 and three.json()["code"] == "nothing_to_pay", three.text
        with api.ctx.engine.connect() as conn:
            scopes = set(conn.execute(select(idempotency_keys.c.scope)).scalars())
        assert any(s.startswith("staff:") and "payout:m_one" in s for s in scopes)


def test_a_key_collision_is_not_stored(db_url: str, tmp_path: Path) -> None:
    """A ledger client id taken by another request is a collision of keys, not this
    request's answer: the 409 is not stored, and the key works once the collision is gone."""
    engine = make_engine(db_url)
    create_all(engine)
    settings = Settings(database_url=db_url, keys_file=tmp_path / "keys.json")
    ctx = build_context(settings, FixedClock.on(date(2026, 1, 2)), engine)
    calls: list[int] = []

    def colliding(conn: Any) -> tuple[int, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise IdempotencyConflict("client id taken by another request")
        return 201, {"ok": True}

    first = idempotent(ctx, "staff:1:x", "k", "POST x", None, colliding)
    assert first.status_code == 409
    second = idempotent(ctx, "staff:1:x", "k", "POST x", None, colliding)
    assert second.status_code == 201 and len(calls) == 2
    engine.dispose()
