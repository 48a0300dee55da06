from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fenqi.risk.decision import (
    ChampionChallenger,
    Decider,
    Variant,
    assign_variant,
    parse_application,
)
from fenqi.risk.errors import BadDataError, FeatureMismatchError
from fenqi.risk.flow import load_flow
from fenqi.risk.registry import LoadedModel
from risk.conftest import application, features_of


def test_decision_carries_versions_scores_and_reasons(
    scorecard: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    decider = Decider(scorecard, load_flow())
    decision = decider.decide(application(features_of(credit_frame, 0)))
    assert decision.model_id == "scorecard-v0001"
    assert decision.flow_version.startswith("default-credit-line@")
    assert 0 < decision.pd < 1 and 300 < decision.score < 900
    assert decision.outcome in {"approve", "refer", "decline"}
    assert len(decision.inputs_fingerprint) == 64
    assert (decision.outcome == "approve") == (decision.limit_fen > 0)


def test_policy_decline_names_the_rule(scorecard: LoadedModel, credit_frame: pd.DataFrame) -> None:
    decision = Decider(scorecard, load_flow()).decide(
        application(features_of(credit_frame, 0), blacklisted=True)
    )
    assert decision.outcome == "decline" and decision.reason_codes == ("P04_BLACKLISTED",)


def test_score_decline_lists_model_reasons(gbm: LoadedModel, credit_frame: pd.DataFrame) -> None:
    decider = Decider(gbm, load_flow())
    pd_ = gbm.predict_pd(credit_frame)
    riskiest = int(pd_.argmax())
    decision = decider.decide(application(features_of(credit_frame, riskiest)))
    assert decision.outcome == "decline"
    assert decision.reason_codes[0] == "S01_SCORE_BELOW_CUTOFF"
    assert [c for c in decision.reason_codes[1:]] == [
        f"M_{r.feature}" for r in decision.model_reasons
    ]
    assert decision.model_reasons


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"age": None}, "lacks policy field 'age'"),
        ({"age": "30"}, "'age' must be int"),
        ({"identity_verified": 1}, "'identity_verified' must be bool"),
        ({"customer_tier": "vip"}, "customer_tier must be new or existing"),
        ({"other_lenders_count": -1}, "must not be negative"),
        ({"applicant_id": ""}, "applicant_id"),
    ],
)
def test_bad_applications_are_refused(change: dict[str, object], message: str) -> None:
    raw = application({"x": 1})
    raw.update(change)
    with pytest.raises(BadDataError, match=message):
        parse_application(raw)


def test_application_lacking_a_feature_is_refused(scorecard: LoadedModel) -> None:
    with pytest.raises(FeatureMismatchError, match="utilization"):
        Decider(scorecard, load_flow()).decide(application({"income": 1.0}))


@given(st.text(min_size=1, max_size=40), st.integers(0, 10_000))
def test_assignment_is_stable_and_respects_edges(applicant_id: str, share_bp: int) -> None:
    first = assign_variant(applicant_id, share_bp, "salt")
    assert first == assign_variant(applicant_id, share_bp, "salt")
    assert assign_variant(applicant_id, 0, "salt") is Variant.CHAMPION
    assert assign_variant(applicant_id, 10_000, "salt") is Variant.CHALLENGER


def test_assignment_share_is_close_to_target() -> None:
    arms = Counter(assign_variant(f"user-{i}", 2_000, "exp-1") for i in range(20_000))
    assert abs(arms[Variant.CHALLENGER] / 20_000 - 0.2) < 0.015


def test_champion_challenger_returns_live_and_shadow(
    scorecard: LoadedModel, gbm: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    experiment = ChampionChallenger(
        Decider(scorecard, load_flow()),
        Decider(gbm, load_flow()),
        challenger_share_bp=5_000,
        salt="s",
    )
    seen = set()
    for i in range(40):
        raw = application(features_of(credit_frame, i), applicant_id=f"a{i}")
        result = experiment.decide(raw)
        assert {result.live.variant, result.shadow.variant} == {"champion", "challenger"}
        assert result.live.variant == assign_variant(f"a{i}", 5_000, "s")
        assert {result.live.model_id, result.shadow.model_id} == {"scorecard-v0001", "gbm-v0001"}
        seen.add(result.live.variant)
    assert seen == {Variant.CHAMPION, Variant.CHALLENGER}
