"""Month-by-month scenarios on the Huabei-style template, figures worked out by hand from its
published rules (statement day 1, due day 10, 0.05%/day revolving interest and overdue penalty,
minimum payment 10% of revolvable principal plus everything else, installment fees 等本等费:
12 periods at 8.8%). On SQLite and PostgreSQL; books balance after every scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from fenqi.credit.hardship import restructure
from fenqi.credit.payoff import pay_off, quote_payoff
from fenqi.credit.refunds import refund_plan
from fenqi.ledger.chart import AccountCode as A
from fenqi.products.model import ChargeKind
from support.billing_world import World


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = World(db_url, date(2026, 1, 2))
    yield w
    w.books_balance()
    w.close()


def test_pay_in_full_in_the_free_period_costs_nothing(world: World) -> None:
    acct = world.open()
    world.buy(acct, 100_000, 0)  # ¥1,000 on 2 Jan, the day after the statement day
    world.go_to(date(2026, 2, 10))
    [stmt] = world.statements(acct)
    # billed on 1 Feb, due 10 Feb: 40 days free (41 counting both ends from 1 Jan)
    assert (stmt["statement_date"], stmt["due_date"]) == (date(2026, 2, 1), date(2026, 2, 10))
    # minimum = total − 90% of the revolvable principal = 100,000 − 90,000
    assert (stmt["total_fen"], stmt["minimum_fen"]) == (100_000, 10_000)
    world.pay(acct, 100_000)
    world.go_to(date(2026, 3, 31))
    assert world.accrued(acct) == {}
    assert world.summary(acct)["owed_fen"] == 0
    assert world.arrears(acct)[:2] == (0, "M0")
    assert world.platform(A.INTEREST_INCOME) == world.platform(A.PENALTY_INCOME) == 0
    world.receivables_equal_owed(acct)


def test_pay_the_minimum_and_revolve(world: World) -> None:
    acct = world.open()
    world.buy(acct, 100_000, 0)
    world.go_to(date(2026, 2, 10))
    world.pay(acct, 10_000)  # exactly the minimum
    world.go_to(date(2026, 3, 2))
    # 90,000 revolves from 11 Feb at 0.05%/day = 45 fen a day; 11 Feb .. 1 Mar = 19 days
    assert world.accrued(acct) == {"interest": 19 * 45}
    assert world.arrears(acct)[:2] == (0, "M0")  # paying the minimum keeps the account current
    march = world.statements(acct)[1]
    assert march["total_fen"] == 90_000 + 855
    assert march["minimum_fen"] == 90_855 - 81_000
    world.go_to(date(2026, 3, 10))
    # interest through 9 Mar: 27 days × 45 fen = 1,215; paying it all ends the revolving
    world.pay(acct, 90_000 + 1_215)
    world.go_to(date(2026, 4, 1))
    assert world.accrued(acct) == {"interest": 1_215}
    assert world.summary(acct)["owed_fen"] == 0
    assert world.platform(A.INTEREST_INCOME) == 1_215
    world.receivables_equal_owed(acct)


def test_pay_nothing_ages_to_m3_then_charge_off_and_recover(world: World) -> None:
    acct = world.open()
    world.buy(acct, 100_000, 0)
    world.go_to(date(2026, 2, 12))
    assert world.arrears(acct)[:2] == (1, "M1")  # due 10 Feb, unpaid at the end of 11 Feb
    world.go_to(date(2026, 4, 12))
    assert world.arrears(acct)[:2] == (60, "M2")  # 10 Feb + 60 days = 11 Apr
    world.go_to(date(2026, 4, 13))
    assert world.arrears(acct)[:2] == (61, "M3")
    # penalty 0.05%/day on ¥1,000 = 50 fen a day, 11 Feb .. 12 Apr = 61 days
    assert world.accrued(acct) == {"penalty": 61 * 50}
    world.receivables_equal_owed(acct)
    world.go_to(date(2026, 8, 9))
    assert world.arrears(acct)[2] is None  # 179 days past due on 8 Aug: not yet
    world.go_to(date(2026, 8, 10))
    dpd, bucket, charged_off_on = world.arrears(acct)
    assert (dpd, bucket, charged_off_on) == (180, "M6", date(2026, 8, 9))
    # 180 days of penalty (11 Feb .. 9 Aug), then accrual stops
    assert world.accrued(acct) == {"penalty": 180 * 50}
    assert world.customer(acct, A.WRITTEN_OFF_RECEIVABLE) == 100_000 + 9_000
    assert world.customer(acct, A.PRINCIPAL_RECEIVABLE) == 0
    assert world.platform(A.LOSS_ALLOWANCE) == 109_000
    world.go_to(date(2026, 8, 20))
    assert world.accrued(acct) == {"penalty": 9_000}
    world.pay(acct, 20_000)  # a recovery
    assert world.platform(A.RECOVERY_INCOME) == 20_000
    assert world.customer(acct, A.WRITTEN_OFF_RECEIVABLE) == 89_000
    assert world.summary(acct)["status"] == "charged_off"
    world.receivables_equal_owed(acct)


def test_twelve_installments_paid_on_time(world: World) -> None:
    acct = world.open()
    world.buy(acct, 120_000, 12)  # 10,000 principal + 880 fee (8.8% / 12) each month
    for month in range(12):
        due = date(2026 + (month + 1) // 12, (month + 1) % 12 + 1, 10)
        world.go_to(due)
        assert world.summary(acct)["next_due_fen"] == 10_880, due
        world.pay(acct, 10_880)
    world.go_to(date(2027, 2, 1))
    assert world.summary(acct)["owed_fen"] == 0
    assert world.platform(A.FEE_INCOME) == 10_560  # every fee earned, as billed
    assert world.platform(A.UNEARNED_FEE_INCOME) == 0
    assert world.accrued(acct) == {}
    assert len(world.statements(acct)) == 12
    world.receivables_equal_owed(acct)


def test_early_payoff_in_month_five(world: World) -> None:
    acct = world.open()
    plan = world.buy(acct, 120_000, 12)
    for month in (2, 3, 4, 5):
        world.go_to(date(2026, month, 10))
        world.pay(acct, 10_880)
    world.go_to(date(2026, 6, 5))  # line 5 billed on 1 Jun, due 10 Jun
    with world.ctx.engine.begin() as conn:
        q = quote_payoff(conn, world.product, acct, plan, world.clock.today())
        # 8 × 10,000 principal + line 5's fee; the 7 unbilled fees (7 × 880) are waived
        assert (q.principal_fen, q.fee_fen, q.fee_waived_fen) == (80_000, 880, 6_160)
        pay_off(conn, world.clock, world.product, acct, plan, 80_880, "payoff-1")
    assert world.summary(acct)["owed_fen"] == 0
    assert world.platform(A.FEE_INCOME) == 5 * 880
    assert world.platform(A.UNEARNED_FEE_INCOME) == 0
    world.go_to(date(2026, 8, 1))
    assert world.summary(acct)["owed_fen"] == 0
    world.receivables_equal_owed(acct)


def test_refund_in_the_middle_of_a_plan(world: World) -> None:
    acct = world.open()
    plan = world.buy(acct, 120_000, 12)
    for month in (2, 3):
        world.go_to(date(2026, month, 10))
        world.pay(acct, 10_880)
    world.go_to(date(2026, 3, 20))
    available = world.summary(acct)["available_fen"]
    with world.ctx.engine.begin() as conn:
        split = refund_plan(conn, world.clock, world.product, plan, "m1", 60_000, "refund-1")
    # half refunded: pro rata fee 10,560 × 1/2 = 5,280; the tail (lines 7..12) is waived whole
    assert split.charge_removed_fen[ChargeKind.FEE] == 5_280
    assert split.cash_back_fen == 0
    s = world.summary(acct)
    assert s["owed_fen"] == 4 * 10_880
    assert s["available_fen"] == available + 60_000
    for month in (4, 5, 6, 7):
        world.go_to(date(2026, month, 10))
        world.pay(acct, 10_880)
    world.go_to(date(2026, 9, 1))
    assert world.summary(acct)["owed_fen"] == 0
    assert world.platform(A.FEE_INCOME) == 6 * 880
    world.receivables_equal_owed(acct)


def test_restructured_plan(world: World) -> None:
    acct = world.open()
    world.buy(acct, 120_000, 12)
    world.go_to(date(2026, 3, 15))
    assert world.arrears(acct)[:2] == (32, "M2")  # at the end of 14 Mar: 10 Feb + 32 days
    # penalty is held so that 15.86% (the plan's rate) + penalty ≤ 24%: (2400−1586)×100/365 =
    # 223 ppm a day instead of 500. Line 1 (10,880) overdue 11 Feb .. 10 Mar: 28 days × 2 fen;
    # lines 1+2 (21,760) from 11 Mar .. 14 Mar: 4 days × 5 fen.
    assert world.accrued(acct) == {"penalty": 28 * 2 + 4 * 5}
    with world.ctx.engine.begin() as conn:
        new_plan = restructure(
            conn, world.clock, world.product, acct, 6, waive_charges=True, client_id="hardship-1"
        )
    assert new_plan > 0
    s = world.summary(acct)
    assert s["owed_fen"] == 120_000 + 10_560  # nothing more than was owed, charges waived
    assert s["next_due_date"] == "2026-04-15" and s["next_due_fen"] == 20_000 + 1_760
    world.go_to(date(2026, 3, 16))
    assert world.arrears(acct)[:2] == (0, "M0")  # re-aged
    world.receivables_equal_owed(acct)
