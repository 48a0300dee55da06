"""Billing rules as pure functions: the minimum payment and the daily charge rates.

Minimum payment (per product, `[minimum_payment]`): the product's share of the principal that
may revolve (purchases paid in the interest-free cycle, and principal already revolving), plus
everything else in full — installments billed, fees, interest, penalties and overdue amounts —
with a floor. Paying at least the minimum keeps the account current; on products that allow
revolving, what stays unpaid then bears the daily revolving interest instead of being overdue.

Daily rates are held in parts per million per day (ppm): 0.05%/day = 5 bp = 500 ppm. Penalty
interest on an overdue installment is held down so that the plan's disclosed annualized rate
plus the penalty rate never passes the configured cap (cap_bp / 365 per day).

These rules have one home, here: the end of day's set-based SQL (`fenqi.batch.steps`) builds
its expressions with the same functions, passing SQL expressions for the numbers and the
database's LEAST/GREATEST for `smaller`/`larger` (the `*_rule` functions and `round_charge`
take either), and `tests/credit/test_billing_rules.py` checks on random cases, on both
databases, that the SQL they build computes what the Python does.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fenqi.money import BP_PER_UNIT

PPM_PER_BP = 100
PPM_PER_UNIT = 1_000_000  # a rate of 1 (100%) in ppm
DAYS_PER_YEAR = 365

# The two-argument min and max: Python's for numbers, LEAST/GREATEST for SQL expressions.
Extreme = Callable[[Any, Any], Any]


def daily_ppm(rate_bp: Decimal | int) -> int:
    return int(Decimal(rate_bp) * PPM_PER_BP)


def round_charge(fen_times_ppm: Any) -> Any:
    """Whole fen of an amount × a daily rate in ppm (a number or a SQL expression), rounded
    half up. Amounts and rates are never negative."""
    return (fen_times_ppm + PPM_PER_UNIT // 2) // PPM_PER_UNIT


def charge_for_day(amount_fen: int, rate_ppm: int) -> int:
    """One day's charge on an amount, rounded half up to whole fen."""
    return int(round_charge(amount_fen * rate_ppm))


def capped_penalty_rule(
    penalty_ppm: Any,
    plan_rate_bp: Any,
    cap_bp: Any,
    *,
    smaller: Extreme = min,
    larger: Extreme = max,
) -> Any:
    """The daily penalty rate a plan may bear: the product's, held down so that the plan's own
    annualized rate plus the penalty's stays within the cap (numbers or SQL expressions)."""
    room_ppm = (cap_bp - plan_rate_bp) * PPM_PER_BP // DAYS_PER_YEAR
    return smaller(penalty_ppm, larger(room_ppm, 0))


def capped_penalty_ppm(penalty_ppm: int, plan_rate_bp: int, cap_bp: int) -> int:
    """The penalty rate allowed on a plan whose own annualized rate is plan_rate_bp."""
    return int(capped_penalty_rule(penalty_ppm, plan_rate_bp, cap_bp))


def minimum_payment_rule(
    total_fen: Any,
    revolvable_principal_fen: Any,
    principal_bp: int,
    floor_fen: int,
    *,
    smaller: Extreme = min,
    larger: Extreme = max,
) -> Any:
    """What must be paid by the due date to stay current (numbers or SQL expressions): all but
    the share of the revolvable principal that may revolve, at least the floor, at most the
    total."""
    may_revolve = revolvable_principal_fen * (BP_PER_UNIT - principal_bp) // BP_PER_UNIT
    return smaller(total_fen, larger(total_fen - may_revolve, floor_fen))


def minimum_payment(
    total_fen: int, revolvable_principal_fen: int, principal_bp: int, floor_fen: int
) -> int:
    """What must be paid by the due date to stay current."""
    if not 0 <= revolvable_principal_fen <= total_fen:
        raise ValueError("revolvable principal must be within the total")
    return int(minimum_payment_rule(total_fen, revolvable_principal_fen, principal_bp, floor_fen))
