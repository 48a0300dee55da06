"""Underwriting: turning an application into what the risk engine reads, and its answer back.

`application_record` is pure: the policy fields of the decision flow (age, identity verified,
blacklist, other lenders, bureau delinquency, tier, income, spend) and the model's features.
`RiskUnderwriter` runs the risk engine's decider (model + JDM flow) and records the decision.
`load_decider` loads the registry's model: it never trains one. A fresh installation gets its
starter model from `fenqi.simulation.starter` (trained on synthetic applicants), called by
`fenqi serve`, the demo build and the simulator, never by this service (issue 22).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from fenqi.clock import Clock

if TYPE_CHECKING:
    from fenqi.credit.customers import Identity
    from fenqi.risk.decision import Decider

# Monthly income bands (CNY) → a representative figure in fen, for the limit matrix.
INCOME_BAND_FEN = {
    "none": 0,
    "lt3k": 200_000,
    "3k_6k": 450_000,
    "6k_10k": 800_000,
    "10k_20k": 1_500_000,
    "gt20k": 3_000_000,
}
BUREAU_DELINQUENT_DPD = 60  # what a reported delinquency counts as when only a flag is known
MODEL_FEATURES = (
    "age",
    "income_band",
    "account_age_days",
    "orders_12m",
    "spend_12m_fen",
    "return_rate_bp",
    "other_lenders",
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the shop knows about the shopper (read by the decision flow); the API's
    `ApplicationIn.behaviour` validates it at the boundary."""

    account_age_days: int
    orders_12m: int
    spend_12m_fen: int
    return_rate_bp: int
    other_lenders: int = 0
    bureau_delinquent: bool = False
    identity_verified: bool = True


@dataclass(frozen=True, slots=True)
class UnderwritingDecision:
    outcome: str  # approve | decline | refer
    limit_fen: int
    pricing_tier: str
    reason_codes: tuple[str, ...]
    decision_id: str | None


class Underwriter(Protocol):
    def decide(
        self, conn: Connection, clock: Clock, record: dict[str, Any]
    ) -> UnderwritingDecision: ...


def age_on(birth_date: date, today: date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def application_record(
    customer_id: int,
    ident: Identity,
    income_band: str,
    behaviour: Behaviour,
    today: date,
    *,
    existing_customer: bool,
    blacklisted: bool = False,
) -> dict[str, Any]:
    age = age_on(ident.birth_date, today)
    return {
        "applicant_id": f"customer:{customer_id}",
        "age": age,
        "identity_verified": behaviour.identity_verified,
        "blacklisted": blacklisted,
        "other_lenders_count": behaviour.other_lenders,
        "bureau_worst_dpd": BUREAU_DELINQUENT_DPD if behaviour.bureau_delinquent else 0,
        "customer_tier": "existing" if existing_customer else "new",
        "monthly_income_fen": INCOME_BAND_FEN[income_band],
        "monthly_spend_fen": behaviour.spend_12m_fen // 12,
        "features": {
            "age": age,
            "income_band": income_band,
            "account_age_days": behaviour.account_age_days,
            "orders_12m": behaviour.orders_12m,
            "spend_12m_fen": behaviour.spend_12m_fen,
            "return_rate_bp": behaviour.return_rate_bp,
            "other_lenders": behaviour.other_lenders,
        },
    }


class RiskUnderwriter:
    """The risk engine's decider, with each decision recorded in `risk_decisions`."""

    def __init__(self, decider: Decider) -> None:
        self.decider = decider

    def decide(
        self, conn: Connection, clock: Clock, record: dict[str, Any]
    ) -> UnderwritingDecision:
        from fenqi.risk.records import record_decision

        decision = self.decider.decide(record)
        row_id = record_decision(
            conn,
            clock,
            decision,
            application_ref=f"{record['applicant_id']}@{clock.now().isoformat()}",
        )
        return UnderwritingDecision(
            decision.outcome,
            decision.limit_fen,
            decision.pricing_tier,
            tuple(decision.reason_codes),
            f"rd_{row_id}",
        )


def load_decider(models_dir: Path, flow_path: Path | None = None) -> Decider:
    """The decider fenqi uses: the registry's champion (or newest) model in `models_dir` and the
    decision flow. An empty registry is an error that says how to get a model: this service
    never trains one (`fenqi serve` trains the starter model before it serves, and operators
    train on their own data with `fenqi risk train`)."""
    from fenqi.risk.decision import Decider
    from fenqi.risk.errors import ArtifactError
    from fenqi.risk.flow import load_flow
    from fenqi.risk.registry import load_model

    try:
        model = load_model(models_dir)
    except ArtifactError as exc:
        raise ArtifactError(
            f"no usable risk model in {models_dir} ({exc.message}): `fenqi serve` trains a "
            "starter model there before it serves; or train one with `fenqi risk train`",
            path=str(models_dir),
        ) from exc
    return Decider(model, load_flow(flow_path))
