"""Purchases and repayments through the credit services, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select

from fenqi.clock import FixedClock
from fenqi.credit import service as credit
from fenqi.credit.allocation import LineKey, Owed, allocate_payment
from fenqi.credit.errors import CreditError, Declined
from fenqi.credit.plans import CYCLE, offer, offers
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.accounts import find_account
from fenqi.ledger.chart import CUSTOMER_CODES, OwnerKind
from fenqi.ledger.service import get_balance, reconcile, trial_balance
from fenqi.products import load_catalog
from fenqi.products.model import ChargeKind, RepaymentRule
from fenqi.store.schema.credit import installment_plans

CATALOG = load_catalog(2400)
DAY = date(2026, 1, 2)


def test_allocation_pays_oldest_due_first_in_product_order() -> None:
    order = [ChargeKind.PENALTY, ChargeKind.FEE, ChargeKind.INTEREST, ChargeKind.PRINCIPAL]
    old, due, later = LineKey(1, 1), LineKey(1, 2), LineKey(1, 3)
    owed = [
        Owed(later, date(2026, 3, 10), {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40}),
        Owed(
            old,
            date(2026, 1, 10),
            {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40, ChargeKind.PENALTY: 7},
        ),
        Owed(due, date(2026, 2, 10), {ChargeKind.PRINCIPAL: 500, ChargeKind.FEE: 40}),
    ]
    a = allocate_payment(600, owed, order, as_of=date(2026, 2, 10))
    assert a.parts == (
        (old, ChargeKind.PENALTY, 7),
        (old, ChargeKind.FEE, 40),
        (old, ChargeKind.PRINCIPAL, 500),
        (due, ChargeKind.FEE, 40),
        (due, ChargeKind.PRINCIPAL, 13),
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
        # Huabei takes nothing beyond what is owed (repayment.overpayment_max_fen = 0) ...
        with pytest.raises(CreditError) as refused:
            credit.repay(conn, clock, huabei, acct, rest + 123, "r2")
        assert refused.value.code == "overpayment_too_large"
        assert refused.value.detail["owed_fen"] == rest
        # ... a product that allows ¥1.23 more keeps it as a credit balance
        lenient = huabei.model_copy(update={"repayment": RepaymentRule(overpayment_max_fen=123)})
        with pytest.raises(CreditError):
            credit.repay(conn, clock, lenient, acct, rest + 124, "r2")
        over = credit.repay(conn, clock, lenient, acct, rest + 123, "r2")
        assert over.to_credit_balance_fen == 123
        status = conn.execute(
            select(installment_plans.c.status).where(installment_plans.c.id == plan_id)
        ).scalar_one()
        assert status == "paid_off"
        summary = credit.account_summary(conn, acct, clock.today())
        assert (summary["owed_fen"], summary["credit_balance_fen"]) == (0, 123)
        assert summary["available_fen"] == 1_000_000
        assert trial_balance(conn).balanced and reconcile(conn) == []
        assert deep_reconcile(conn).ok, deep_reconcile(conn).differences


def test_limit_outside_product_range_is_refused(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    with db_engine.begin() as conn, pytest.raises(CreditError) as err:
        credit.open_credit_account(conn, clock, CATALOG["huabei"], "s1", 10**12)
    assert err.value.code == "limit_out_of_range"


def test_a_sale_books_what_an_authorization_and_its_capture_book(db_engine: Engine) -> None:
    """`credit.sell` (authorized and captured at once) leaves the shopper's accounts, the plan
    and its lines as a hold captured in full does, with no hold; a sale over the credit left
    is declined and moves nothing."""
    clock = FixedClock.on(DAY)
    huabei = CATALOG["huabei"]
    plan = offer(huabei, 300_000, 6, clock.today(), cap_bp=2400)
    with db_engine.begin() as conn:
        held = credit.open_credit_account(conn, clock, huabei, "s-held", 500_000)
        sold = credit.open_credit_account(conn, clock, huabei, "s-sold", 500_000)
        auth = credit.authorize(conn, clock, held, "m1", 300_000, "auth-1")
        held_plan = credit.capture(
            conn, clock, huabei, held, "m1", auth.hold_entry_id, "o-held", plan, "cap-1"
        )
        sale = credit.sell(conn, clock, huabei, sold, "m1", "o-sold", plan, "sale-1")
        assert sale.available_after_fen == auth.available_after_fen == 200_000
        # a replay books nothing twice and names the same plan
        assert credit.sell(conn, clock, huabei, sold, "m1", "o-sold", plan, "sale-1") == sale

        def books(account_id: int, plan_id: int) -> tuple[object, ...]:
            summary = credit.account_summary(conn, account_id, clock.today())
            by_code = {}
            for code in CUSTOMER_CODES:
                found = find_account(conn, code, OwnerKind.CUSTOMER, str(account_id), "CNY")
                if found is not None:
                    bal = get_balance(conn, found)
                    by_code[code] = (bal.debits_posted, bal.credits_posted, bal.debits_pending)
            row = conn.execute(
                select(
                    installment_plans.c.principal_fen,
                    installment_plans.c.fee_fen,
                    installment_plans.c.interest_fen,
                    installment_plans.c.terms,
                    installment_plans.c.status,
                ).where(installment_plans.c.id == plan_id)
            ).one()
            return summary["owed_fen"], summary["available_fen"], by_code, tuple(row)

        assert books(sold, sale.plan_id) == books(held, held_plan)
        big = offer(huabei, 200_001, 3, clock.today(), cap_bp=2400)
        with pytest.raises(Declined) as err, conn.begin_nested():
            credit.sell(conn, clock, huabei, sold, "m1", "o-big", big, "sale-2")
        assert err.value.code == "insufficient_credit"
        assert credit.account_summary(conn, sold, clock.today())["available_fen"] == 200_000
        assert trial_balance(conn).balanced and reconcile(conn) == []
        assert deep_reconcile(conn).ok, deep_reconcile(conn).differences
