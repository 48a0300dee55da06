"""Test mode over real HTTP, on SQLite and PostgreSQL: a shop's test keys (sk_test_…) work in
the test book, a database of its own, and the two modes never meet: a test key finds no live
application, account or order (by id or in a list) and a live key no test one; a test
application with a real person's ID number makes a test customer and a test account with its
own limit; the live trial balance, reconciliation, portfolio report and settlement are
identical before and after a whole test-mode life (application, sale, authorize, capture,
refund, repayment); test webhook events say `"livemode": false`; the magic inputs force their
outcomes in test mode only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text

from fenqi.analytics.portfolio import portfolio_summary
from fenqi.clock import FixedClock
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.credit.test_mode import MAGIC_ID_NUMBERS
from fenqi.ledger.queries import reconcile, trial_balance
from fenqi.settings import Settings
from fenqi.store.books import BookMismatch, claim_book
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.webhooks import webhook_events
from fenqi.webhooks.endpoints import endpoint_resolver
from fenqi.webhooks.signing import verify
from fenqi.webhooks.worker import deliver_due
from support.api_server import Api, id_number, running_api
from web.test_web_console_routes import sign_in
from webhooks.webhook_receiver import Receiver

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAGIC = {outcome: number for number, outcome in MAGIC_ID_NUMBERS.items()}


@pytest.fixture
def test_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind as `db_url`: the test book."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'test-book.sqlite'}"
        return
    import os

    base = os.environ.get("FENQI_TEST_POSTGRES_URL", PG_URL)
    schema = f"tb_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _sale(api: Api, key: str, account: int, amount: int, ref: str, **extra: Any) -> Any:
    body = {
        "credit_account_id": account,
        "amount_fen": amount,
        "currency": "CNY",
        "terms": 0,
        "merchant_order_ref": ref,
        "capture": True,
        **extra,
    }
    return api.post("/v1/orders", key, body)


def _books(engine: Engine, today: date) -> dict[str, Any]:
    """What the live book's reports say: trial balance, reconciliation, the deep
    reconciliation, the portfolio summary."""
    with engine.connect() as conn:
        summary = portfolio_summary(conn, date(2026, 1, 1), today)
        return {
            "trial_balance": trial_balance(conn).rows,
            "reconcile": reconcile(conn),
            "deep": deep_reconcile(conn).to_dict(),
            "portfolio": repr(summary),
        }


def _test_key(api: Api, live_key: str) -> str:
    r = api.post("/v1/api-keys", live_key, {"mode": "test"})
    assert r.status_code == 201, r.text
    assert r.json()["livemode"] is False and r.json()["api_key"].startswith("sk_test_")
    return str(r.json()["api_key"])


def test_test_mode_is_a_separate_world(
    db_url: str, test_db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path, test_db_url=test_db_url) as api:
        live = api.merchant("m_shop")
        assert live.startswith("sk_live_")
        test = _test_key(api, live)
        # each mode lists its own keys; a test key cannot make a live key
        assert [k["livemode"] for k in api.get("/v1/api-keys", live).json()["items"]] == [True]
        assert [k["livemode"] for k in api.get("/v1/api-keys", test).json()["items"]] == [False]
        r = api.post("/v1/api-keys", test, {"mode": "live"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        # a test key makes more test keys (and rotates them) itself
        r = api.post("/v1/api-keys", test, {"expire_others_in_hours": 0})
        assert r.status_code == 201 and r.json()["api_key"].startswith("sk_test_"), r.text
        assert api.get("/v1/products", test).status_code == 401  # expired at once
        test = r.json()["api_key"]
        assert api.get("/v1/products", live).status_code == 200  # live keys untouched

        person = id_number("19900307", "123")
        applied = api.apply(live, person, "13800138000")
        assert applied.status_code == 201 and applied.json()["outcome"] == "approved", applied.text
        live_app, live_account = (
            applied.json()["application_id"],
            applied.json()["credit_account_id"],
        )
        live_customer = applied.json()["customer_id"]
        r = _sale(api, live, live_account, 10_000, "live-1")
        assert r.status_code == 201, r.text
        live_order = r.json()["id"]
        before = _books(api.ctx.engine, api.clock.today())
        live_settlement = api.get("/v1/settlement", live).json()

        # the test key sees nothing live, by id or in a list, and cannot act on it
        assert api.get(f"/v1/orders/{live_order}", test).status_code == 404
        assert api.get("/v1/orders", test).json()["items"] == []
        assert api.get("/v1/orders/by-reference/live-1", test).status_code == 404
        assert api.get(f"/v1/applications/{live_app}", test).status_code == 404
        r = api.post("/v1/shopper-sessions", test, {"customer_id": live_customer})
        assert r.status_code == 404, r.text
        r = _sale(api, test, live_account, 100, "steal")
        assert r.status_code == 404, r.text

        # the same real person applies in test mode: a test customer and a test account
        r = api.apply(test, person, "13800138000")
        assert r.status_code == 201 and r.json()["outcome"] == "approved", r.text
        test_account, test_customer = r.json()["credit_account_id"], r.json()["customer_id"]
        test_limit = r.json()["limit_fen"]
        tests = [_sale(api, test, test_account, 20_000 + n, f"test-{n}") for n in range(2)]
        assert [t.status_code for t in tests] == [201, 201], tests[0].text
        test_orders = [t.json()["id"] for t in tests]
        r = api.post(
            "/v1/orders",
            test,
            {
                "credit_account_id": test_account,
                "amount_fen": 30_000,
                "currency": "CNY",
                "terms": 3,
                "merchant_order_ref": "test-auth",
            },
        )
        assert r.status_code == 201, r.text
        held = r.json()["id"]
        r = api.post(f"/v1/orders/{held}/captures", test, {"amount_fen": 30_000})
        assert r.status_code == 201, r.text
        r = api.post(f"/v1/orders/{test_orders[0]}/refunds", test, {"amount_fen": 5_000})
        assert r.status_code == 201, r.text
        shopper = api.shopper_token(test, test_customer)
        assert shopper.startswith("st_test_")
        r = api.post(f"/v1/me/accounts/{test_account}/repayments", shopper, {"amount_fen": 1_000})
        assert r.status_code == 201, r.text

        # the live key sees none of it: an id only the test book has is 404 for it
        assert max([*test_orders, held]) > live_order
        assert api.get(f"/v1/orders/{held}", live).status_code == 404
        assert [o["id"] for o in api.get("/v1/orders", live).json()["items"]] == [live_order]
        assert api.get("/v1/orders/by-reference/test-0", live).status_code == 404
        # the same id in each mode is each mode's own order
        same = api.get(f"/v1/orders/{live_order}", test).json()
        assert same["merchant_order_ref"].startswith("test-"), same
        assert api.get(f"/v1/orders/{live_order}", live).json()["merchant_order_ref"] == "live-1"
        # a test shopper session reads the test book only
        assert api.get(f"/v1/me/accounts/{test_account}", shopper).status_code == 200
        live_shopper = api.shopper_token(live, live_customer)
        assert live_shopper.startswith("st_") and not live_shopper.startswith("st_test_")
        live_view = api.get(f"/v1/me/accounts/{live_account}", live_shopper).json()
        test_view = api.get(f"/v1/me/accounts/{test_account}", shopper).json()
        # limits are separate: each account's available credit is its own book's
        assert live_view["available_fen"] == live_view["limit_fen"] - 10_000, live_view
        assert test_view["available_fen"] < test_limit - 40_000, test_view

        # the live book's figures did not move; the test book balances on its own
        assert _books(api.ctx.engine, api.clock.today()) == before
        assert api.get("/v1/settlement", live).json() == live_settlement
        assert api.get("/v1/settlement", test).json() != live_settlement
        test_engine = api.ctx.test_mode.engine
        after = _books(test_engine, api.clock.today())
        assert after["reconcile"] == [] and after["deep"]["ok"], after["deep"]
        assert after["trial_balance"] and after["trial_balance"] != before["trial_balance"]
        with test_engine.connect() as conn:
            tb = trial_balance(conn)
        assert all(t["debits_posted"] == t["credits_posted"] for t in tb.totals.values())

        # webhook events say which mode they belong to
        assert {e["livemode"] for e in _events(api.ctx.engine)} == {True}
        assert {e["livemode"] for e in _events(test_engine)} == {False}

        # the console says which book a page shows; its test-mode page shows the test book
        console = sign_in(api, "analyst", "admin")
        dashboard = console.get("/console/dashboard")
        assert dashboard.status_code == 200 and 'data-testid="book-mode"' in dashboard.text
        assert ">Live data<" in dashboard.text and ">Test data<" not in dashboard.text
        page = console.get("/console/test-mode")
        assert page.status_code == 200 and ">Test data<" in page.text, page.text
        assert "<strong>on</strong>" in page.text
        assert '<td>orders</td><td class="num">3</td>' in page.text, page.text


def _events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_events.c.payload)).scalars().all()
    assert rows
    return [json.loads(row) for row in rows]


def test_magic_inputs_force_outcomes_in_test_mode_only(
    db_url: str, test_db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path, test_db_url=test_db_url) as api:
        live = api.merchant("m_shop")
        test = _test_key(api, live)
        outcomes = {
            outcome: api.apply(test, MAGIC[outcome], f"1380013800{n}").json()["outcome"]
            for n, outcome in enumerate(("decline", "refer", "approve"))
        }
        assert outcomes == {"decline": "declined", "refer": "review", "approve": "approved"}
        account = api.apply(test, id_number("19900307", "124"), "13900139000").json()[
            "credit_account_id"
        ]
        r = _sale(api, test, account, 40_002, "decline")
        assert r.status_code == 402 and r.json()["code"] == "risk_decline", r.text
        r = _sale(api, test, account, 40_003, "step-up")
        assert r.status_code == 402 and r.json()["code"] == "risk_step_up", r.text
        r = _sale(api, test, account, 40_003, "step-up", step_up_verified=True)
        assert r.status_code == 201, r.text

        # in live mode the same inputs are ordinary: the real risk engine decides
        applied = api.apply(live, MAGIC["decline"], "13800138009")
        assert applied.json()["reasons"] != ["TEST_MODE_DECLINE"], applied.text
        live_account = api.apply(live, id_number("19900307", "125"), "13700137000").json()[
            "credit_account_id"
        ]
        r = _sale(api, live, live_account, 40_002, "not-magic")
        assert r.status_code == 201, r.text


def test_test_mode_off_without_a_test_book(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    """PostgreSQL without FENQI_TEST_DATABASE_URL: no test keys, and a test-looking token
    finds nothing (on SQLite the test book sits next to the live file by default)."""
    if db_url.startswith("sqlite"):
        assert Settings(database_url="sqlite:///x/fenqi.sqlite").test_book_url() == (
            "sqlite:///x/fenqi.test.sqlite"
        )
        return
    with running_api(db_url, models_dir, tmp_path) as api:
        live = api.merchant("m_shop")
        r = api.post("/v1/api-keys", live, {"mode": "test"})
        assert r.status_code == 409 and r.json()["code"] == "test_mode_unavailable", r.text
        assert api.get("/v1/products", "sk_test_" + "x" * 43).status_code == 401


def test_a_database_is_one_book(db_url: str) -> None:
    """The live and the test book can never be one database."""
    clock = FixedClock.on(date(2026, 1, 2))
    engine = make_engine(db_url)
    create_all(engine)
    claim_book(engine, "live", clock)
    claim_book(engine, "live", clock)  # again: fine
    with pytest.raises(BookMismatch):
        claim_book(engine, "test", clock)
    engine.dispose()
    with pytest.raises(ValueError, match="another database"):
        Settings(database_url=db_url, test_database_url=db_url).test_book_url()


def _deliver(engine: Engine, api: Api) -> int:
    with httpx.Client(timeout=10) as client:
        stats = deliver_due(
            engine, api.clock, endpoint_resolver(api.ctx.keys), client, settings=api.ctx.settings
        )
    return stats.delivered


def test_each_mode_has_its_own_webhook_endpoint_and_deliveries(
    db_url: str, test_db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """A test key sets the shop's test endpoint; test events go there only, signed with its
    own secret and marked `"livemode": false`; live events go to the live endpoint only."""
    receivers = {"live": Receiver(), "test": Receiver()}
    for receiver in receivers.values():
        receiver.thread.start()
    try:
        with running_api(db_url, models_dir, tmp_path, test_db_url=test_db_url) as api:
            keys = {"live": api.merchant("m_shop")}
            keys["test"] = _test_key(api, keys["live"])
            secrets, engines = {}, {"live": api.ctx.engine, "test": api.ctx.test_mode.engine}
            for mode, key in keys.items():
                r = api.post("/v1/webhook-endpoints", key, {"url": receivers[mode].url})
                assert r.status_code == 201, r.text
                secrets[mode] = r.json()["secret"]
                items = api.get("/v1/webhook-endpoints", key).json()["items"]
                assert [i["url"] for i in items] == [receivers[mode].url]
            for n, (mode, key) in enumerate(keys.items()):
                account = api.apply(key, id_number(), f"1350000002{n}").json()["credit_account_id"]
                assert _sale(api, key, account, 5_000, f"{mode}-sale").status_code == 201
            now = int(api.clock.now().timestamp())
            for mode, other in (("live", "test"), ("test", "live")):
                assert _deliver(engines[mode], api) == 2  # application.decided, order.captured
                for request in receivers[mode].requests:
                    body = json.loads(request.body)
                    assert body["livemode"] is (mode == "live"), body
                    header = {k.lower(): v for k, v in request.headers.items()}
                    signature = header["fenqi-signature"]
                    assert verify(secrets[mode].encode(), signature, request.body, now)
                    assert not verify(secrets[other].encode(), signature, request.body, now)
                if mode == "live":  # delivered from the live book: nothing reached the test one
                    assert receivers["test"].requests == []
            assert len(receivers["live"].requests) == len(receivers["test"].requests) == 2
    finally:
        for receiver in receivers.values():
            receiver.server.shutdown()
            receiver.server.server_close()
