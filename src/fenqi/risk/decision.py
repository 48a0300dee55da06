"""Application decisions: model score + decision flow -> outcome, limit, pricing tier, reasons.

An application is a JSON object: `applicant_id`, the policy fields the flow reads (below), and
`features`, the model's inputs by column name (when `features` is absent, the top-level keys are
used). Policy fields are checked here so the flow never sees a missing age or a text "false".

Champion/challenger: `assign_variant` hashes the applicant id with a salt, so an applicant always
lands in the same arm while the split is unchanged; the live arm decides, the other arm's decision
is kept as a shadow, and both are recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from fenqi.risk.data import fingerprint_record
from fenqi.risk.errors import BadDataError
from fenqi.risk.flow import DecisionFlow
from fenqi.risk.model import REASONS_MAX, ReasonCode
from fenqi.risk.registry import LoadedModel

BP_PER_UNIT = 10_000
APPLICANT_ID_LENGTH_MAX = 128


class CustomerTier(StrEnum):
    NEW = "new"
    EXISTING = "existing"


class Variant(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


# Policy fields: name -> (type, required). Amounts are integer fen.
POLICY_FIELDS: dict[str, tuple[type, bool]] = {
    "age": (int, True),
    "identity_verified": (bool, True),
    "blacklisted": (bool, True),
    "other_lenders_count": (int, True),
    "bureau_worst_dpd": (int, True),
    "customer_tier": (str, False),
    "monthly_income_fen": (int, False),
    "monthly_spend_fen": (int, False),
}


@dataclass(frozen=True, slots=True)
class Application:
    applicant_id: str
    policy: dict[str, Any]
    features: dict[str, Any]
    fingerprint: str


def parse_application(raw: Mapping[str, Any]) -> Application:
    applicant_id = raw.get("applicant_id")
    if (
        not isinstance(applicant_id, str | int)
        or isinstance(applicant_id, bool)
        or not str(applicant_id)
        or len(str(applicant_id)) > APPLICANT_ID_LENGTH_MAX
    ):
        raise BadDataError(
            "application needs an 'applicant_id' (text, 1-128 characters)", field="applicant_id"
        )
    policy: dict[str, Any] = {}
    for name, (kind, required) in POLICY_FIELDS.items():
        value = raw.get(name)
        if value is None:
            if required:
                raise BadDataError(f"application lacks policy field {name!r}", field=name)
            continue
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise BadDataError(
                f"policy field {name!r} must be {kind.__name__}, got {value!r}", field=name
            )
        if kind is int and value < 0:
            raise BadDataError(f"policy field {name!r} must not be negative", field=name)
        policy[name] = value
    tier = policy.setdefault("customer_tier", CustomerTier.NEW.value)
    if tier not in {t.value for t in CustomerTier}:
        raise BadDataError(
            f"customer_tier must be new or existing, got {tier!r}", field="customer_tier"
        )
    features = raw.get("features", raw)
    if not isinstance(features, Mapping):
        raise BadDataError("'features' must be an object of model inputs", field="features")
    return Application(str(applicant_id), policy, dict(features), fingerprint_record(raw))


@dataclass(frozen=True, slots=True)
class Decision:
    applicant_id: str
    outcome: str
    limit_fen: int
    pricing_tier: str
    score: int
    pd: float
    reason_codes: tuple[str, ...]
    model_reasons: tuple[ReasonCode, ...]
    model_id: str
    flow_version: str
    inputs_fingerprint: str
    variant: str = Variant.CHAMPION

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reason_codes"] = list(self.reason_codes)
        out["model_reasons"] = [r.to_dict() for r in self.model_reasons]
        out["variant"] = str(self.variant)
        return out


@dataclass(frozen=True)
class Decider:
    model: LoadedModel
    flow: DecisionFlow
    top_n: int = REASONS_MAX

    def decide(self, raw: Mapping[str, Any], variant: Variant = Variant.CHAMPION) -> Decision:
        return self.decide_parsed(parse_application(raw), variant)

    def decide_parsed(
        self, application: Application, variant: Variant = Variant.CHAMPION
    ) -> Decision:
        explained = self.model.explain(application.features, self.top_n)
        result = self.flow.evaluate(
            {
                "applicant": application.policy,
                "model": {"score": explained.score, "pd": explained.pd},
            }
        )
        codes: list[str] = [result.reason_code] if result.reason_code else []
        # Score-driven outcomes are explained by the characteristics that cost most points.
        if result.outcome != "approve" and result.reason_code.startswith("S"):
            codes += [f"M_{r.feature}" for r in explained.reasons]
        return Decision(
            applicant_id=application.applicant_id,
            outcome=result.outcome,
            limit_fen=result.limit_fen,
            pricing_tier=result.pricing_tier,
            score=explained.score,
            pd=explained.pd,
            reason_codes=tuple(codes),
            model_reasons=explained.reasons,
            model_id=self.model.model_id,
            flow_version=self.flow.version,
            inputs_fingerprint=application.fingerprint,
            variant=variant,
        )


def assign_variant(applicant_id: str, challenger_share_bp: int, salt: str) -> Variant:
    """Stable arm for an applicant: the same id, share and salt always give the same arm."""
    if not 0 <= challenger_share_bp <= BP_PER_UNIT:
        raise ValueError("challenger_share_bp must be in 0..10000")
    digest = hashlib.sha256(f"{salt}\x1f{applicant_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % BP_PER_UNIT
    return Variant.CHALLENGER if bucket < challenger_share_bp else Variant.CHAMPION


@dataclass(frozen=True, slots=True)
class ChampionChallengerResult:
    live: Decision
    shadow: Decision


@dataclass(frozen=True)
class ChampionChallenger:
    """Split applications between two deciders (different model, flow, or both)."""

    champion: Decider
    challenger: Decider
    challenger_share_bp: int
    salt: str = "fenqi-cc"
    experiment_id: str = field(default="default")

    def decide(self, raw: Mapping[str, Any]) -> ChampionChallengerResult:
        application = parse_application(raw)
        arm = assign_variant(application.applicant_id, self.challenger_share_bp, self.salt)
        champion = self.champion.decide_parsed(application, Variant.CHAMPION)
        challenger = self.challenger.decide_parsed(application, Variant.CHALLENGER)
        if arm is Variant.CHALLENGER:
            return ChampionChallengerResult(live=challenger, shadow=champion)
        return ChampionChallengerResult(live=champion, shadow=challenger)
