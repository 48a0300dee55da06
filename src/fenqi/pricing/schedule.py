"""Installment schedules: how a principal and its price are split over the periods.

Methods: equal principal with equal fee (等本等费, how Huabei and Baitiao charge), equal
instalment (等额本息), equal principal (等额本金), pay-in-N, and simple interest on actual days
(Affirm-style). Every schedule's parts add up exactly to principal plus price; no part is negative.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from fenqi.money import BP_PER_UNIT, Remainder, Rounding, apply_bp, round_decimal, split_evenly
from fenqi.products.model import FeeMethod

DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    period: int
    due_date: date
    principal_fen: int
    fee_fen: int
    interest_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.fee_fen + self.interest_fen


@dataclass(frozen=True, slots=True)
class Schedule:
    start_date: date
    principal_fen: int
    lines: tuple[ScheduleLine, ...]

    @property
    def fee_fen(self) -> int:
        return sum(line.fee_fen for line in self.lines)

    @property
    def interest_fen(self) -> int:
        return sum(line.interest_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return sum(line.total_fen for line in self.lines)

    def cash_flows(self) -> list[tuple[date, int]]:
        """The shopper's view: the amount lent at the start, then each payment (fen)."""
        return [(self.start_date, -self.principal_fen)] + [
            (line.due_date, line.total_fen) for line in self.lines
        ]


@dataclass(frozen=True, slots=True)
class Pricing:
    """The price of one plan: which method, and its rate (total fee or annual interest)."""

    method: FeeMethod
    total_fee_bp: int = 0
    annual_rate_bp: int = 0
    fee_upfront: bool = False
    rounding: Rounding = Rounding.HALF_UP
    remainder: Remainder = Remainder.LAST


def build_schedule(
    principal_fen: int, pricing: Pricing, start_date: date, due_dates: list[date]
) -> Schedule:
    if principal_fen <= 0:
        raise ValueError(f"principal_fen must be positive, got {principal_fen}")
    if not due_dates:
        raise ValueError("a schedule needs at least one due date")
    if due_dates[0] < start_date or any(b <= a for a, b in itertools.pairwise(due_dates)):
        raise ValueError("due dates must be increasing and not before the start date")
    builder = _BUILDERS[pricing.method]
    lines = builder(principal_fen, pricing, start_date, due_dates)
    schedule = Schedule(start_date, principal_fen, tuple(lines))
    assert sum(line.principal_fen for line in lines) == principal_fen, "principal must sum"
    assert all(min(x.principal_fen, x.fee_fen, x.interest_fen) >= 0 for x in lines)
    return schedule


def _lines(
    due_dates: list[date], principal: list[int], fee: list[int], interest: list[int]
) -> list[ScheduleLine]:
    return [
        ScheduleLine(i + 1, d, p, f, r)
        for i, (d, p, f, r) in enumerate(zip(due_dates, principal, fee, interest, strict=True))
    ]


def _equal_principal_equal_fee(
    principal_fen: int, pricing: Pricing, _start: date, due_dates: list[date]
) -> list[ScheduleLine]:
    # Published rule: principal ÷ N per period, remainder in the last; fee per period =
    # principal × fee rate (the fee is charged on the original principal every period).
    n = len(due_dates)
    principal = split_evenly(principal_fen, n, pricing.remainder)
    fee_total = apply_bp(principal_fen, pricing.total_fee_bp, pricing.rounding)
    if pricing.fee_upfront:
        fee = [fee_total] + [0] * (n - 1)
    else:
        fee = split_evenly(fee_total, n, pricing.remainder)
    return _lines(due_dates, principal, fee, [0] * n)


def _pay_in_n(
    principal_fen: int, pricing: Pricing, _start: date, due_dates: list[date]
) -> list[ScheduleLine]:
    n = len(due_dates)
    return _lines(due_dates, split_evenly(principal_fen, n, pricing.remainder), [0] * n, [0] * n)


def _monthly_rate(pricing: Pricing) -> Decimal:
    return Decimal(pricing.annual_rate_bp) / BP_PER_UNIT / 12


def _annuity_payment(principal_fen: int, rate: Decimal, n: int, rounding: Rounding) -> int:
    if rate == 0:
        return -(-principal_fen // n)
    payment = Decimal(principal_fen) * rate / (1 - (1 + rate) ** -n)
    return round_decimal(payment, rounding)


def _equal_installment(
    principal_fen: int, pricing: Pricing, _start: date, due_dates: list[date]
) -> list[ScheduleLine]:
    n = len(due_dates)
    rate = _monthly_rate(pricing)
    payment = _annuity_payment(principal_fen, rate, n, pricing.rounding)
    balance = principal_fen
    principal: list[int] = []
    interest: list[int] = []
    for i in range(n):
        owed = round_decimal(balance * rate, pricing.rounding)
        part = balance if i == n - 1 else min(balance, max(0, payment - owed))
        principal.append(part)
        interest.append(owed)
        balance -= part
    return _lines(due_dates, principal, [0] * n, interest)


def _equal_principal(
    principal_fen: int, pricing: Pricing, _start: date, due_dates: list[date]
) -> list[ScheduleLine]:
    n = len(due_dates)
    rate = _monthly_rate(pricing)
    principal = split_evenly(principal_fen, n, pricing.remainder)
    interest = []
    balance = principal_fen
    for part in principal:
        interest.append(round_decimal(balance * rate, pricing.rounding))
        balance -= part
    return _lines(due_dates, principal, [0] * n, interest)


def _simple_interest(
    principal_fen: int, pricing: Pricing, start: date, due_dates: list[date]
) -> list[ScheduleLine]:
    # Affirm-style: a fixed monthly payment; interest accrues daily on the declining balance
    # for the actual days of each period; the last payment settles what is left.
    n = len(due_dates)
    payment = _annuity_payment(principal_fen, _monthly_rate(pricing), n, Rounding.UP)
    daily = Decimal(pricing.annual_rate_bp) / BP_PER_UNIT / DAYS_PER_YEAR
    balance = principal_fen
    previous = start
    principal: list[int] = []
    interest: list[int] = []
    for i, due in enumerate(due_dates):
        owed = round_decimal(balance * daily * (due - previous).days, pricing.rounding)
        part = balance if i == n - 1 else min(balance, max(0, payment - owed))
        principal.append(part)
        interest.append(owed)
        balance -= part
        previous = due
    return _lines(due_dates, principal, [0] * n, interest)


_BUILDERS = {
    FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE: _equal_principal_equal_fee,
    FeeMethod.EQUAL_INSTALLMENT: _equal_installment,
    FeeMethod.EQUAL_PRINCIPAL: _equal_principal,
    FeeMethod.PAY_IN_N: _pay_in_n,
    FeeMethod.SIMPLE_INTEREST: _simple_interest,
}
