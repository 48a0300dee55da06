"""Where a repayment goes: the allocation waterfall, as a pure function.

Items due on or before the business date are paid first, oldest due first; inside an item the
product's allocation order decides (e.g. penalties, then fees, then interest, then principal, as
Fineract's default strategy and the Chinese products' terms do). What is left pays items not yet
due in date order (prepayment); what is still left is an overpayment for the customer's credit
balance. Parts always add up to the amount paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from fenqi.products.model import ChargeKind


@dataclass(frozen=True, slots=True)
class LineKey:
    """What is owed on one plan line: the plan and its period."""

    plan_id: int
    period: int


@dataclass(frozen=True, slots=True)
class AccrualKey:
    """Charges the end of day accrued on the account (penalty, revolving interest) of one kind."""

    kind: ChargeKind


OwedKey = LineKey | AccrualKey


@dataclass(frozen=True, slots=True)
class Owed:
    key: OwedKey
    due_date: date
    outstanding_fen: dict[ChargeKind, int]


@dataclass(frozen=True, slots=True)
class Allocation:
    parts: tuple[tuple[OwedKey, ChargeKind, int], ...]
    overpayment_fen: int
    by_kind_fen: dict[ChargeKind, int] = field(default_factory=dict)

    @property
    def allocated_fen(self) -> int:
        return sum(amount for _, _, amount in self.parts)


def allocate_payment(
    amount_fen: int, owed: Sequence[Owed], order: Sequence[ChargeKind], as_of: date
) -> Allocation:
    if amount_fen <= 0:
        raise ValueError(f"amount_fen must be positive, got {amount_fen}")
    due_now = sorted((o for o in owed if o.due_date <= as_of), key=lambda o: o.due_date)
    later = sorted((o for o in owed if o.due_date > as_of), key=lambda o: o.due_date)
    left = amount_fen
    parts: list[tuple[OwedKey, ChargeKind, int]] = []
    by_kind: dict[ChargeKind, int] = dict.fromkeys(ChargeKind, 0)
    for item in [*due_now, *later]:
        for kind in order:
            if left == 0:
                break
            take = min(left, item.outstanding_fen.get(kind, 0))
            if take > 0:
                parts.append((item.key, kind, take))
                by_kind[kind] += take
                left -= take
    allocation = Allocation(tuple(parts), left, by_kind)
    assert allocation.allocated_fen + left == amount_fen
    return allocation
