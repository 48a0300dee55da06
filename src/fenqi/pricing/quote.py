"""A quote: the schedule and disclosed annualized rate of one plan of one product.

Joins the product's terms (and the customer tier's discount) to the pure schedule and IRR math,
and refuses a plan above the annualized-rate cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fenqi.errors import FenqiError
from fenqi.money import BP_PER_UNIT, Rounding, apply_bp
from fenqi.pricing.annualized import AnnualizedRate, annualized_rate
from fenqi.pricing.cap import check_rate_cap
from fenqi.pricing.due_dates import due_dates, periods_per_year
from fenqi.pricing.schedule import Pricing, Schedule, build_schedule
from fenqi.products.model import Product


class QuoteError(FenqiError):
    code = "quote_invalid"
    http_status = 422


@dataclass(frozen=True, slots=True)
class Quote:
    product: str
    currency: str
    terms: int
    schedule: Schedule
    rate: AnnualizedRate
    pricing: Pricing
    # the regime the plan was held to (fenqi.compliance.regimes); None on a Quote made by hand
    regime: Any = None

    def to_dict(self) -> dict[str, Any]:
        s = self.schedule
        return {
            "product": self.product,
            "currency": self.currency,
            "terms": self.terms,
            "purchase_date": s.start_date.isoformat(),
            "method": self.pricing.method.value,
            "schedule": [
                {
                    "period": line.period,
                    "due_date": line.due_date.isoformat(),
                    "principal_fen": line.principal_fen,
                    "fee_fen": line.fee_fen,
                    "interest_fen": line.interest_fen,
                    "total_fen": line.total_fen,
                }
                for line in s.lines
            ],
            "totals": {
                "principal_fen": s.principal_fen,
                "fee_fen": s.fee_fen,
                "interest_fen": s.interest_fen,
                "total_fen": s.total_fen,
            },
            "annualized_rate": {
                "nominal_bp": self.rate.nominal_bp,
                "effective_bp": self.rate.effective_bp,
                "xirr_bp": self.rate.xirr_bp,
                "method": "IRR",
            },
            **({"regime": self.regime.to_dict()} if self.regime is not None else {}),
        }


def plan_pricing(product: Product, terms: int, tier: str | None = None) -> Pricing:
    term = product.installments.term(terms)
    if term is None:
        offered = [t.count for t in product.installments.terms]
        raise QuoteError(f"terms: {product.name} does not offer {terms} periods (offers {offered})")
    discount_bp = 0
    if tier is not None:
        found = product.tier(tier)
        if found is None:
            raise QuoteError(f"tier: {product.name} has no tier {tier!r}")
        discount_bp = found.fee_discount_bp
    keep_bp = BP_PER_UNIT - discount_bp
    inst = product.installments
    return Pricing(
        method=inst.method,
        total_fee_bp=apply_bp(term.total_fee_bp, keep_bp, Rounding.HALF_UP),
        annual_rate_bp=apply_bp(term.annual_rate_bp, keep_bp, Rounding.HALF_UP),
        fee_upfront=inst.fee_timing == "upfront",
        rounding=inst.rounding,
        remainder=inst.remainder,
    )


def quote(
    product: Product,
    amount_fen: int,
    terms: int,
    purchase_date: date,
    *,
    cap_bp: int,
    tier: str | None = None,
    regime_date: date | None = None,
) -> Quote:
    """Price a plan and hold it to the rate regime in force on the purchase date (or on
    `regime_date`: product loading checks a reference purchase against today's regime).
    `cap_bp` is the setting FENQI_APR_CAP_BP (fenqi.compliance.regimes)."""
    if amount_fen <= 0:
        raise QuoteError(
            f"amount_fen: must be a positive number of fen, got {amount_fen}",
            code="invalid_amount",  # as everywhere else (issue 22)
            legacy_code="quote_invalid",
        )
    if amount_fen > product.limits.max_fen:
        raise QuoteError(
            f"amount_fen: {amount_fen} is above the product's largest limit "
            f"{product.limits.max_fen}"
        )
    if amount_fen < product.installments.min_amount_fen:
        raise QuoteError(
            f"amount_fen: {amount_fen} is below the smallest plan amount "
            f"{product.installments.min_amount_fen}"
        )
    pricing = plan_pricing(product, terms, tier)
    schedule = build_schedule(
        amount_fen, pricing, purchase_date, due_dates(product, purchase_date, terms)
    )
    rate = annualized_rate(schedule, Decimal(repr(periods_per_year(product))))
    from fenqi.compliance.regimes import cap_in_force

    held = cap_in_force(
        product.currency, product.kind.value, regime_date or purchase_date, cap_bp, schedule, rate
    )
    check_rate_cap(rate, held.cap_bp, what=f"{product.name} {terms} periods", held=held)
    return Quote(product.name, product.currency, terms, schedule, rate, pricing, held)
