"""Purchases and repayments through the credit services, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select

from fenqi.clock import FixedClock
from fenqi.credit import service as credit
from fenqi.credit.allocation import Owed, allocate_payment
from fenqi.credit.errors import CreditError, Declined
from fenqi.credit.plans import CYCLE, offer, offers
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.products import load_catalog
from fenqi.products.model import ChargeKind
from fenqi.store.schema.credit import installment_plans

CATALOG = load_catalog(2400)
DAY = date(2026, 1, 2)


def test_allocation_pays_oldest_due_first_in_product_order() -> None:
    order = [ChargeKind.PENALTY, ChargeKind.FEE, ChargeKind.INTEREST, ChargeKind.PRINCIPAL]
    owed = [
        Owed("later", date(2026, 3, 10), {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40}),
        Owed(
            "old",
            date(2026, 1, 10),
            {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40, ChargeKind.PENALTY: 7},
        ),
        Owed("due", date(2026, 2, 10), {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40}),
    ]
    a = allocate_payment(600, owed, order, as_of=date(2026, 2, 10))
    assert a.parts == (
        ("old", ChargeKind.PENALTY, 7),
        ("old", ChargeKind.FEE, 40),
        ("old", ChargeKind.PRINCIPAL, 500),
        ("due", ChargeKind.FEE, 40),
        ("due", ChargeKind.PRINCIPAL, 13),
    )
    everything = allocate_payment(5_000, owed, order, as_of=date(2026, 2, 10))
    assert everything.overpayment_fen == 5_000 - (540 + 547 + 540)


def test_offers_list_cycle_and_every_term() -> None:
    huabei = CATALOG["huabei"]
    found = offers(huabei, 600_000, DAY, cap_bp=2400)
    assert [o.quote.terms if o.kind == "installments" else CYCLE for o in found] == [
        CYCLE,
        *[t.count for t in huabei.installments.terms],
    ]
    with pytest.raises(CreditError):
        offer(CATALOG["pay_in_4"], 10_000, CYCLE, DAY, cap_bp=2400)


def test_purchase_repay_and_overpay(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    huabei = CATALOG["huabei"]
    with db_engine.begin() as conn:
        acct = credit.open_credit_account(conn, clock, huabei, "s1", 1_000_000)
        with pytest.raises(CreditError):
            credit.open_credit_account(conn, clock, huabei, "s1", 1_000_000)
        plan = offer(huabei, 600_000, 12, clock.today(), cap_bp=2400)
        auth = credit.authorize(conn, clock, acct, "m1", 600_000, "auth-1")
        assert auth.available_after_fen == 400_000
        with pytest.raises(Declined) as err:
            credit.authorize(conn, clock, acct, "m1", 400_001, "auth-2")
        assert err.value.code == "insufficient_credit"
        plan_id = credit.capture(
            conn, clock, huabei, acct, "m1", auth.hold_entry_id, "o1", plan, "cap-1"
        )
        # replaying the capture returns the same plan and books nothing twice
        assert (
            credit.capture(conn, clock, huabei, acct, "m1", auth.hold_entry_id, "o1", plan, "cap-1")
            == plan_id
        )
        summary = credit.account_summary(conn, acct, clock.today())
        assert summary["owed_fen"] == plan.quote.schedule.total_fen
        assert summary["next_due_date"] == "2026-02-10"
        first = plan.quote.schedule.lines[0].total_fen
        paid = credit.repay(conn, clock, huabei, acct, first, "r1")
        assert paid.by_kind_fen["fee"] == plan.quote.schedule.lines[0].fee_fen
        assert credit.repay(conn, clock, huabei, acct, first, "r1").replayed
        rest = plan.quote.schedule.total_fen - first
        over = credit.repay(conn, clock, huabei, acct, rest + 123, "r2")
        assert over.to_credit_balance_fen == 123
        status = conn.execute(
            select(installment_plans.c.status).where(installment_plans.c.id == plan_id)
        ).scalar_one()
        assert status == "paid_off"
        summary = credit.account_summary(conn, acct, clock.today())
        assert (summary["owed_fen"], summary["credit_balance_fen"]) == (0, 123)
        assert summary["available_fen"] == 1_000_000
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_limit_outside_product_range_is_refused(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    with db_engine.begin() as conn, pytest.raises(CreditError) as err:
        credit.open_credit_account(conn, clock, CATALOG["huabei"], "s1", 10**12)
    assert err.value.code == "limit_out_of_range"
