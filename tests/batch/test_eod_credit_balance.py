"""A credit balance pays what falls due (issue 24 item 8): the end of day applies it before
penalties, statements and aging, so later bills do not fall past due while it sits there. On
SQLite and PostgreSQL, on the Huabei-style template (statement day 1, due day 10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select

from fenqi.credit.credit_balance import credit_horizon
from fenqi.ledger.chart import AccountCode as A
from fenqi.products.model import RepaymentRule
from fenqi.store.schema.credit import repayments
from support.billing_world import World


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = World(db_url, date(2026, 1, 2))
    # this shopper's product lets a payment exceed what is owed by up to ¥1,000
    w.product = w.product.model_copy(
        update={"repayment": RepaymentRule(overpayment_max_fen=100_000)}
    )
    yield w
    w.books_balance()
    w.close()


def _credit(world: World, acct: int) -> int:
    return int(world.summary(acct)["credit_balance_fen"])


def test_credit_horizon_is_the_latest_statement_due_date() -> None:
    from fenqi.products.catalog_loader import load_product

    huabei = load_product("huabei", 2400)
    assert credit_horizon(huabei, date(2026, 1, 31)) == date(2026, 1, 31)  # 10 Jan: paid by now
    assert credit_horizon(huabei, date(2026, 2, 1)) == date(2026, 2, 10)  # statement day
    assert credit_horizon(huabei, date(2026, 2, 15)) == date(2026, 2, 15)
    assert credit_horizon(load_product("pay_in_4", 2400), date(2026, 2, 1)) == date(2026, 2, 1)


def test_a_credit_balance_pays_the_next_bill_so_it_never_falls_late(world: World) -> None:
    acct = world.open()
    world.buy(acct, 100_000, 0)  # due 10 Feb
    world.pay(acct, 100_000 + 100_000)  # ¥1,000 more than owed: a credit balance
    assert _credit(world, acct) == 100_000
    world.buy(acct, 80_000, 0)  # also on the February statement
    world.go_to(date(2026, 1, 20))
    assert _credit(world, acct) == 100_000  # not due yet: the credit waits
    world.go_to(date(2026, 2, 2))  # the statement day (1 Feb) has run
    assert _credit(world, acct) == 20_000
    assert world.summary(acct)["owed_fen"] == 0
    assert world.statements(acct) == []  # nothing left to bill
    world.go_to(date(2026, 2, 20))  # no payment: yet nothing is late, no penalty
    assert world.arrears(acct)[:2] == (0, "M0")
    assert world.accrued(acct) == {}
    assert world.customer(acct, A.CUSTOMER_CREDIT_BALANCE) == -20_000  # net debit: owed to them
    with world.ctx.engine.connect() as conn:
        notes = conn.execute(
            select(repayments.c.note, repayments.c.amount_fen, repayments.c.business_date)
            .where(repayments.c.credit_account_id == acct)
            .order_by(repayments.c.id)
        ).all()
    assert [tuple(n) for n in notes] == [
        ("", 200_000, date(2026, 1, 2)),
        ("credit_balance", 80_000, date(2026, 2, 1)),
    ]
    world.receivables_equal_owed(acct)


def test_a_credit_balance_smaller_than_the_bill_pays_part_of_it(world: World) -> None:
    acct = world.open()
    world.buy(acct, 100_000, 0)
    world.pay(acct, 130_000)  # ¥300 of credit
    world.buy(acct, 80_000, 0)
    world.go_to(date(2026, 2, 2))
    [stmt] = world.statements(acct)
    assert stmt["total_fen"] == 50_000  # 80,000 less the 30,000 credit, on the statement
    assert _credit(world, acct) == 0
    world.go_to(date(2026, 2, 12))  # unpaid past 10 Feb: late on what is left only
    assert world.arrears(acct)[:2] == (1, "M1")
    # penalty 0.05%/day on the 50,000 left, not on the 80,000 billed: 25 fen for 11 Feb
    assert world.accrued(acct) == {"penalty": 25}
    assert world.summary(acct)["overdue_fen"] == 50_000 + 25
