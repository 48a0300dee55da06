"""A checkout over HTTP is one transaction (issue 21), and what that must not cost: checkout
risk's record of a refused attempt still commits, with the stored refusal (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from fenqi.store.schema.parties import orders
from fenqi.store.schema.risk import risk_transaction_assessments, risk_velocity_counters
from support.api_server import Api, id_number, running_api


@contextmanager
def counted(api: Api) -> Iterator[Counter[str]]:
    """Transactions begun and committed on the API's engine meanwhile."""
    counts: Counter[str] = Counter()
    listeners: list[tuple[str, Any]] = [
        ("begin", lambda *_: counts.update(["transactions"])),
        ("commit", lambda *_: counts.update(["commits"])),
    ]
    for name, fn in listeners:
        event.listen(api.ctx.engine, name, fn)
    try:
        yield counts
    finally:
        for name, fn in listeners:
            event.remove(api.ctx.engine, name, fn)


def _order(account: int, ref: str, amount_fen: int = 10_000, **extra: Any) -> dict[str, Any]:
    return {
        "credit_account_id": account,
        "amount_fen": amount_fen,
        "terms": 0,
        "currency": "CNY",
        "merchant_order_ref": ref,
        **extra,
    }


def _count(api: Api, table: Any) -> int:
    with api.ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_authorize_capture_and_sale_are_one_transaction_each(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        account = api.apply(key, id_number(), "13800000021").json()["credit_account_id"]
        with counted(api) as authorize:
            o = api.post("/v1/orders", key, _order(account, "T-1"))
        assert o.status_code == 201, o.text
        with counted(api) as capture:
            c = api.post(f"/v1/orders/{o.json()['id']}/captures", key, {})
        assert c.status_code == 201, c.text
        with counted(api) as sale:
            s = api.post("/v1/orders", key, _order(account, "T-2", capture=True))
        assert s.status_code == 201, s.text
        # the API key's look-up, checkout risk and the order: one transaction, one commit
        assert authorize == capture == sale == Counter(transactions=1, commits=1)
        # an order's answer shows its plans as a read of the order does
        for made in (c, s):
            got = api.get(f"/v1/orders/{made.json()['id']}", key).json()
            assert made.json()["plans"] == got["plans"] and made.json()["plan_id"] == got["plan_id"]


def test_refused_attempts_keep_their_risk_record(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        account = api.apply(key, id_number(), "13800000022").json()["credit_account_id"]

        # checkout risk refuses (a large first purchase on a new account asks for a step-up):
        # its assessment and counters commit with the stored refusal, the order does not
        big = _order(account, "R-1", 300_000)
        refused = api.post("/v1/orders", key, big, key="k-risk")
        assert refused.status_code == 402 and refused.json()["code"] == "risk_step_up"
        assert _outcome(api, "m_shop:k-risk") == "step_up"
        attempts = _attempts(api)
        assert attempts == 1 and _count(api, orders) == 0
        again = api.post("/v1/orders", key, big, key="k-risk")
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == refused.json()
        assert _attempts(api) == 1  # a replay is not assessed again

        # risk approves, the ledger refuses (more than the credit left): the order is undone,
        # the attempt stays counted
        risk = api.staff_token("rita", "risk_analyst")
        lowered = {"limit_fen": 100_000, "reason": "test limit"}
        assert api.post(f"/v1/ops/accounts/{account}/limit", risk, lowered).status_code == 200
        over = _order(account, "R-2", 300_000, step_up_verified=True)
        refused = api.post("/v1/orders", key, over, key="k-over")
        assert refused.status_code == 402, refused.text
        assert refused.json()["code"] == "insufficient_credit", refused.text
        assert _outcome(api, "m_shop:k-over") == "step_up"  # passed by the shopper
        assert _attempts(api) == 2 and _count(api, orders) == 0


def _outcome(api: Api, transaction_ref: str) -> str | None:
    a = risk_transaction_assessments.c
    with api.ctx.engine.connect() as conn:
        found = conn.execute(select(a.outcome).where(a.transaction_ref == transaction_ref))
        outcome: str | None = found.scalar()
        return outcome


def _attempts(api: Api) -> int:
    """Attempts counted by the account's shortest velocity window."""
    c = risk_velocity_counters.c
    with api.ctx.engine.connect() as conn:
        width = conn.execute(
            select(func.min(c.window_seconds)).where(c.subject_kind == "account")
        ).scalar()
        total = conn.execute(
            select(func.coalesce(func.sum(c.txn_count), 0)).where(
                c.subject_kind == "account", c.window_seconds == width
            )
        ).scalar_one()
        return int(total)
