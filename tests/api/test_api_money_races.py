"""Issue 25 items 1 and 2 over real HTTP, on SQLite and PostgreSQL: concurrent payouts for one
shop pay it once, and a bill conversion racing a repayment never bills what was paid."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.service import reconcile, trial_balance
from support.api_server import Api, id_number, running_api

PAYOUTS = 12
PAYOUT_ROUNDS = 5
ROUNDS = 8


def _race(api: Api, requests: list[tuple[str, str, Any]], tag: str) -> list[httpx.Response]:
    """POST each (path, token, body) at once, each with its own Idempotency-Key."""
    gate = threading.Barrier(len(requests))

    def send(i: int) -> httpx.Response:
        path, token, body = requests[i]
        with httpx.Client(base_url=api.base, timeout=60) as client:
            gate.wait()
            return client.post(
                path,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{tag}-{i}"},
            )

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, range(len(requests))))


def _books(api: Api) -> None:
    with api.ctx.engine.connect() as conn:
        assert trial_balance(conn).balanced and reconcile(conn) == []
        deep = deep_reconcile(conn)
        assert deep.ok, [str(d) for d in deep.differences]


def _shopper(api: Api, shop: str, n: int) -> tuple[int, int]:
    r = api.apply(shop, id_number(seq=f"{n:03d}"), f"1360000{n:04d}")
    assert r.status_code == 201 and r.json()["outcome"] == "approved", r.text
    return int(r.json()["credit_account_id"]), int(r.json()["customer_id"])


def _sale(api: Api, shop: str, account: int, amount: int, ref: str) -> dict[str, Any]:
    o = api.post(
        "/v1/orders",
        shop,
        {
            "credit_account_id": account,
            "amount_fen": amount,
            "currency": "CNY",
            "terms": 0,
            "merchant_order_ref": ref,
            "capture": True,
        },
    )
    assert o.status_code == 201, o.text
    return dict(o.json())


def test_concurrent_payouts_over_http_pay_once(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        staff = api.staff_token()
        failed = []
        for n in range(PAYOUT_ROUNDS):  # a shop a round, each owed what one sale left it
            merchant = f"m_paid_{n}"
            shop = api.merchant(merchant)
            account, _ = _shopper(api, shop, n)
            _sale(api, shop, account, 793_778, f"o-{n}")
            owed = api.get("/v1/settlement", shop).json()["owed_fen"]
            assert owed > 0
            responses = _race(
                api, [(f"/v1/ops/merchants/{merchant}/payouts", staff, None)] * PAYOUTS, merchant
            )
            paid = [r.json()["paid_fen"] for r in responses if r.status_code == 201]
            refused = {(r.status_code, r.json()["code"]) for r in responses if r.status_code != 201}
            left = api.get("/v1/settlement", shop).json()["owed_fen"]
            if paid != [owed] or refused != {(422, "nothing_to_pay")} or left != 0:
                failed.append((n, paid, refused, left))
        assert failed == [], f"{len(failed)} of {PAYOUT_ROUNDS} rounds: {failed}"
        _books(api)


def test_conversion_racing_a_repayment_over_http(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant("m_conv")
        failed = []
        for n in range(ROUNDS):
            account, customer = _shopper(api, shop, 100 + n)
            sale = _sale(api, shop, account, 20_000, f"o-{n}")
            token = api.shopper_token(shop, customer)
            convert, repay = _race(
                api,
                [
                    (
                        f"/v1/me/accounts/{account}/conversions",
                        token,
                        {"plan_ids": [sale["plan_id"]], "terms": 3},
                    ),
                    (f"/v1/me/accounts/{account}/repayments", token, {"amount_fen": 7_000}),
                ],
                f"round-{n}",
            )
            # the conversion comes first, or it sees the purchase partly paid and is refused
            fine = repay.status_code == 201 and (
                convert.status_code == 201
                or (convert.status_code == 422 and convert.json()["code"] == "not_convertible")
            )
            principal_paid = repay.json()["by_kind_fen"]["principal"] if fine else 0
            summary = api.get(f"/v1/me/accounts/{account}", token).json()
            with api.ctx.engine.connect() as conn:
                deep = deep_reconcile(conn, credit_account_ids=[account])
            if not (fine and deep.ok and summary["principal_owed_fen"] == 20_000 - principal_paid):
                failed.append((n, convert.text, repay.text, [str(d) for d in deep.differences]))
        assert failed == [], f"{len(failed)} of {ROUNDS} rounds: {failed[:2]}"
        _books(api)
