"""Who may do what over HTTP, idempotency, errors, and personal data never stored or logged
in plaintext (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from fenqi.privacy.masking import install_log_redaction
from support.api_server import Api, id_number, running_api


def _approved(api: Api, key: str, idn: str, phone: str) -> tuple[int, int]:
    r = api.apply(key, idn, phone)
    assert r.status_code == 201 and r.json()["outcome"] == "approved", r.text
    return r.json()["credit_account_id"], r.json()["customer_id"]


def test_isolation_between_shops_shoppers_and_roles(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop_a, shop_b = api.merchant("m_a"), api.merchant("m_b")
        acct_a, cust_a = _approved(api, shop_a, id_number(seq="111"), "13800000001")
        acct_b, cust_b = _approved(api, shop_b, id_number(seq="222"), "13800000002")
        order = api.post(
            "/v1/orders",
            shop_a,
            {
                "credit_account_id": acct_a,
                "amount_fen": 10_000,
                "terms": 0,
                "currency": "CNY",
                "merchant_order_ref": "x",
            },
        )
        assert order.status_code == 201, order.text
        oid = order.json()["id"]
        # shop B cannot see, capture or refund shop A's order, nor act for A's shopper
        assert api.get(f"/v1/orders/{oid}", shop_b).status_code == 404
        assert api.post(f"/v1/orders/{oid}/captures", shop_b, {}).status_code == 404
        assert (
            api.post(
                "/v1/quotes", shop_b, {"credit_account_id": acct_a, "amount_fen": 100}
            ).status_code
            == 404
        )
        assert api.post("/v1/shopper-sessions", shop_b, {"customer_id": cust_a}).status_code == 404
        assert api.get("/v1/orders", shop_b).json()["items"] == []
        # shopper B cannot read shopper A's account
        token_b = api.shopper_token(shop_b, cust_b)
        assert api.get(f"/v1/me/accounts/{acct_a}", token_b).status_code == 404
        assert api.get(f"/v1/me/accounts/{acct_b}", token_b).status_code == 200
        # a bad or missing key is 401, as problem+json
        r = api.get("/v1/orders", "sk_nope")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        # roles: support may freeze but not change limits or reveal identity; risk may change
        support = api.staff_token("sue", "support")
        risk = api.staff_token("rick", "risk_analyst")
        r = api.post(
            f"/v1/ops/accounts/{acct_a}/limit", support, {"limit_fen": 100_000, "reason": "x"}
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (
            api.post(
                f"/v1/ops/customers/{cust_a}/reveal", support, {"reason": "curious"}
            ).status_code
            == 403
        )
        r = api.post(f"/v1/ops/accounts/{acct_a}/freeze", support, {"reason": "reported stolen"})
        assert r.status_code == 200 and r.json()["status"] == "frozen"
        declined = api.post(
            "/v1/orders",
            shop_a,
            {
                "credit_account_id": acct_a,
                "amount_fen": 100,
                "currency": "CNY",
                "terms": 0,
                "merchant_order_ref": "y",
            },
        )
        assert declined.status_code == 402 and declined.json()["code"] == "account_not_active"
        r = api.post(
            f"/v1/ops/accounts/{acct_a}/limit",
            risk,
            {"limit_fen": 100_000, "reason": "income verified"},
        )
        assert r.status_code == 200 and r.json()["limit_fen"] == 100_000
        audit = api.get("/v1/ops/audit", api.staff_token(), target_kind="credit_account").json()
        actions = [(e["action"], e["reason"]) for e in audit["items"]]
        assert ("account.freeze", "reported stolen") in actions
        assert ("account.change_limit", "income verified") in actions


def test_idempotency_replay_conflict_and_validation(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop = api.merchant()
        acct, _ = _approved(api, shop, id_number(), "13900000009")
        body = {
            "credit_account_id": acct,
            "amount_fen": 10_000,
            "terms": 0,
            "currency": "CNY",
            "merchant_order_ref": "r1",
        }
        first = api.post("/v1/orders", shop, body, key="k-1")
        again = api.post("/v1/orders", shop, body, key="k-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert len(api.get("/v1/orders", shop).json()["items"]) == 1  # booked once
        other = api.post("/v1/orders", shop, {**body, "amount_fen": 10_001}, key="k-1")
        assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
        missing = api.http.post(
            "/v1/orders", json=body, headers={"Authorization": f"Bearer {shop}"}
        )
        assert missing.status_code == 400
        assert missing.json()["code"] == "idempotency_key_required"
        bad = api.post("/v1/orders", shop, {**body, "amount_fen": -5})
        assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
        assert "amount_fen" in bad.json()["detail"]
        bad_id = api.apply(shop, "110105199003071234", "13900000010")  # wrong check digit
        assert bad_id.status_code == 422 and "id_number" in bad_id.json()["detail"]
        assert "110105199003071234" not in bad_id.text
        spec = api.http.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        assert api.http.get("/docs").status_code == 200


def test_no_plaintext_identity_in_database_or_logs(
    db_url: str, models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    idn, phone = id_number(birth="19851224", seq="456"), "13712345678"
    install_log_redaction(logging.getLogger())
    caplog.set_level(logging.DEBUG)
    with running_api(db_url, models_dir, tmp_path) as api:
        shop = api.merchant()
        _acct, cust = _approved(api, shop, idn, phone)
        logging.getLogger("fenqi.test").info("shopper %s called from %s", idn, phone)
        staff = api.staff_token("carl", "collector")
        found = api.get("/v1/ops/customers", staff, phone=phone).json()["items"]
        assert [c["id"] for c in found] == [cust]
        assert found[0]["phone"] == "137****5678" and idn not in str(found)
        reveal = api.post(
            f"/v1/ops/customers/{cust}/reveal", staff, {"reason": "arrears call"}, key="reveal-1"
        )
        assert reveal.json()["phone"] == phone
        again = api.post(
            f"/v1/ops/customers/{cust}/reveal", staff, {"reason": "arrears call"}, key="reveal-1"
        )  # the replay is answered from an encrypted copy
        assert again.json() == reveal.json()
        dump: list[str] = []
        meta = MetaData()
        meta.reflect(api.ctx.engine)
        with api.ctx.engine.connect() as conn:
            for table in meta.sorted_tables:
                dump.extend(str(row) for row in conn.execute(select(table)))
        text = "\n".join(dump)
        assert idn not in text and phone not in text and "张三" not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert idn not in logged and phone not in logged
    assert "137****5678" in logged


def test_longest_shop_id_can_take_applications(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop = api.merchant("m_" + "x" * 29)  # the longest id a shop may have (31 characters)
        r = api.apply(shop, id_number(seq="333"), "13800000033")
        assert r.status_code == 201, r.text
