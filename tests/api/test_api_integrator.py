"""What a shop integrator expects of the merchant and shopper API, over real HTTP on SQLite and
PostgreSQL: reads never write, orders state their currency, every plan, capture and refund of
an order is its own resource, lookups by the shop's reference, filters and newest-first lists."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from fenqi.store.schema.ledger import ledger_accounts
from support.api_server import Api, id_number, running_api


def _ledger_accounts(api: Api) -> int:
    with api.ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_accounts)).scalar_one())


def test_settlement_is_a_read_and_refuses_unknown_currencies(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_reader")
        before = _ledger_accounts(api)
        r = api.get("/v1/settlement", key, currency="XYZ")
        assert r.status_code == 422 and r.json()["code"] == "unknown_currency", r.text
        assert r.json()["field"] == "currency"
        ok = api.get("/v1/settlement", key, currency="CNY")
        assert ok.status_code == 200, ok.text
        assert ok.json()["owed_fen"] == 0 and ok.json()["orders"] == 0
        # a shop with no payable yet: nothing was opened in the ledger by asking
        assert _ledger_accounts(api) == before


def _order(account: int, ref: str, currency: str = "CNY", **extra: object) -> dict[str, object]:
    return {
        "credit_account_id": account,
        "amount_fen": 10_000,
        "currency": currency,
        "terms": 0,
        "merchant_order_ref": ref,
        **extra,
    }


def _approve_all(api: Api) -> None:
    from fenqi.credit.checkout import RiskVerdict

    api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")


def test_orders_state_their_currency_and_it_must_match(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: a CNY shop's 10,000-fen order on a USD product account became a $100
    authorization, and a Chinese-ID applicant through a CNY shop was approved for a USD
    product. Now: the currency is required, and must be the shop's and the account's."""
    with running_api(db_url, models_dir, tmp_path) as api:
        _approve_all(api)
        cny_shop = api.merchant("m_cny")
        admin = api.staff_token()
        made = api.post(
            "/v1/ops/merchants",
            admin,
            {"id": "m_usd", "name": "US shop", "category": "electronics", "currency": "USD"},
        )
        assert made.status_code == 201 and made.json()["currency"] == "USD", made.text
        usd_shop = made.json()["api_key"]
        # a CNY shop cannot sign a shopper up for a USD product
        r = api.apply(cny_shop, id_number(seq="201"), "13500000201", product="affirm_loan")
        assert r.status_code == 422 and r.json()["code"] == "currency_mismatch", r.text
        assert r.json()["field"] == "product"
        cny = api.apply(cny_shop, id_number(seq="202"), "13500000202").json()
        assert cny["outcome"] == "approved", cny
        usd = api.apply(usd_shop, id_number(seq="203"), "13500000203", product="affirm_loan").json()
        assert usd["outcome"] == "approved", usd
        # the US shop's shopper also deals with the CNY shop (the account is linked to it)
        also = api.apply(cny_shop, id_number(seq="203"), "13500000203")
        assert also.status_code == 201, also.text
        usd_account = usd["credit_account_id"]
        # the currency is required, and named when missing
        body = _order(cny["credit_account_id"], "no-currency")
        del body["currency"]
        missing = api.post("/v1/orders", cny_shop, body)
        assert missing.status_code == 422 and "currency" in missing.json()["detail"], missing.text
        # CNY shop, USD account: refused whatever the order says, nothing held
        for currency in ("CNY", "USD"):
            r = api.post("/v1/orders", cny_shop, _order(usd_account, f"x-{currency}", currency))
            assert r.status_code == 422 and r.json()["code"] == "currency_mismatch", r.text
            assert r.json()["field"] == "currency"
        assert api.get("/v1/orders", cny_shop).json()["items"] == []
        q = api.post("/v1/quotes", cny_shop, {"credit_account_id": usd_account, "amount_fen": 10})
        assert q.status_code == 422 and q.json()["code"] == "currency_mismatch", q.text
        # matching currencies go through
        ok = api.post("/v1/orders", cny_shop, _order(cny["credit_account_id"], "ok-1"))
        assert ok.status_code == 201 and ok.json()["currency"] == "CNY", ok.text
        ok_usd = api.post("/v1/orders", usd_shop, _order(usd_account, "ok-2", "USD", terms=3))
        assert ok_usd.status_code == 201 and ok_usd.json()["currency"] == "USD", ok_usd.text
        # the settlement is in the shop's currency unless asked for another
        assert api.get("/v1/settlement", usd_shop).json()["currency"] == "USD"
        assert api.get("/v1/settlement", cny_shop).json()["currency"] == "CNY"


