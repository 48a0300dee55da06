"""Credit rules a shopper meets over real HTTP, on SQLite and PostgreSQL: conversion only in the
product's window (issue 24 item 10), overpayment capped, used and paid back (item 8), and
risk-based pricing applied from the decision flow's tier (item 9)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.conversion_window import conversion_refusal
from fenqi.ledger.service import reconcile, trial_balance
from support.api_server import Api, id_number, running_api


def books_balance(api: Api) -> None:
    with api.ctx.engine.connect() as conn:
        assert trial_balance(conn).balanced
        assert reconcile(conn) == []


def _shopper_with_purchase(
    api: Api, phone: str, amount_fen: int = 120_000, terms: int = 0
) -> tuple[str, int, int, dict[str, Any]]:
    api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
    shop = api.merchant()
    app = api.apply(shop, id_number(seq=phone[-3:]), phone).json()
    assert app["outcome"] == "approved", app
    account, customer = app["credit_account_id"], app["customer_id"]
    order = api.post(
        "/v1/orders",
        shop,
        {
            "credit_account_id": account,
            "amount_fen": amount_fen,
            "currency": "CNY",
            "terms": terms,
            "merchant_order_ref": f"o-{phone}",
            "capture": True,
        },
    )
    assert order.status_code == 201, order.text
    return shop, account, customer, order.json()


def test_conversion_window_is_pure() -> None:
    from fenqi.products.catalog_loader import load_product

    huabei = load_product("huabei", 2400)
    due = date(2026, 2, 10)
    assert conversion_refusal(huabei, due, date(2026, 1, 2)) is None  # a purchase (交易分期)
    assert conversion_refusal(huabei, due, date(2026, 2, 1)) is None  # the statement day
    assert conversion_refusal(huabei, due, due) is None  # the due day
    late = conversion_refusal(huabei, due, date(2026, 2, 11))
    assert late is not None and late.code == "conversion_past_due"
    pay_in_4 = load_product("pay_in_4", 2400)
    assert conversion_refusal(pay_in_4, due, date(2026, 1, 2)) is not None


def test_a_bill_past_due_cannot_be_converted(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    """The issue's case: a bill 37 days past due (M2) converted into 12 installments read M0
    two days later. Now refused; the same bill on its due day converts."""
    with running_api(db_url, models_dir, tmp_path) as api:
        shop, account, customer, _ = _shopper_with_purchase(api, "13500000101")
        shopper = api.shopper_token(shop, customer)
        [plan] = api.get(f"/v1/me/accounts/{account}/plans", shopper).json()
        due = plan["lines"][0]["due_date"]
        assert due == "2026-02-10"
        api.clock.set(api.clock.now() + timedelta(days=37 + 39))  # 18 Mar: 37 days past due
        shopper = api.shopper_token(shop, customer)
        body = {"plan_ids": [plan["id"]], "terms": 12}
        for path in ("conversions/quote", "conversions"):
            r = api.post(f"/v1/me/accounts/{account}/{path}", shopper, body)
            assert r.status_code == 422 and r.json()["code"] == "conversion_past_due", r.text
            assert r.json()["plan_id"] == plan["id"]
        plans = api.get(f"/v1/me/accounts/{account}/plans", shopper).json()
        assert [p["status"] for p in plans] == ["open"]  # nothing changed
        books_balance(api)


def test_a_bill_converts_on_its_due_day(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop, account, customer, _ = _shopper_with_purchase(api, "13500000102")
        api.clock.set(api.clock.now() + timedelta(days=39))  # 10 Feb, the due day
        shopper = api.shopper_token(shop, customer)
        [plan] = api.get(f"/v1/me/accounts/{account}/plans", shopper).json()
        c = api.post(
            f"/v1/me/accounts/{account}/conversions",
            shopper,
            {"plan_ids": [plan["id"]], "terms": 3},
        )
        assert c.status_code == 201, c.text
        books_balance(api)


def test_overpayment_is_capped_and_a_credit_balance_is_paid_back(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: a repayment of 1e11 fen was accepted into a credit balance. Now a
    payment beyond what is owed (Huabei's cap: 0) is refused whole; a credit balance that a
    refund leaves is paid back on request."""
    with running_api(db_url, models_dir, tmp_path) as api:
        shop, account, customer, order = _shopper_with_purchase(api, "13500000103")
        shopper = api.shopper_token(shop, customer)
        path = f"/v1/me/accounts/{account}"
        huge = api.post(f"{path}/repayments", shopper, {"amount_fen": 10**11})
        assert huge.status_code == 422 and huge.json()["code"] == "overpayment_too_large", huge.text
        assert huge.json()["owed_fen"] == 120_000 and huge.json()["overpayment_max_fen"] == 0
        one_more = api.post(f"{path}/repayments", shopper, {"amount_fen": 120_001})
        assert one_more.status_code == 422, one_more.text
        assert api.get(path, shopper).json()["owed_fen"] == 120_000  # nothing changed
        paid = api.post(f"{path}/repayments", shopper, {"amount_fen": 120_000})
        assert paid.status_code == 201 and paid.json()["to_credit_balance_fen"] == 0
        # the shop takes back part of the goods after the shopper paid: a credit balance
        r = api.post(f"/v1/orders/{order['id']}/refunds", shop, {"amount_fen": 50_000})
        assert r.status_code == 201, r.text
        assert api.get(path, shopper).json()["credit_balance_fen"] == 50_000
        too_much = api.post(f"{path}/credit-balance/payouts", shopper, {"amount_fen": 50_001})
        assert too_much.status_code == 422, too_much.text
        assert too_much.json()["code"] == "exceeds_credit_balance"
        part = api.post(f"{path}/credit-balance/payouts", shopper, {"amount_fen": 20_000})
        assert part.status_code == 201, part.text
        assert part.json() == {
            "credit_account_id": account,
            "currency": "CNY",
            "amount_fen": 20_000,
            "credit_balance_fen": 30_000,
        }
        rest = api.post(f"{path}/credit-balance/payouts", shopper, {})
        assert rest.status_code == 201 and rest.json()["amount_fen"] == 30_000, rest.text
        assert api.get(path, shopper).json()["credit_balance_fen"] == 0
        none = api.post(f"{path}/credit-balance/payouts", shopper, {})
        assert none.status_code == 422 and none.json()["code"] == "no_credit_balance"
        books_balance(api)


