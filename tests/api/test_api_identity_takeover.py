"""Nobody reaches another person's account (issue 25 item 3, issue 24 item 12), over HTTP on
SQLite and PostgreSQL: an application with an ID number on file must come with the name and
phone on file, and a shopper session minted by one shop shows only that shop's purchases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from fenqi.store.schema.parties import applications, customer_links
from support.api_server import Api, id_number, running_api


def _apply(api: Api, key: str, name: str, idn: str, phone: str) -> httpx.Response:
    body: dict[str, Any] = {
        "product": "huabei",
        "name": name,
        "id_number": idn,
        "phone": phone,
        "income_band": "10k_20k",
        "consents": [
            {"kind": "bureau_inquiry", "text_version": "2026-01", "scope": "credit decision"}
        ],
        "behaviour": {
            "account_age_days": 2000,
            "orders_12m": 40,
            "spend_12m_fen": 3_000_000,
            "return_rate_bp": 300,
            "other_lenders": 0,
        },
    }
    return api.post("/v1/applications", key, body)


def _sale(api: Api, key: str, account: int, ref: str, amount: int) -> dict[str, Any]:
    r = api.post(
        "/v1/orders",
        key,
        {
            "credit_account_id": account,
            "amount_fen": amount,
            "currency": "CNY",
            "terms": 0,
            "merchant_order_ref": ref,
            "capture": True,
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_another_shop_with_only_the_id_number_gets_nothing(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        shop_a, shop_b = api.merchant("m_a"), api.merchant("m_b")
        idn = id_number(seq="451")
        first = _apply(api, shop_a, "王小明", idn, "13900001111")
        assert first.status_code == 201 and first.json()["outcome"] == "approved", first.text
        assert first.json()["account"] == "opened"
        account, customer = first.json()["credit_account_id"], first.json()["customer_id"]
        _sale(api, shop_a, account, "a-1", 12_345)

        # shop B knows the ID number only: another name, another phone; or one of the two
        for name, phone in (
            ("李四", "13700002222"),
            ("王小明", "13700002222"),
            ("李四", "13900001111"),
        ):
            r = _apply(api, shop_b, name, idn, phone)
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "identity_mismatch"
            assert "王小明" not in r.text and "13900001111" not in r.text
        with api.ctx.engine.connect() as conn:
            assert (
                conn.execute(
                    select(func.count()).where(customer_links.c.merchant_id == "m_b")
                ).scalar_one()
                == 0
            )
            assert (
                conn.execute(
                    select(func.count()).where(applications.c.merchant_id == "m_b")
                ).scalar_one()
                == 0
            )
        # ... so B cannot open a session for A's shopper, quote, sell or capture on the account
        assert (
            api.post("/v1/shopper-sessions", shop_b, {"customer_id": customer}).status_code == 404
        )
        assert (
            api.post("/v1/quotes", shop_b, {"credit_account_id": account, "amount_fen": 100})
        ).status_code == 404
        r = api.post(
            "/v1/orders",
            shop_b,
            {
                "credit_account_id": account,
                "amount_fen": 500,
                "currency": "CNY",
                "terms": 0,
                "merchant_order_ref": "steal",
                "capture": True,
            },
        )
        assert r.status_code == 404, r.text

        # the same person (name and phone on file; spacing and width do not matter) through
        # shop B: the existing account is kept, and the response says so with its real limit
        limit = api.get(f"/v1/me/accounts/{account}", api.shopper_token(shop_a, customer))
        real_limit = limit.json()["limit_fen"]
        same = _apply(api, shop_b, " 王小明 ", idn, "+86 139 0000 1111")
        assert same.status_code == 201, same.text
        out = same.json()
        assert out["customer_id"] == customer
        if out["outcome"] == "approved":
            assert out["account"] == "existing" and out["credit_account_id"] == account
            assert out["limit_fen"] == real_limit
            assert out["decision_limit_fen"] is not None

        # B's session for the shopper shows B's purchases only, not A's
        _sale(api, shop_b, account, "b-1", 2_000)
        token_b = api.shopper_token(shop_b, customer)
        token_a = api.shopper_token(shop_a, customer)
        plans_a = api.get(f"/v1/me/accounts/{account}/plans", token_a).json()
        plans_b = api.get(f"/v1/me/accounts/{account}/plans", token_b).json()
        assert [p["principal_fen"] for p in plans_a] == [12_345]
        assert [p["principal_fen"] for p in plans_b] == [2_000]
        ledger_b = api.get(f"/v1/me/accounts/{account}/ledger", token_b, limit=200).json()
        assert ledger_b["items"] and all(x["amount_fen"] != 12_345 for x in ledger_b["items"])
        ledger_a = api.get(f"/v1/me/accounts/{account}/ledger", token_a, limit=200).json()
        assert any(x["amount_fen"] == 12_345 for x in ledger_a["items"])
        assert all(x["amount_fen"] != 2_000 for x in ledger_a["items"])
        for statement in api.get(f"/v1/me/accounts/{account}/statements", token_b).json():
            assert {x["plan_id"] for x in statement["lines"]} <= {p["id"] for p in plans_b}
        # and cannot pay off or convert A's purchase
        plan_of_a = plans_a[0]["id"]
        r = api.post(f"/v1/me/accounts/{account}/plans/{plan_of_a}/payoff-quote", token_b)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = api.post(
            f"/v1/me/accounts/{account}/conversions", token_b, {"plan_ids": [plan_of_a], "terms": 3}
        )
        assert r.status_code == 404
        # the account-wide figures stay visible to both: what is owed is the shopper's
        owed = api.get(f"/v1/me/accounts/{account}", token_b).json()["owed_fen"]
        assert owed == api.get(f"/v1/me/accounts/{account}", token_a).json()["owed_fen"]
