"""Events reach the shop signed, through the outbox and the worker; conversion to installments;
a staff reversal with a reason (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.webhooks.endpoints import endpoint_resolver
from fenqi.webhooks.signing import verify
from fenqi.webhooks.worker import deliver_due
from support.api_server import id_number, running_api
from webhooks.webhook_receiver import Receiver


def test_a_shop_cannot_point_webhooks_at_the_platforms_network(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """With private networks refused (the production default), onboarding a shop whose webhook
    URL names a non-public address is refused whole: no shop, no key, no endpoint."""
    with running_api(db_url, models_dir, tmp_path, private_webhooks=False) as api:
        admin = api.staff_token()
        shop = {"id": "m_ssrf", "name": "SSRF", "category": "books"}
        for url in (
            "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
            "http://[::1]:5432/",
            "https://db.internal/x",
        ):
            r = api.post("/v1/ops/merchants", admin, {**shop, "webhook_url": url})
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "unsafe_webhook_url" and "public" in r.json()["detail"]
        r = api.post("/v1/ops/merchants", admin, {**shop, "webhook_url": "https://shop.example/h"})
        assert r.status_code == 201, r.text  # the id was never taken


def test_events_are_delivered_signed(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        with running_api(db_url, models_dir, tmp_path) as api:
            admin = api.staff_token()
            r = api.post(
                "/v1/ops/merchants",
                admin,
                {
                    "id": "m_hooks",
                    "name": "Hooks",
                    "category": "books",
                    "webhook_url": receiver.url,
                },
            )
            shop, secret = r.json()["api_key"], r.json()["webhook_secret"]
            app = api.apply(shop, id_number(), "13500000005").json()
            order = api.post(
                "/v1/orders",
                shop,
                {
                    "credit_account_id": app["credit_account_id"],
                    "amount_fen": 5_000,
                    "terms": 0,
                    "currency": "CNY",
                    "merchant_order_ref": "w1",
                },
            ).json()
            api.post(f"/v1/orders/{order['id']}/captures", shop, {})
            with httpx.Client(timeout=10) as client:
                stats = deliver_due(
                    api.ctx.engine,
                    api.clock,
                    endpoint_resolver(api.ctx.keys),
                    client,
                    settings=api.ctx.settings,
                )
            assert stats.delivered == 3, stats
            types = []
            for req in receiver.requests:
                headers = {k.lower(): v for k, v in req.headers.items()}
                assert verify(
                    secret.encode(),
                    headers["fenqi-signature"],
                    req.body,
                    int(api.clock.now().timestamp()),
                )
                assert not verify(
                    b"another-secret-0123456789",
                    headers["fenqi-signature"],
                    req.body,
                    int(api.clock.now().timestamp()),
                )
                types.append(json.loads(req.body)["type"])
            assert types == ["application.decided", "order.authorized", "order.captured"]
            listed = api.get("/v1/ops/webhooks/deliveries", admin, status="delivered").json()
            assert len(listed["items"]) == 3
            event_id = json.loads(receiver.requests[0].body)["id"]
            replay = api.post(f"/v1/ops/webhooks/events/{event_id}/replay", admin)
            assert replay.status_code == 201, replay.text
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        time.sleep(0)


def test_conversion_and_reversal(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant()
        app = api.apply(shop, id_number(), "13500000006").json()
        account, customer = app["credit_account_id"], app["customer_id"]
        order = api.post(
            "/v1/orders",
            shop,
            {
                "credit_account_id": account,
                "amount_fen": 120_000,
                "terms": 0,
                "currency": "CNY",
                "merchant_order_ref": "c1",
            },
        ).json()
        api.post(f"/v1/orders/{order['id']}/captures", shop, {})
        shopper = api.shopper_token(shop, customer)
        plan = api.get(f"/v1/me/accounts/{account}/plans", shopper).json()[0]
        assert plan["kind"] == "cycle" and plan["fee_fen"] == 0
        q = api.post(
            f"/v1/me/accounts/{account}/conversions/quote",
            shopper,
            {"plan_ids": [plan["id"]], "terms": 3},
        )
        assert q.status_code == 200, q.text
        fee = q.json()["quote"]["total_fee_fen"]
        assert fee > 0 and q.json()["quote"]["annualized_rate_bp"] > 0
        c = api.post(
            f"/v1/me/accounts/{account}/conversions",
            shopper,
            {"plan_ids": [plan["id"]], "terms": 3},
        )
        assert c.status_code == 201, c.text
        plans = {p["id"]: p for p in api.get(f"/v1/me/accounts/{account}/plans", shopper).json()}
        assert plans[plan["id"]]["status"] == "converted"
        new = plans[c.json()["plan_id"]]
        assert (new["terms"], new["principal_fen"], new["fee_fen"]) == (3, 120_000, fee)
        summary = api.get(f"/v1/me/accounts/{account}", shopper).json()
        assert summary["owed_fen"] == 120_000 + fee
        again = api.post(
            f"/v1/me/accounts/{account}/conversions",
            shopper,
            {"plan_ids": [plan["id"]], "terms": 3},
        )
        assert again.status_code == 422 and again.json()["code"] == "not_convertible"

        pay = api.post(f"/v1/me/accounts/{account}/repayments", shopper, {"amount_fen": 10_000})
        assert pay.status_code == 201
        owed_before = api.get(f"/v1/me/accounts/{account}", shopper).json()["owed_fen"]
        ledger = api.get(f"/v1/me/accounts/{account}/ledger", shopper, limit=200).json()["items"]
        repayment_entry = ledger[-1]["entry_id"]
        finance = api.staff_token("fiona", "finance")
        support = api.staff_token("sam", "support")
        # a bare ledger reversal of a repayment is refused: plans would no longer match
        bare = api.post(
            f"/v1/ops/ledger/entries/{repayment_entry}/reverse", finance, {"reason": "bounced"}
        )
        assert bare.status_code == 409 and bare.json()["code"] == "use_business_operation"
        [paid] = api.get(f"/v1/ops/accounts/{account}/repayments", finance).json()["items"]
        path = f"/v1/ops/accounts/{account}/repayments/{paid['id']}/reverse"
        assert api.post(path, support, {"reason": "bounced"}).status_code == 403
        rev = api.post(path, finance, {"reason": "payment bounced"})
        assert rev.status_code == 201, rev.text
        assert api.get(f"/v1/me/accounts/{account}", shopper).json()["owed_fen"] == (
            owed_before + 10_000
        )  # owed again, exactly where it had been paid
        twice = api.post(path, finance, {"reason": "again"})
        assert twice.status_code == 409 and twice.json()["code"] == "already_reversed"
        # one error vocabulary (issue 22): an entry that does not exist is `not_found` (404)
        # from Fenqi-Version 2026-12-03; the default version answers as before
        missing = "/v1/ops/ledger/entries/99999999/reverse"
        old = api.post(missing, finance, {"reason": "typo"})
        assert (old.status_code, old.json()["code"]) == (400, "entry_not_found")
        new = api.http.post(
            missing,
            json={"reason": "typo"},
            headers={
                "Authorization": f"Bearer {finance}",
                "Idempotency-Key": "missing-entry-new",
                "Fenqi-Version": "2026-12-03",
            },
        )
        assert (new.status_code, new.json()["code"]) == (404, "not_found"), new.text
        assert new.json()["title"] == "not found" and new.json()["status"] == 404
        with api.ctx.engine.connect() as conn:
            assert trial_balance(conn).balanced and reconcile(conn) == []
            assert deep_reconcile(conn).ok, deep_reconcile(conn).differences
