"""Schedules: parts sum exactly to principal plus price, no part is negative, dates increase."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fenqi.money import Remainder
from fenqi.pricing.due_dates import add_months
from fenqi.pricing.schedule import Pricing, build_schedule
from fenqi.products.model import FeeMethod

START = date(2025, 3, 31)


@given(
    principal=st.integers(1, 10**10),
    n=st.integers(1, 36),
    method=st.sampled_from(list(FeeMethod)),
    fee_bp=st.integers(0, 3000),
    rate_bp=st.integers(0, 3600),
    remainder=st.sampled_from(list(Remainder)),
    upfront=st.booleans(),
)
def test_parts_sum_to_the_whole(
    principal: int,
    n: int,
    method: FeeMethod,
    fee_bp: int,
    rate_bp: int,
    remainder: Remainder,
    upfront: bool,
) -> None:
    pricing = Pricing(
        method,
        total_fee_bp=fee_bp,
        annual_rate_bp=rate_bp,
        fee_upfront=upfront,
        remainder=remainder,
    )
    dates = [add_months(START, i + 1) for i in range(n)]
    s = build_schedule(principal, pricing, START, dates)
    assert sum(x.principal_fen for x in s.lines) == principal
    assert s.total_fen == principal + s.fee_fen + s.interest_fen
    assert all(x.principal_fen >= 0 and x.fee_fen >= 0 and x.interest_fen >= 0 for x in s.lines)
    assert [x.period for x in s.lines] == list(range(1, n + 1))
    if method is FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE:
        assert s.fee_fen == (principal * fee_bp * 2 + 10_000) // 20_000  # half-up of P × fee
    else:
        assert s.fee_fen == 0
    if method is FeeMethod.PAY_IN_N or rate_bp == 0:
        assert s.interest_fen == 0


def test_huabei_style_rule_remainder_in_last_period() -> None:
    # "principal of each installment = total ÷ N; the remainder is recorded in the last
    # installment; fee per installment = principal × fee rate" (products.md, bank terms)
    s = build_schedule(
        100_000,
        Pricing(FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE, total_fee_bp=750),
        START,
        [add_months(START, i + 1) for i in range(12)],
    )
    assert [x.principal_fen for x in s.lines] == [8333] * 11 + [8337]
    assert [x.fee_fen for x in s.lines] == [625] * 12  # 7.5% of ¥1,000 = ¥75 = 12 × ¥6.25
    assert s.lines[0].due_date == date(2025, 4, 30)  # month-end clamp


def test_equal_principal_interest_declines() -> None:
    s = build_schedule(
        1_200_000,
        Pricing(FeeMethod.EQUAL_PRINCIPAL, annual_rate_bp=1200),
        START,
        [add_months(START, i + 1) for i in range(12)],
    )
    interest = [x.interest_fen for x in s.lines]
    assert interest[0] == 12_000 and interest == sorted(interest, reverse=True)
    assert interest[-1] == 1_000


def test_simple_interest_counts_actual_days() -> None:
    start = date(2025, 1, 1)
    dates = [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
    s = build_schedule(
        300_000, Pricing(FeeMethod.SIMPLE_INTEREST, annual_rate_bp=1500), start, dates
    )
    # 31 days on ¥3,000 at 15%: 3000 × 0.15 × 31/365 = ¥38.22
    assert s.lines[0].interest_fen == 3822
    assert s.lines[1].interest_fen < s.lines[0].interest_fen  # 28 days on a lower balance


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="principal_fen"):
        build_schedule(0, Pricing(FeeMethod.PAY_IN_N), START, [START])
    with pytest.raises(ValueError, match="increasing"):
        build_schedule(100, Pricing(FeeMethod.PAY_IN_N), START, [date(2025, 5, 1)] * 2)
