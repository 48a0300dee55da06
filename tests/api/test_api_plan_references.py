"""Plans made by a hardship agreement or a bill conversion keep a reference built from the
request's client id in `installment_plans.order_ref` (64 characters). Over HTTP those ids are
long: a staff hardship plan's ("hardship:staff:<user>:<48 hex>") was 65 characters, so every
hardship plan over the API failed with a 500 on PostgreSQL (SQLite does not enforce the length);
a conversion with an Idempotency-Key past about 40 characters failed the same way. Found by the
randomized harness (tests/chaos/test_vopr.py, seed 7). The reference is now bounded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fenqi.batch.eod import run_eod
from fenqi.clock import FixedClock
from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.service import reconcile, trial_balance
from support.api_server import Api, id_number, running_api


def _shopper(api: Api, shop: str, n: int) -> tuple[int, int]:
    r = api.apply(shop, id_number(seq=f"{n:03d}"), f"1370000{n:04d}")
    assert r.status_code == 201 and r.json()["outcome"] == "approved", r.text
    return int(r.json()["credit_account_id"]), int(r.json()["customer_id"])


def _sale(api: Api, shop: str, account: int, ref: str) -> int:
    body = {
        "credit_account_id": account,
        "amount_fen": 20_000,
        "terms": 0,
        "currency": "CNY",
        "merchant_order_ref": ref,
        "capture": True,
    }
    r = api.post("/v1/orders", shop, body)
    assert r.status_code == 201, r.text
    return int(r.json()["plan_id"])


def _books(api: Api) -> None:
    with api.ctx.engine.connect() as conn:
        assert trial_balance(conn).balanced and reconcile(conn) == []
        assert deep_reconcile(conn).ok, deep_reconcile(conn).differences


def test_hardship_plan_over_http(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant("m_hard")
        account, _ = _shopper(api, shop, 1)
        _sale(api, shop, account, "o-1")
        run_eod(api.ctx, date(2026, 1, 2))
        api.clock.set(FixedClock.on(date(2026, 2, 14), hour=23).now())
        run_eod(api.ctx, date(2026, 2, 14))  # billed 1 Feb, due 10 Feb, unpaid: in arrears
        collector = api.staff_token("carol", "collector")
        path, body = f"/v1/ops/accounts/{account}/hardship", {"terms": 6, "reason": "lost job"}
        first = api.post(path, collector, {**body, "waive_charges": True}, key="hardship-1")
        assert first.status_code == 201, first.text
        assert first.json()["terms"] == 6
        again = api.post(path, collector, {**body, "waive_charges": True}, key="hardship-1")
        assert (again.status_code, again.json()) == (201, first.json())
        _books(api)


def test_conversion_with_a_long_key_over_http(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant("m_conv_key")
        account, customer = _shopper(api, shop, 2)
        plan = _sale(api, shop, account, "o-2")
        token = api.shopper_token(shop, customer)
        key = "k" * 64  # the longest key used as given (longer ones become a digest)
        path = f"/v1/me/accounts/{account}/conversions"
        first = api.post(path, token, {"plan_ids": [plan], "terms": 3}, key=key)
        assert first.status_code == 201, first.text
        again = api.post(path, token, {"plan_ids": [plan], "terms": 3}, key=key)
        assert (again.status_code, again.json()) == (201, first.json())
        _books(api)
