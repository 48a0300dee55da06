"""When a purchase or a bill may be turned into installments (pure; issue 24 item 10).

Converting is a shopper's choice about money not yet due, never a way to re-age arrears: a
purchase may be converted from the day it is made (交易分期) and a bill from its statement day
(账单分期) up to and including the due day of the statement that bills it — Huabei's window
("from the statement day to the due day"). After the due day the amount is past due (a grace
period does not reopen the window) and is refused with `conversion_past_due`; a restructure of
arrears is a hardship plan, approved by staff and reported (`fenqi.credit.hardship`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fenqi.products.model import Product, ProductKind


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def conversion_refusal(product: Product, due_date: date, today: date) -> Refusal | None:
    """Why an amount due on `due_date` may not be converted on `today`, or None if it may."""
    if product.kind is not ProductKind.REVOLVING:
        return Refusal(
            "not_convertible",
            f"{product.name} bills each purchase on its own schedule; nothing to convert",
        )
    if today > due_date:
        return Refusal(
            "conversion_past_due",
            f"the amount was due on {due_date.isoformat()} and is past due; a bill may be "
            "converted only up to its due day (arrears are restructured by a hardship plan)",
        )
    return None
