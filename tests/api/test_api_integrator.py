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
