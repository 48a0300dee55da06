"""Annualized-rate disclosure by the IRR method.

Test vectors: ../shared/reference/products.md, "Annualized-rate disclosure": worked values for
equal-principal-equal-fee installments with monthly periods, to 1 bp. The totals 2.5% / 4.5% /
6.5% / 8% (later 7.5%) for 3 / 6 / 9 / 12 periods are the figures widely reported for Huabei.
"""

from datetime import date

import pytest

from fenqi.pricing.annualized import annualized_rate
from fenqi.pricing.cap import RateCapExceeded, check_rate_cap
from fenqi.pricing.due_dates import add_months
from fenqi.pricing.schedule import Pricing, build_schedule
from fenqi.products.model import FeeMethod

START = date(2025, 1, 2)


def monthly(n: int) -> list[date]:
    return [add_months(START, i + 1) for i in range(n)]


@pytest.mark.parametrize(
    ("periods", "total_fee_bp", "nominal_bp", "effective_bp"),
    [
        (3, 250, 1494, 1600),  # products.md table row 1: 3 periods, 2.5% -> 14.94% / 16.00%
        (6, 450, 1527, 1638),  # row 2: 6 periods, 4.5% -> 15.27% / 16.38%
        (9, 650, 1534, 1647),  # row 3: 9 periods, 6.5% -> 15.34% / 16.47%
        (12, 750, 1357, 1444),  # row 4: 12 periods, 7.5% -> 13.57% / 14.44%
        (12, 800, 1445, 1545),  # row 5: 12 periods, 8.0% -> 14.45% / 15.45%
    ],
)
def test_published_vectors(
    periods: int, total_fee_bp: int, nominal_bp: int, effective_bp: int
) -> None:
    pricing = Pricing(FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE, total_fee_bp=total_fee_bp)
    schedule = build_schedule(1_000_000, pricing, START, monthly(periods))
    rate = annualized_rate(schedule)
    assert abs(rate.nominal_bp - nominal_bp) <= 1
    assert abs(rate.effective_bp - effective_bp) <= 1


def test_irr_is_near_twice_the_flat_rate() -> None:
    # products.md: "12 periods at 8% total: 8% flat a year, 14.45% by IRR"
    pricing = Pricing(FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE, total_fee_bp=800)
    rate = annualized_rate(build_schedule(600_000, pricing, START, monthly(12)))
    assert 1.7 * 800 < rate.nominal_bp < 2 * 800


def test_equal_installment_nominal_equals_contract_rate() -> None:
    # An annuity at 12% a year: IRR × 12 is the contract rate itself (up to fen rounding).
    pricing = Pricing(FeeMethod.EQUAL_INSTALLMENT, annual_rate_bp=1200)
    rate = annualized_rate(build_schedule(1_200_000, pricing, START, monthly(12)))
    assert abs(rate.nominal_bp - 1200) <= 1
    assert abs(rate.effective_bp - 1268) <= 1  # 1.01^12 − 1 = 12.68%


def test_interest_free_plan_is_zero() -> None:
    pricing = Pricing(FeeMethod.PAY_IN_N)
    rate = annualized_rate(build_schedule(10_000, pricing, START, [START, *monthly(3)]))
    assert (rate.nominal_bp, rate.effective_bp, rate.xirr_bp) == (0, 0, 0)


def test_cap_refuses_with_the_figure() -> None:
    pricing = Pricing(FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE, total_fee_bp=1500)  # 15% over 12
    rate = annualized_rate(build_schedule(1_000_000, pricing, START, monthly(12)))
    with pytest.raises(RateCapExceeded) as err:
        check_rate_cap(rate, 2400)
    assert "over the cap of 24.00%" in str(err.value)
    assert err.value.detail["annualized_rate_bp"] == rate.nominal_bp > 2400
    check_rate_cap(rate, 3600)  # under a 36% cap it passes
