"""Quotes on the shipped products: random amounts, terms and dates; holiday roll of due dates."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fenqi.errors import FenqiError
from fenqi.pricing.due_dates import due_dates, max_interest_free_days
from fenqi.pricing.quote import QuoteError, quote
from fenqi.products import load_catalog

CATALOG = load_catalog(2400)
NAMES = sorted(CATALOG)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    data=st.data(),
    day=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
)
def test_any_offered_plan_sums_and_respects_the_cap(
    name: str, data: st.DataObject, day: date
) -> None:
    product = CATALOG[name]
    term = data.draw(st.sampled_from(product.installments.terms))
    amount = data.draw(
        st.integers(max(1, product.installments.min_amount_fen), product.limits.max_fen)
    )
    try:
        q = quote(product, amount, term.count, day, cap_bp=2400)
    except FenqiError as exc:
        # tiny amounts can round a fee into a rate over the cap; that refusal names the cap
        assert exc.code == "rate_cap_exceeded", exc
        return
    s = q.schedule
    assert sum(x.principal_fen for x in s.lines) == amount
    assert s.total_fen == amount + s.fee_fen + s.interest_fen
    assert all(min(x.principal_fen, x.fee_fen, x.interest_fen) >= 0 for x in s.lines)
    dues = [x.due_date for x in s.lines]
    assert all(a < b for a, b in itertools.pairwise(dues))
    assert s.lines[0].due_date >= day
    assert q.rate.nominal_bp <= 2400


def test_due_date_on_a_holiday_rolls_when_the_product_says_so() -> None:
    base = CATALOG["huabei"]
    # a copy due on the 1st: 2024-10-01 is National Day; the next working day is 2024-10-08
    billing = base.billing.model_copy(update={"statement_day": 20, "due_day": 1})
    fixed = base.model_copy(update={"billing": billing})
    rolling = base.model_copy(update={"billing": billing.model_copy(update={"holiday_roll": True})})
    assert due_dates(fixed, date(2024, 9, 1), 1) == [date(2024, 10, 1)]
    assert due_dates(rolling, date(2024, 9, 1), 1) == [date(2024, 10, 8)]


def test_longest_interest_free_period_on_huabei_style() -> None:
    huabei = CATALOG["huabei"]
    # a purchase on the statement day falls in the next cycle: 1 Jan → due 10 Feb, 41 days
    assert max_interest_free_days(huabei, date(2026, 1, 1)) == 41
    assert max_interest_free_days(huabei, date(2026, 1, 1)) == huabei.billing.max_interest_free_days
    # the day before a statement day has the shortest: 31 Dec → due 10 Jan, 11 days
    assert max_interest_free_days(huabei, date(2026, 1, 1) - timedelta(days=1)) == 11


def test_pay_in_4_is_four_payments_two_weeks_apart() -> None:
    q = quote(CATALOG["pay_in_4"], 40_001, 4, date(2026, 5, 1), cap_bp=2400)
    assert [x.due_date for x in q.schedule.lines] == [
        date(2026, 5, 1),
        date(2026, 5, 15),
        date(2026, 5, 29),
        date(2026, 6, 12),
    ]
    assert [x.total_fen for x in q.schedule.lines] == [10_000, 10_000, 10_000, 10_001]


def test_amount_over_the_product_limit_is_refused() -> None:
    huabei = CATALOG["huabei"]
    with pytest.raises(QuoteError, match="amount_fen"):
        quote(huabei, huabei.limits.max_fen + 1, 3, date(2026, 1, 2), cap_bp=2400)
