"""Which plans a product offers for a purchase, and each plan's schedule (pure).

A revolving product offers the interest-free cycle (the whole amount due on the due date of
the statement that bills it, at no cost) and its installment terms; a pay-in-N product offers its
N payments; a loan product its terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fenqi.credit.errors import CreditError
from fenqi.errors import FenqiError
from fenqi.pricing.due_dates import due_dates
from fenqi.pricing.quote import Quote, quote
from fenqi.products.model import Product, ProductKind

CYCLE = 0  # "terms" value meaning: pay in the interest-free cycle


@dataclass(frozen=True, slots=True)
class PlanOffer:
    kind: str  # cycle | installments
    quote: Quote


def offer(
    product: Product,
    amount_fen: int,
    terms: int,
    purchase_date: date,
    *,
    cap_bp: int,
    tier: str | None = None,
) -> PlanOffer:
    if terms == CYCLE:
        if product.kind is not ProductKind.REVOLVING:
            raise CreditError(
                f"terms: {product.name} has no interest-free cycle; choose "
                f"{[t.count for t in product.installments.terms]}",
                code="plan_not_offered",
            )
        return PlanOffer("cycle", _cycle_quote(product, amount_fen, purchase_date, cap_bp))
    return PlanOffer(
        "installments", quote(product, amount_fen, terms, purchase_date, cap_bp=cap_bp, tier=tier)
    )


def _cycle_quote(product: Product, amount_fen: int, purchase_date: date, cap_bp: int) -> Quote:
    from fenqi.pricing.annualized import annualized_rate
    from fenqi.pricing.schedule import Pricing, build_schedule
    from fenqi.products.model import FeeMethod

    if amount_fen <= 0:
        raise CreditError(f"amount_fen: must be positive, got {amount_fen}", code="invalid_amount")
    pricing = Pricing(FeeMethod.PAY_IN_N)
    schedule = build_schedule(
        amount_fen, pricing, purchase_date, due_dates(product, purchase_date, 1)
    )
    return Quote(product.name, product.currency, 1, schedule, annualized_rate(schedule), pricing)


def offers(
    product: Product, amount_fen: int, purchase_date: date, *, cap_bp: int, tier: str | None = None
) -> list[PlanOffer]:
    """Every plan on offer for this amount (plans refused by the cap or minimums left out)."""
    counts = ([CYCLE] if product.kind is ProductKind.REVOLVING else []) + [
        t.count for t in product.installments.terms
    ]
    out = []
    for count in counts:
        try:
            out.append(offer(product, amount_fen, count, purchase_date, cap_bp=cap_bp, tier=tier))
        except FenqiError:  # over the cap, under a plan's minimum: that plan is not offered
            continue
    return out
