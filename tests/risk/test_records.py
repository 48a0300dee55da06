from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import Engine, func, select

from fenqi.clock import FixedClock
from fenqi.risk.decision import ChampionChallenger, Decider
from fenqi.risk.flow import load_flow
from fenqi.risk.records import decide_and_record, decide_and_record_experiment, decisions_for
from fenqi.risk.registry import LoadedModel
from fenqi.store.schema.risk import risk_decisions
from risk.conftest import application, features_of


def test_decision_is_recorded_with_everything_that_decided_it(
    db_engine: Engine, clock: FixedClock, scorecard: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    decider = Decider(scorecard, load_flow())
    raw = application(features_of(credit_frame, 3), applicant_id="cust-9")
    with db_engine.begin() as conn:
        decision = decide_and_record(conn, clock, decider, raw, application_ref="appl-1")
    clock.advance(timedelta(minutes=1))
    with db_engine.begin() as conn:
        decide_and_record(conn, clock, decider, raw, application_ref="appl-2")
        rows = decisions_for(conn, "cust-9")
    assert [r["application_ref"] for r in rows] == ["appl-2", "appl-1"]
    row = rows[1]
    assert row["model_id"] == "scorecard-v0001"
    assert row["flow_version"] == decision.flow_version
    assert row["inputs_fingerprint"] == decision.inputs_fingerprint
    assert row["score"] == decision.score and abs(row["pd"] - decision.pd) < 1e-12
    assert row["outcome"] == decision.outcome and row["limit_fen"] == decision.limit_fen
    assert row["reason_codes"] == list(decision.reason_codes)
    assert row["is_live"] is True and row["variant"] == "champion"


def test_experiment_records_live_and_shadow(
    db_engine: Engine,
    clock: FixedClock,
    scorecard: LoadedModel,
    gbm: LoadedModel,
    credit_frame: pd.DataFrame,
) -> None:
    experiment = ChampionChallenger(
        Decider(scorecard, load_flow()),
        Decider(gbm, load_flow()),
        challenger_share_bp=3_000,
        experiment_id="gbm-trial",
    )
    with db_engine.begin() as conn:
        for i in range(10):
            raw = application(features_of(credit_frame, i), applicant_id=f"c{i}")
            live = decide_and_record_experiment(conn, clock, experiment, raw, f"ref-{i}")
            stored = conn.execute(
                select(risk_decisions.c.variant, risk_decisions.c.is_live).where(
                    risk_decisions.c.application_ref == f"ref-{i}"
                )
            ).all()
            other = "challenger" if live.variant == "champion" else "champion"
            assert sorted(stored) == sorted([(str(live.variant), True), (other, False)])
        total = conn.execute(select(func.count()).select_from(risk_decisions)).scalar_one()
    assert total == 20