def test_every_plan_capture_and_refund_of_an_order_is_shown(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: a capture returned plan_id 2 and GET /v1/orders/{id} returned null.
    Each partial capture books its own plan; every call shows all of them, and captures and
    refunds are resources of their own."""
    with running_api(db_url, models_dir, tmp_path) as api:
        _approve_all(api)
        key = api.merchant("m_plans")
        app = api.apply(key, id_number(seq="301"), "13500000301").json()
        account = app["credit_account_id"]
        o = api.post("/v1/orders", key, {**_order(account, "P-1"), "amount_fen": 90_000})
        assert o.status_code == 201, o.text
        order = o.json()
        assert order["plan_id"] is None and order["plans"] == []
        c1 = api.post(f"/v1/orders/{order['id']}/captures", key, {"amount_fen": 60_000}).json()
        c2 = api.post(f"/v1/orders/{order['id']}/captures", key, {}).json()
        assert c1["capture"]["number"] == 1 and c2["capture"]["number"] == 2
        assert c1["capture"]["id"] != c2["capture"]["id"]
        got = api.get(f"/v1/orders/{order['id']}", key).json()
        assert got["plan_id"] == c2["plan_id"] == c2["capture"]["plan_id"]
        assert [p["plan_id"] for p in got["plans"]] == [c1["plan_id"], c2["plan_id"]]
        assert [p["principal_fen"] for p in got["plans"]] == [60_000, 30_000]
        assert got["plans"][0]["capture_id"] == c1["capture"]["id"]
        caps = api.get(f"/v1/orders/{order['id']}/captures", key).json()["items"]
        assert [(c["number"], c["amount_fen"]) for c in caps] == [(1, 60_000), (2, 30_000)]
        one = api.get(f"/v1/orders/{order['id']}/captures/{caps[1]['id']}", key)
        assert one.status_code == 200 and one.json() == c2["capture"]
        assert api.get(f"/v1/orders/{order['id']}/captures/999999", key).status_code == 404
        r1 = api.post(f"/v1/orders/{order['id']}/refunds", key, {"amount_fen": 10_000}).json()
        r2 = api.post(f"/v1/orders/{order['id']}/refunds", key, {"amount_fen": 5_000}).json()
        assert r1["refund"]["id"] != r2["refund"]["id"] and r2["refund"]["amount_fen"] == 5_000
        refunds = api.get(f"/v1/orders/{order['id']}/refunds", key).json()["items"]
        assert [r["amount_fen"] for r in refunds] == [10_000, 5_000]
        fetched = api.get(f"/v1/orders/{order['id']}/refunds/{refunds[0]['id']}", key).json()
        assert fetched == r1["refund"]
        # another shop sees none of it
        other = api.merchant("m_other")
        assert api.get(f"/v1/orders/{order['id']}/captures", other).status_code == 404
        assert api.get(f"/v1/orders/{order['id']}/refunds", other).status_code == 404
        # the list shows the plans too
        [listed] = api.get("/v1/orders", key).json()["items"]
        assert listed["plans"] == got["plans"] and listed["plan_id"] == got["plan_id"]


def test_orders_by_reference_filters_and_newest_first(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        _approve_all(api)
        key = api.merchant("m_lists")
        account = api.apply(key, id_number(seq="401"), "13500000401").json()["credit_account_id"]
        ids = []
        for n in range(5):
            r = api.post("/v1/orders", key, _order(account, f"R-{n}", capture=n % 2 == 0))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        listed = api.get("/v1/orders", key).json()
        assert [o["id"] for o in listed["items"]] == ids[::-1]  # newest first
        oldest = api.get("/v1/orders", key, order="asc").json()
        assert [o["id"] for o in oldest["items"]] == ids
        first = api.get("/v1/orders", key, limit=2).json()
        second = api.get("/v1/orders", key, limit=2, cursor=first["next_cursor"]).json()
        assert [o["id"] for o in first["items"] + second["items"]] == ids[::-1][:4]
        captured = api.get("/v1/orders", key, status="captured").json()["items"]
        assert [o["merchant_order_ref"] for o in captured] == ["R-4", "R-2", "R-0"]
        bad = api.get("/v1/orders", key, status="shipped")
        assert bad.status_code == 422 and "status" in bad.json()["detail"]
        by_filter = api.get("/v1/orders", key, merchant_order_ref="R-3").json()["items"]
        assert [o["id"] for o in by_filter] == [ids[3]]
        by_ref = api.get("/v1/orders/by-reference/R-3", key)
        assert by_ref.status_code == 200 and by_ref.json()["id"] == ids[3]
        missing = api.get("/v1/orders/by-reference/nope", key)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert api.get("/v1/orders", key, credit_account_id=account).json()["items"]
        assert api.get("/v1/orders", key, credit_account_id=account + 999).json()["items"] == []


def test_applications_products_and_accounts_for_an_integrator(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_integrator")
        made = api.apply(key, id_number(seq="601"), "13500000601")
        assert made.status_code == 201, made.text
        app = made.json()
        got = api.get(f"/v1/applications/{app['application_id']}", key)
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["created_at"]
        assert {k: v for k, v in body.items() if k != "created_at"} == {
            k: v for k, v in app.items() if k != "created_at"
        }
        other = api.merchant("m_stranger")
        hidden = api.get(f"/v1/applications/{app['application_id']}", other)
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
        assert api.get("/v1/applications/999999", key).status_code == 404

        products = api.get("/v1/products", key).json()["items"]
        names = [p["name"] for p in products]
        assert "huabei" in names and "baitiao" in names
        assert all(p["currency"] == "CNY" for p in products)  # the shop's currency only
        assert "affirm_loan" not in names and "pay_in_4" not in names
        huabei = next(p for p in products if p["name"] == "huabei")
        assert huabei["interest_free_cycle"] is True
        assert [t["count"] for t in huabei["installment_terms"]] == [3, 6, 9, 12]
        assert [t["name"] for t in huabei["tiers"]] == ["T1", "T2", "T3", "T4"]

        # a second account for the same shopper, then the paginated shape, newest first
        second = api.apply(key, id_number(seq="601"), "13500000601", product="baitiao").json()
        assert second["outcome"] == "approved", second
        shopper = api.shopper_token(key, app["customer_id"])
        page = api.get("/v1/me/accounts", shopper).json()
        assert page["next_cursor"] is None
        ids = [a["credit_account_id"] for a in page["items"]]
        assert ids == [second["credit_account_id"], app["credit_account_id"]]
        first = api.get("/v1/me/accounts", shopper, limit=1).json()
        rest = api.get("/v1/me/accounts", shopper, limit=1, cursor=first["next_cursor"]).json()
        assert [a["credit_account_id"] for a in first["items"] + rest["items"]] == ids
        oldest = api.get("/v1/me/accounts", shopper, order="asc").json()["items"]
        assert [a["credit_account_id"] for a in oldest] == ids[::-1]
