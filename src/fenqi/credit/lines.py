"""Plan lines as values: what each period still owes, and taking amounts off the tail (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fenqi.products.model import ChargeKind

KINDS = (ChargeKind.PRINCIPAL, ChargeKind.FEE, ChargeKind.INTEREST)
_COL = {ChargeKind.PRINCIPAL: "principal", ChargeKind.FEE: "fee", ChargeKind.INTEREST: "interest"}


@dataclass(frozen=True, slots=True)
class Line:
    plan_id: int
    period: int
    due_date: date
    due: dict[ChargeKind, int]  # scheduled
    paid: dict[ChargeKind, int]
    waived: dict[ChargeKind, int]

    def unpaid(self, kind: ChargeKind) -> int:
        return self.due[kind] - self.paid[kind] - self.waived[kind]

    @property
    def unpaid_total(self) -> int:
        return sum(self.unpaid(k) for k in KINDS)


def line_from_row(row: Any) -> Line:
    return Line(
        plan_id=row["plan_id"],
        period=row["period"],
        due_date=row["due_date"],
        due={k: row[f"{_COL[k]}_fen"] for k in KINDS},
        paid={k: row[f"paid_{_COL[k]}_fen"] for k in KINDS},
        waived={k: row[f"waived_{_COL[k]}_fen"] for k in KINDS},
    )


def column(prefix: str, kind: ChargeKind) -> str:
    """'paid'/'waived' + kind → the plan_lines column name."""
    return f"{prefix}_{_COL[kind]}_fen"


def waive_from_tail(
    lines: list[Line], kind: ChargeKind, amount_fen: int
) -> tuple[list[tuple[Line, int]], int]:
    """Take `amount_fen` of `kind` off the unpaid parts, last period first.

    Returns the waivers per line and what could not be waived because it was already paid.
    """
    waivers: list[tuple[Line, int]] = []
    left = amount_fen
    for line in sorted(lines, key=lambda x: x.period, reverse=True):
        take = min(left, line.unpaid(kind))
        if take > 0:
            waivers.append((line, take))
            left -= take
    return waivers, left
