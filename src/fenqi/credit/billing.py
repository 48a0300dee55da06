"""Billing rules as pure functions: the minimum payment and the daily charge rates.

Minimum payment (per product, `[minimum_payment]`): the product's share of the principal that
may revolve (purchases paid in the interest-free cycle, and principal already revolving), plus
everything else in full — installments billed, fees, interest, penalties and overdue amounts —
with a floor. Paying at least the minimum keeps the account current; on products that allow
revolving, what stays unpaid then bears the daily revolving interest instead of being overdue.

Daily rates are held in parts per million per day (ppm): 0.05%/day = 5 bp = 500 ppm. Penalty
interest on an overdue installment is held down so that the plan's disclosed annualized rate
plus the penalty rate never passes the configured cap (cap_bp / 365 per day).
"""

from __future__ import annotations

from decimal import Decimal

from fenqi.money import BP_PER_UNIT

PPM_PER_BP = 100
DAYS_PER_YEAR = 365


def daily_ppm(rate_bp: Decimal | int) -> int:
    return int(Decimal(rate_bp) * PPM_PER_BP)


def capped_penalty_ppm(penalty_ppm: int, plan_rate_bp: int, cap_bp: int) -> int:
    """The penalty rate allowed on a plan whose own annualized rate is plan_rate_bp."""
    room_ppm = max(0, cap_bp - plan_rate_bp) * PPM_PER_BP // DAYS_PER_YEAR
    return min(penalty_ppm, room_ppm)


def charge_for_day(amount_fen: int, rate_ppm: int) -> int:
    """One day's charge on an amount, rounded half up to whole fen."""
    return (amount_fen * rate_ppm + 500_000) // 1_000_000


def minimum_payment(
    total_fen: int, revolvable_principal_fen: int, principal_bp: int, floor_fen: int
) -> int:
    """What must be paid by the due date to stay current."""
    if not 0 <= revolvable_principal_fen <= total_fen:
        raise ValueError("revolvable principal must be within the total")
    may_revolve = revolvable_principal_fen * (BP_PER_UNIT - principal_bp) // BP_PER_UNIT
    return min(total_fen, max(total_fen - may_revolve, floor_fen))
