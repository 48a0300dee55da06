"""Many simultaneous authorizations over HTTP on one account never exceed its limit, and
retries with the same Idempotency-Key never book twice (PostgreSQL and SQLite)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection

from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.service import get_balance, reconcile, trial_balance
from support.api_server import id_number, running_api

CLIENTS = 16
ATTEMPTS = 40
AMOUNT = 7_000
LIMIT = 100_000


def test_concurrent_authorizations_respect_the_limit(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        # this test is about the limit: checkout risk (velocity, first-week exposure) is off
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant()
        r = api.apply(shop, id_number(), "13600000006")
        account = r.json()["credit_account_id"]
        risk = api.staff_token("rita", "risk_analyst")
        assert (
            api.post(
                f"/v1/ops/accounts/{account}/limit",
                risk,
                {"limit_fen": LIMIT, "reason": "test limit"},
            ).status_code
            == 200
        )

        def authorize(i: int) -> tuple[int, Any]:
            with httpx.Client(base_url=api.base, timeout=60) as client:
                resp = client.post(
                    "/v1/orders",
                    json={
                        "credit_account_id": account,
                        "amount_fen": AMOUNT,
                        "terms": 0,
                        "currency": "CNY",
                        "merchant_order_ref": f"o-{i}",
                    },
                    headers={"Authorization": f"Bearer {shop}", "Idempotency-Key": f"k-{i}"},
                )
                return resp.status_code, resp.json()

        with ThreadPoolExecutor(CLIENTS) as pool:
            first = list(pool.map(authorize, range(ATTEMPTS)))
            retries = list(pool.map(authorize, range(ATTEMPTS)))
        statuses = [s for s, _ in first]
        assert set(statuses) <= {201, 402, 409}, statuses
        approved = statuses.count(201)
        assert approved == LIMIT // AMOUNT
        # a retry returns what the first attempt got (or 409 while it was still running)
        for (s1, b1), (s2, b2) in zip(first, retries, strict=True):
            if s1 != 409 and s2 != 409:
                assert (s1, b1) == (s2, b2)
        with api.ctx.engine.connect() as conn:
            _check_books(conn, api, account, approved)


def _check_books(conn: Connection, api: Any, account: int, approved: int) -> None:
    from fenqi.credit.service import get_account

    principal = get_account(conn, account)["principal_account_id"]
    bal = get_balance(conn, principal)
    assert bal.debits_pending == approved * AMOUNT <= LIMIT
    assert trial_balance(conn).balanced and reconcile(conn) == []
    assert deep_reconcile(conn).ok, deep_reconcile(conn).differences
