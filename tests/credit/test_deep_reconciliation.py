"""The deep reconciliation sees what the trial balance and the per-account reconciliation
cannot: a shop paid twice, a plan that disagrees with the ledger, an order that disagrees with
its plans. Each fault is made by hand (as the races of issue 25 made them), on SQLite and
PostgreSQL, through the Python function and through `fenqi ledger reconcile --deep`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from sqlalchemy import Engine, insert, select, update

from fenqi.clock import FixedClock
from fenqi.credit import checkout
from fenqi.credit import service as credit
from fenqi.credit.posting import leg, post
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.service import open_account, reconcile, trial_balance
from fenqi.products import load_catalog
from fenqi.store.engine import make_engine
from fenqi.store.schema.credit import plan_lines, repayments
from fenqi.store.schema.parties import merchants, orders

PRODUCT = load_catalog(2400)["huabei"]
CLOCK = FixedClock.on(date(2026, 1, 2), hour=10)


def _world(engine: Engine) -> tuple[int, dict[str, object]]:
    with engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id="m1", name="m1", category="electronics", status="active", created_at=CLOCK.now()
            )
        )
        account = credit.open_credit_account(conn, CLOCK, PRODUCT, "s1", 2_000_000)
        order = checkout.authorize_order(
            conn,
            CLOCK,
            PRODUCT,
            merchant_id="m1",
            credit_account_id=account,
            amount_fen=60_000,
            terms=3,
            merchant_order_ref="o-1",
            client_id="m1:o-1",
            cap_bp=2400,
            hold_seconds=3600,
            capture=True,
        )
        credit.repay(conn, CLOCK, PRODUCT, account, 5_000, "pay-1")
        checkout.refund_order(
            conn,
            CLOCK,
            PRODUCT,
            merchant_id="m1",
            order_id=int(order["id"]),
            amount_fen=10_000,
            client_id="m1:refund-1",
        )
        checkout.pay_out(conn, CLOCK, "m1", "CNY", "payout-1")
    return account, order


def _second_payout(engine: Engine, amount: int) -> None:
    """What a payout that read a stale balance posted (the race of issue 25, item 1)."""
    with engine.begin() as conn:
        payable = open_account(
            conn, CLOCK, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, "m1", "CNY"
        )
        cash = credit.platform_account(conn, CLOCK, AccountCode.CASH_CLEARING, "CNY")
        post(
            conn, CLOCK, "payout:stale", "CNY", leg(payable, cash, amount, "payout"), "x", "m", "m1"
        )


def test_a_clean_world_reconciles_deeply(db_engine: Engine) -> None:
    _world(db_engine)
    with db_engine.connect() as conn:
        report = deep_reconcile(conn)
    assert report.ok, report.differences
    assert report.checked["orders"] == 1 and report.checked["payables"] == 1


def test_a_second_payout_is_seen(db_engine: Engine) -> None:
    _world(db_engine)
    _second_payout(db_engine, 40_000)
    with db_engine.connect() as conn:
        assert trial_balance(conn).balanced and reconcile(conn) == []  # blind to it
        report = deep_reconcile(conn)
    assert [(d.check, d.subject, d.actual) for d in report.differences] == [
        ("payable", "merchant m1 CNY", -40_000)
    ]


def test_plans_that_disagree_with_the_ledger_are_seen(db_engine: Engine) -> None:
    account, order = _world(db_engine)
    with db_engine.begin() as conn:
        # a line marked paid with no money in the ledger, as a stale read would leave it
        conn.execute(
            update(plan_lines)
            .where(plan_lines.c.credit_account_id == account, plan_lines.c.period == 3)
            .values(paid_principal_fen=plan_lines.c.paid_principal_fen + 1_000)
        )
        conn.execute(update(orders).where(orders.c.id == order["id"]).values(captured_fen=70_000))
        conn.execute(update(repayments).values(to_credit_balance_fen=123))
    with db_engine.connect() as conn:
        assert trial_balance(conn).balanced and reconcile(conn) == []
        plan_id = conn.execute(
            select(plan_lines.c.plan_id).where(plan_lines.c.credit_account_id == account)
        ).scalar()
        found = {(d.check, d.subject) for d in deep_reconcile(conn).differences}
        assert found == {
            ("receivables", f"credit account {account} principal"),
            ("order", f"order {order['id']}"),
            ("payable", "merchant m1 CNY"),  # the shop was credited 60,000, not 70,000
            ("credit_balance", f"credit account {account} overpayments"),
            # the plan's funders still hold the 1,000 the line says was paid (funding/wiring.py)
            ("funding", f"plan {plan_id}"),
        }
        assert deep_reconcile(conn, credit_account_ids=[account + 1]).ok


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "ledger", "reconcile", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FENQI_DATABASE_URL": db_url},
        timeout=120,
    )


def test_fenqi_ledger_reconcile_deep(db_url: str) -> None:
    engine = make_engine(db_url)
    from fenqi.store.engine import create_all

    create_all(engine)
    _world(engine)
    clean = _cli(db_url, "--deep")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "sub-ledgers agree with the ledger" in clean.stdout
    _second_payout(engine, 40_000)
    engine.dispose()
    assert _cli(db_url).returncode == 0  # the plain reconciliation cannot see it
    bad = _cli(db_url, "--deep")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "1 sub-ledger differences" in bad.stdout
    assert "payable merchant m1 CNY: expected 0, found -40000" in bad.stdout
    as_json = json.loads(_cli(db_url, "--deep", "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["deep"]["differences"][0]["check"] == "payable"
