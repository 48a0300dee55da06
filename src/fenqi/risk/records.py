"""Decision records: every application decision is stored with what decided it and why.

Services call `decide_and_record` (one decider) or `decide_and_record_experiment` (champion /
challenger: the live and the shadow decision both stored, sharing an `application_ref`) inside
their own transaction; `record_decision` stores a decision made elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from fenqi.clock import Clock
from fenqi.risk.decision import ChampionChallenger, Decider, Decision
from fenqi.store.prepared import Prepared
from fenqi.store.schema.risk import risk_decisions

_INSERT = Prepared(risk_decisions.insert().returning(risk_decisions.c.id))  # built once, reused


def record_decision(
    conn: Connection,
    clock: Clock,
    decision: Decision,
    *,
    application_ref: str,
    is_live: bool = True,
    experiment_id: str | None = None,
) -> int:
    assert decision.limit_fen >= 0 and 0.0 <= decision.pd <= 1.0
    assert decision.outcome == "approve" or decision.limit_fen == 0
    row_id = _INSERT.run(
        conn,
        dict(
            application_ref=application_ref,
            applicant_id=decision.applicant_id,
            variant=str(decision.variant),
            is_live=is_live,
            experiment_id=experiment_id,
            outcome=decision.outcome,
            limit_fen=decision.limit_fen,
            pricing_tier=decision.pricing_tier,
            score=decision.score,
            pd=decision.pd,
            reason_codes=list(decision.reason_codes),
            model_reasons=[r.to_dict() for r in decision.model_reasons],
            model_id=decision.model_id,
            flow_version=decision.flow_version,
            inputs_fingerprint=decision.inputs_fingerprint,
            decided_at=clock.now(),
        ),
    ).scalar_one()
    return int(row_id)


def decide_and_record(
    conn: Connection,
    clock: Clock,
    decider: Decider,
    application: Mapping[str, Any],
    application_ref: str,
) -> Decision:
    decision = decider.decide(application)
    record_decision(conn, clock, decision, application_ref=application_ref)
    return decision


def decide_and_record_experiment(
    conn: Connection,
    clock: Clock,
    experiment: ChampionChallenger,
    application: Mapping[str, Any],
    application_ref: str,
) -> Decision:
    """Decide with both arms; store both; return the live decision (the one to act on)."""
    result = experiment.decide(application)
    for decision, live in ((result.live, True), (result.shadow, False)):
        record_decision(
            conn,
            clock,
            decision,
            application_ref=application_ref,
            is_live=live,
            experiment_id=experiment.experiment_id,
        )
    return result.live


def decisions_for(conn: Connection, applicant_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """An applicant's decisions, newest first (bounded: this is for review screens)."""
    rows = conn.execute(
        select(risk_decisions)
        .where(risk_decisions.c.applicant_id == applicant_id)
        .order_by(risk_decisions.c.decided_at.desc(), risk_decisions.c.id.desc())
        .limit(min(limit, 1000))
    ).mappings()
    return [dict(r) for r in rows]
