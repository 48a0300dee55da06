"""A shop manages its own integration over real HTTP, on SQLite and PostgreSQL: API keys rolled
with an overlap it chooses, listed masked with last use, revoked at once; its webhook endpoint
created with a secret shown once, subscribed to chosen events, its secret rotated with both
signatures sent during the overlap; and the `Fenqi-Version` header validated and echoed."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from fenqi.api import versioning
from fenqi.credit.checkout import RiskVerdict
from fenqi.webhooks.endpoints import endpoint_resolver
from fenqi.webhooks.signing import parse_header, verify
from fenqi.webhooks.worker import deliver_due
from support.api_server import Api, id_number, running_api
from webhooks.webhook_receiver import Receiver


def _delete(api: Api, path: str, token: str) -> httpx.Response:
    return api.http.delete(path, headers={"Authorization": f"Bearer {token}"})


def test_api_keys_roll_with_an_overlap_list_masked_and_revoke(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        old = api.merchant("m_keys")
        other_shop = api.merchant("m_other")
        assert api.get("/v1/products", old).status_code == 200  # records its last use

        # more than 7 days of overlap is refused, naming the field, and nothing is made
        r = api.post("/v1/api-keys", old, {"expire_others_in_hours": 169})
        assert r.status_code == 422 and r.json()["field"] == "expire_others_in_hours", r.text
        assert len(api.get("/v1/api-keys", old).json()["items"]) == 1

        r = api.post("/v1/api-keys", old, {"expire_others_in_hours": 2})
        assert r.status_code == 201, r.text
        new = r.json()["api_key"]
        assert new.startswith("sk_") and new != old
        listed = api.get("/v1/api-keys", new)
        assert listed.status_code == 200, listed.text
        assert new not in listed.text and old not in listed.text  # shown once, masked after
        items = listed.json()["items"]
        assert [i["status"] for i in items] == ["active", "expiring"]  # newest first
        old_id, new_id = items[1]["id"], items[0]["id"]
        assert items[1]["last_used_at"] is not None
        assert items[1]["expires_at"] == (api.clock.now() + timedelta(hours=2)).isoformat()
        assert items[1]["masked"] == old[:10] + "…"

        # the old key works through the overlap and stops at its end
        api.clock.advance(timedelta(hours=2) - timedelta(seconds=1))
        assert api.get("/v1/products", old).status_code == 200
        api.clock.advance(timedelta(seconds=1))
        r = api.get("/v1/products", old)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
        assert api.get("/v1/products", new).status_code == 200

        # the shop's last usable key cannot be revoked (it would lock itself out)
        r = _delete(api, f"/v1/api-keys/{new_id}", new)
        assert r.status_code == 409 and r.json()["code"] == "last_api_key", r.text
        # another shop cannot see or revoke it
        r = _delete(api, f"/v1/api-keys/{new_id}", other_shop)
        assert r.status_code == 404, r.text
        third = api.post("/v1/api-keys", new, {}).json()["api_key"]  # others untouched
        assert api.get("/v1/products", new).status_code == 200
        r = _delete(api, f"/v1/api-keys/{new_id}", third)
        assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
        assert api.get("/v1/products", new).status_code == 401  # at once
        statuses = {i["id"]: i["status"] for i in api.get("/v1/api-keys", third).json()["items"]}
        assert statuses[old_id] == "expired" and statuses[new_id] == "revoked"


def _deliver(api: Api) -> int:
    with httpx.Client(timeout=10) as client:
        stats = deliver_due(
            api.ctx.engine,
            api.clock,
            endpoint_resolver(api.ctx.keys),
            client,
            settings=api.ctx.settings,
        )
    return stats.delivered


def _order_captured(api: Api, shop: str, account: int, ref: str) -> None:
    body: dict[str, Any] = {
        "credit_account_id": account,
        "amount_fen": 5_000,
        "terms": 0,
        "currency": "CNY",
        "merchant_order_ref": ref,
    }
    order = api.post("/v1/orders", shop, body)
    assert order.status_code == 201, order.text
    r = api.post(f"/v1/orders/{order.json()['id']}/captures", shop, {})
    assert r.status_code in (200, 201), r.text


def test_shop_sets_its_webhook_endpoint_events_and_rotates_its_secret(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        with running_api(db_url, models_dir, tmp_path) as api:
            api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
            shop = api.merchant("m_selfserve")
            r = api.post(
                "/v1/webhook-endpoints", shop, {"url": receiver.url, "events": ["order.nope"]}
            )
            assert r.status_code == 422 and r.json()["field"] == "events", r.text
            r = api.post(
                "/v1/webhook-endpoints", shop, {"url": receiver.url, "events": ["order.captured"]}
            )
            assert r.status_code == 201, r.text
            endpoint, secret = r.json()["id"], r.json()["secret"]
            assert endpoint.startswith("we_") and secret.startswith("whsec_")
            again = api.post("/v1/webhook-endpoints", shop, {"url": receiver.url})
            assert again.status_code == 409, again.text
            assert again.json()["code"] == "webhook_endpoint_exists"
            listed = api.get("/v1/webhook-endpoints", shop)
            assert secret not in listed.text
            assert listed.json()["items"][0]["events"] == ["order.captured"]

            # only the subscribed type is delivered: application.decided and order.authorized
            # are recorded as events but get no delivery
            account = api.apply(shop, id_number(), "13500000021").json()["credit_account_id"]
            _order_captured(api, shop, account, "o1")
            assert _deliver(api) == 1
            (first,) = receiver.requests
            assert json.loads(first.body)["type"] == "order.captured"
            now = int(api.clock.now().timestamp())
            header = {k.lower(): v for k, v in first.headers.items()}["fenqi-signature"]
            assert verify(secret.encode(), header, first.body, now)

            # rotate with a one-hour overlap: both signatures on each delivery meanwhile
            r = api.post(
                f"/v1/webhook-endpoints/{endpoint}/rotate-secret", shop, {"overlap_hours": 1}
            )
            assert r.status_code == 200, r.text
            new_secret = r.json()["secret"]
            assert new_secret != secret and r.json()["previous_secret_expires_at"]
            _order_captured(api, shop, account, "o2")
            assert _deliver(api) == 1
            second = receiver.requests[-1]
            header = {k.lower(): v for k, v in second.headers.items()}["fenqi-signature"]
            parsed = parse_header(header)
            assert parsed is not None and len(parsed[1]) == 2, header
            now = int(api.clock.now().timestamp())
            assert verify(secret.encode(), header, second.body, now)
            assert verify(new_secret.encode(), header, second.body, now)

            # after the overlap: the new secret only
            api.clock.advance(timedelta(hours=1))
            _order_captured(api, shop, account, "o3")
            assert _deliver(api) == 1
            third = receiver.requests[-1]
            header = {k.lower(): v for k, v in third.headers.items()}["fenqi-signature"]
            now = int(api.clock.now().timestamp())
            assert verify(new_secret.encode(), header, third.body, now)
            assert not verify(secret.encode(), header, third.body, now)
            shown = api.get(f"/v1/webhook-endpoints/{endpoint}", shop).json()
            assert shown["previous_secret_expires_at"] is None

            # every event type from now on
            r = api.post(f"/v1/webhook-endpoints/{endpoint}/events", shop, {"events": ["*"]})
            assert r.status_code == 200 and r.json()["events"] == ["*"], r.text
            other = api.merchant("m_nosy")
            assert _delete(api, f"/v1/webhook-endpoints/{endpoint}", other).status_code == 404
            assert _delete(api, f"/v1/webhook-endpoints/{endpoint}", shop).status_code == 204
            assert api.get("/v1/webhook-endpoints", shop).json() == {"items": []}
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        time.sleep(0)


def test_webhook_endpoint_urls_must_be_public(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path, private_webhooks=False) as api:
        shop = api.merchant("m_ssrf")
        for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/", "http://db.internal/"):
            r = api.post("/v1/webhook-endpoints", shop, {"url": url})
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "unsafe_webhook_url" and r.json()["field"] == "url"
        assert api.get("/v1/webhook-endpoints", shop).json() == {"items": []}


def test_fenqi_version_header_is_validated_and_echoed(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop = api.merchant("m_versions")
        auth = {"Authorization": f"Bearer {shop}"}
        r = api.http.get("/v1/products", headers=auth)
        assert r.headers["Fenqi-Version"] == versioning.DEFAULT_VERSION
        assert "Deprecation" not in r.headers
        r = api.http.get("/v1/products", headers={**auth, "Fenqi-Version": "2026-12-01"})
        assert r.status_code == 200 and r.headers["Fenqi-Version"] == "2026-12-01"
        for bad in ("2020-01-01", "latest"):
            r = api.http.post(
                "/v1/api-keys",
                json={},
                headers={**auth, "Fenqi-Version": bad, "Idempotency-Key": f"v-{bad}"},
            )
            assert r.status_code == 400, r.text
            body = r.json()
            assert body["code"] == "unsupported_version" and body["field"] == "Fenqi-Version"
            assert body["request_id"] == r.headers["X-Request-Id"]
        assert len(api.get("/v1/api-keys", shop).json()["items"]) == 1  # nothing was made
        assert "Fenqi-Version" not in api.http.get("/healthz").headers
        spec = api.http.get("/openapi.json").json()
        declared = spec["paths"]["/v1/api-keys"]["post"]["parameters"]
        assert any(p["name"] == "Fenqi-Version" and p["in"] == "header" for p in declared)

        # a deprecated version still works, and says so on every response
        old = versioning.Version(
            "2026-06-01",
            "a test version",
            deprecated_on=api.clock.today(),
            sunset_on=api.clock.today() + timedelta(days=90),
        )
        versioning.VERSIONS[old.name] = old
        try:
            r = api.http.get("/v1/products", headers={**auth, "Fenqi-Version": old.name})
            assert r.status_code == 200 and r.headers["Fenqi-Version"] == old.name
            assert r.headers["Deprecation"].startswith("@")
            assert r.headers["Sunset"].endswith("GMT")
            assert 'rel="deprecation"' in r.headers["Link"]
        finally:
            del versioning.VERSIONS[old.name]
