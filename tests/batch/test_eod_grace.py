"""Grace days are not late (issue 24 item 11): during a product's grace period an account is
current (DPD 0, M0) in the end of day's aging and in every read of it; once out of grace it
counts from the due date. Penalty rules are unchanged. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from fenqi.credit.arrears import arrears_on
from support.billing_world import World


def test_arrears_on_counts_nothing_inside_the_grace_period() -> None:
    due = date(2026, 2, 10)
    assert arrears_on(due, date(2026, 2, 11), grace_days=3) == (0, "M0")
    assert arrears_on(due, date(2026, 2, 13), grace_days=3) == (0, "M0")
    assert arrears_on(due, date(2026, 2, 14), grace_days=3) == (4, "M1")
    assert arrears_on(due, date(2026, 2, 11)) == (1, "M1")  # no grace: late the next day
    with pytest.raises(ValueError):
        arrears_on(due, date(2026, 2, 11), grace_days=-1)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    # Renxingfu's template: statement on the 1st, due on the 10th, 3 days' grace
    w = World(db_url, date(2026, 1, 2), product="renxingfu")
    yield w
    w.books_balance()
    w.close()


def test_an_account_in_grace_is_current_then_late_from_its_due_date(world: World) -> None:
    assert world.product.billing.grace_days == 3
    acct = world.open()
    world.buy(acct, 100_000, 0)  # due 10 Feb
    world.go_to(date(2026, 2, 12))  # end of 11 Feb: 1 day after the due date, in grace
    assert world.arrears(acct)[:2] == (0, "M0")
    world.go_to(date(2026, 2, 14))  # end of 13 Feb: the last day of grace
    assert world.arrears(acct)[:2] == (0, "M0")
    assert world.accrued(acct) == {}  # no penalty inside grace either (unchanged rule)
    world.go_to(date(2026, 2, 15))  # end of 14 Feb: out of grace, late since 10 Feb
    assert world.arrears(acct)[:2] == (4, "M1")
    assert world.accrued(acct).get("penalty", 0) > 0
    world.go_to(date(2026, 3, 13))  # end of 12 Mar: 30 days after the due date
    assert world.arrears(acct)[:2] == (30, "M1")
    world.go_to(date(2026, 3, 14))
    assert world.arrears(acct)[:2] == (31, "M2")


def test_the_portfolio_history_does_not_count_grace_days_late() -> None:
    from fenqi.analytics.arrears import AccountHistory, ArrearsBucket, DueLine

    line = DueLine(date(2026, 2, 10), 100_000, 100_000)
    graced = AccountHistory([line], [], grace_days=3)
    assert graced.state(date(2026, 2, 13)).bucket is ArrearsBucket.M0
    assert graced.state(date(2026, 2, 13)).days_past_due == 0
    assert graced.state(date(2026, 2, 14)).days_past_due == 4
    assert AccountHistory([line], []).state(date(2026, 2, 11)).days_past_due == 1
