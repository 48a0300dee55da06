"""Shaping domain values into API responses (shared by the routers)."""

from __future__ import annotations

from typing import Any

from fenqi.credit.plans import PlanOffer


def plan_quote(offer: PlanOffer) -> dict[str, Any]:
    q = offer.quote
    s = q.schedule
    return {
        "plan": offer.kind,
        "terms": q.terms if offer.kind == "installments" else 0,
        "per_period_fen": s.lines[0].total_fen,
        "first_due_date": s.lines[0].due_date.isoformat(),
        "total_fee_fen": s.fee_fen,
        "total_interest_fen": s.interest_fen,
        "total_fen": s.total_fen,
        "annualized_rate_bp": q.rate.nominal_bp,
        "effective_annual_rate_bp": q.rate.effective_bp,
        "schedule": q.to_dict()["schedule"],
        # the rate regime the plan is held to and the rate as it measures it (a USD plan: the
        # Regulation Z APR); docs/compliance.md
        "rate_regime": q.regime.to_dict() if q.regime is not None else None,
    }
