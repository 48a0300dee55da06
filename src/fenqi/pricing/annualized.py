"""Annualized rate for disclosure, by the IRR method (PBOC Announcement [2021] No. 3).

The rate that discounts every repayment back to the amount lent. fenqi discloses the nominal
annualized rate (periodic IRR × periods per year) and reports the effective annual rate
((1 + periodic IRR)^periods − 1), plus an XIRR over the actual dates as a cross-check.
Solved by `pyxirr`, not by a hand-written solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pyxirr

from fenqi.pricing.schedule import Schedule


@dataclass(frozen=True, slots=True)
class AnnualizedRate:
    periodic_irr: Decimal
    periods_per_year: Decimal
    nominal_bp: int  # periodic IRR × periods per year, in bp: the disclosed figure
    effective_bp: int  # (1 + periodic IRR)^periods_per_year − 1, in bp
    xirr_bp: int  # effective annual rate from the actual dates (ACT/365)


def _to_bp(rate: Decimal) -> int:
    return int((rate * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _solve(values: list[int]) -> Decimal:
    if all(v == 0 for v in values[1:]) or sum(values) == 0:
        return Decimal(0)
    result = pyxirr.irr(values)
    if result is None:
        raise ValueError("no IRR exists for these cash flows")
    return Decimal(repr(result))


def annualized_rate(schedule: Schedule, periods_per_year: Decimal | int = 12) -> AnnualizedRate:
    ppy = Decimal(periods_per_year)
    flows = [-schedule.principal_fen] + [line.total_fen for line in schedule.lines]
    periodic = _solve(flows)
    nominal = periodic * ppy
    effective = Decimal(repr((1.0 + float(periodic)) ** float(ppy) - 1.0))
    return AnnualizedRate(
        periodic_irr=periodic,
        periods_per_year=ppy,
        nominal_bp=_to_bp(nominal),
        effective_bp=_to_bp(effective),
        xirr_bp=_xirr_bp(schedule.cash_flows()),
    )


def _xirr_bp(flows: list[tuple[date, int]]) -> int:
    if sum(amount for _, amount in flows) == 0:
        return 0
    dates = [d for d, _ in flows]
    amounts = [amount for _, amount in flows]
    result = pyxirr.xirr(dates, amounts)
    if result is None:
        raise ValueError("no XIRR exists for these cash flows")
    return _to_bp(Decimal(repr(result)))
