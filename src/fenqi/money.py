"""Money as an integer number of minor units (fen for CNY) with its currency; rates in basis points.

Why: a float near money is a bug. Every split here returns parts that add up exactly to the whole,
with the remainder placed where the product says (first or last part).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum

BP_PER_UNIT = 10_000  # 1 bp = 0.01% = 1/10,000

# ISO 4217 minor units of the currencies fenqi prices in.
MINOR_UNITS: dict[str, int] = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "AUD": 2, "GBP": 2}


class Rounding(StrEnum):
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    DOWN = "down"
    UP = "up"

    @property
    def decimal_mode(self) -> str:
        return {
            Rounding.HALF_UP: ROUND_HALF_UP,
            Rounding.HALF_EVEN: ROUND_HALF_EVEN,
            Rounding.DOWN: ROUND_DOWN,
            Rounding.UP: ROUND_UP,
        }[self]


class Remainder(StrEnum):
    """Where the fen that do not divide evenly go."""

    LAST = "last"
    FIRST = "first"


@dataclass(frozen=True, slots=True)
class Money:
    amount_fen: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool):
            raise TypeError(f"amount_fen must be an int, got {type(self.amount_fen).__name__}")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_fen + other.amount_fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_fen - other.amount_fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_fen, self.currency)

    def __str__(self) -> str:
        return f"{format_fen(self.amount_fen)} {self.currency}"


def format_fen(amount_fen: int) -> str:
    """12345 -> '123.45' (display only; never parse it back into arithmetic)."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


# Digits, with commas only as thousands separators in their places (as format_fen writes them),
# then at most one decimal point and two decimals: "1,0,0" is not ¥100, it is a typing mistake.
_YUAN = re.compile(r"^(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.([0-9]+))?$")


def parse_yuan(text: str) -> int:
    """What a person typed as an amount in yuan ('12000', '12,000.5', '0.01') as fen; raises
    ValueError naming the problem for anything else (a third decimal, a sign, a misplaced
    comma, not a number)."""
    stripped = text.strip()
    shown = repr(stripped[:40])
    found = _YUAN.match(stripped)
    if found is None or not any(c.isdigit() for c in stripped) or stripped.endswith("."):
        raise ValueError(
            f"{shown} is not an amount in yuan such as 12000, 12,000 or 99.50 (commas only "
            "between groups of three digits)"
        )
    cents = found.group(1) or ""
    if len(cents) > 2:
        raise ValueError(f"{shown} has more than two decimals (fen are the smallest)")
    whole = stripped.partition(".")[0].replace(",", "")
    return int(whole or "0") * 100 + int(cents.ljust(2, "0"))


def round_decimal(value: Decimal, rounding: Rounding = Rounding.HALF_UP) -> int:
    """Round a Decimal amount of fen to an integer number of fen."""
    return int(value.quantize(Decimal(1), rounding=rounding.decimal_mode))


def apply_bp(amount_fen: int, rate_bp: int | Decimal, rounding: Rounding = Rounding.HALF_UP) -> int:
    """amount × rate, rate in basis points, rounded to whole fen."""
    return round_decimal(Decimal(amount_fen) * Decimal(rate_bp) / BP_PER_UNIT, rounding)


def split_evenly(total_fen: int, parts: int, remainder: Remainder = Remainder.LAST) -> list[int]:
    """Split total into `parts` equal parts (rounded down), the remainder on one part.

    This is the published rule of bill installments: "principal of each installment = total
    installment principal ÷ number of installments; the remainder is recorded in the last
    installment" (see docs/products.md).
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    if total_fen < 0:
        raise ValueError("total_fen must not be negative")
    base, rest = divmod(total_fen, parts)
    out = [base] * parts
    out[-1 if remainder is Remainder.LAST else 0] += rest
    assert sum(out) == total_fen
    return out


def allocate(total_fen: int, weights: list[int]) -> list[int]:
    """Split total in proportion to integer weights (largest remainder), parts sum to total."""
    if total_fen < 0:
        raise ValueError("total_fen must not be negative")
    weight_sum = sum(weights)
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    raw = [total_fen * w for w in weights]
    out = [r // weight_sum for r in raw]
    short = total_fen - sum(out)
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] % weight_sum), i))
    for i in order[:short]:
        out[i] += 1
    assert sum(out) == total_fen
    return out