def test_an_approved_applicant_gets_the_tiers_discount(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: the flow assigned T1-T4, the products named new/regular/prime, and the
    tier was dropped, so nobody had a discount. Now the account carries the flow's tier and the
    quote and the booked plan are priced with that tier's discount."""
    from fenqi.pricing.quote import plan_pricing

    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant()
        app = api.apply(shop, id_number(seq="501"), "13500000501", product="baitiao").json()
        assert app["outcome"] == "approved", app
        baitiao = api.ctx.product("baitiao")
        tier = baitiao.tier(app["tier"])
        assert tier is not None, app  # the flow's tier, kept
        with api.ctx.engine.connect() as conn:
            from fenqi.credit.service import get_account

            assert get_account(conn, app["credit_account_id"])["tier"] == app["tier"]
        # this applicant scores into a discounted tier (T1 or T2 of Baitiao)
        assert tier.fee_discount_bp > 0, app
        q = api.post(
            "/v1/quotes",
            shop,
            {"credit_account_id": app["credit_account_id"], "amount_fen": 100_000},
        ).json()
        three = next(p for p in q["plans"] if p["terms"] == 3)
        base_bp = plan_pricing(baitiao, 3).total_fee_bp
        tier_bp = plan_pricing(baitiao, 3, tier=app["tier"]).total_fee_bp
        assert tier_bp < base_bp
        assert three["total_fee_fen"] == 100_000 * tier_bp // 10_000
