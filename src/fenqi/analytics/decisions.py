"""Risk decision monitoring: volumes and outcomes per model and arm (champion/challenger),
score distributions, and population stability (PSI) per month against each model's training
score deciles (the `score_reference` in its manifest, docs/risk.md)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, case, func, select

from fenqi.risk.metrics import psi_against_deciles
from fenqi.store.schema.risk import risk_decisions
from fenqi.store.times import utc

SCORES_MAX = 200_000  # the newest decisions a distribution is drawn from (bounded memory)


@dataclass(frozen=True)
class ArmFigures:
    variant: str
    model_id: str
    flow_version: str
    decisions: int
    live: int
    approved: int
    approval_rate: float
    mean_score: float
    mean_pd: float


def arm_figures(conn: Connection) -> list[ArmFigures]:
    """One row per (variant, model, flow): how many decisions and how they came out."""
    d = risk_decisions.c
    rows = conn.execute(
        select(
            d.variant,
            d.model_id,
            d.flow_version,
            func.count(),
            func.sum(case((d.is_live, 1), else_=0)),
            func.sum(case((d.outcome == "approve", 1), else_=0)),
            func.avg(d.score),
            func.avg(d.pd),
        )
        .group_by(d.variant, d.model_id, d.flow_version)
        .order_by(d.variant, d.model_id, d.flow_version)
    ).all()
    return [
        ArmFigures(
            r[0],
            r[1],
            r[2],
            int(r[3]),
            int(r[4] or 0),
            int(r[5] or 0),
            int(r[5] or 0) / int(r[3]),
            float(r[6] or 0),
            float(r[7] or 0),
        )
        for r in rows
    ]


def recent_scores(conn: Connection, limit: int = SCORES_MAX) -> list[dict[str, Any]]:
    """The newest decisions' model, variant, month and score (at most `limit`)."""
    d = risk_decisions.c
    rows = conn.execute(
        select(d.model_id, d.variant, d.decided_at, d.score).order_by(d.id.desc()).limit(limit)
    ).all()
    return [
        {"model_id": r[0], "variant": r[1], "month": utc(r[2]).strftime("%Y-%m"), "score": r[3]}
        for r in rows
    ]


# PSI compares ten score bands; with fewer decisions than this in a month the bands hold a few
# each and the index swings on noise (5 decisions read as a spike), so no PSI is computed
PSI_MIN_DECISIONS = 100


def _months(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` (YYYY-MM), both included."""
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def psi_by_month(
    scores: list[dict[str, Any]],
    deciles_by_model: dict[str, list[float]],
    min_decisions: int = PSI_MIN_DECISIONS,
) -> list[dict[str, Any]]:
    """PSI of each model's scores in each month against its training deciles: one point per
    month from the model's first decision to its last, with the month's number of decisions
    `n`; `psi` is None for a month with no decisions or fewer than `min_decisions` (too few to
    measure), so a chart leaves a gap there instead of drawing a line across it."""
    grouped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for s in scores:
        grouped[(s["model_id"], s["month"])].append(s["score"])
    out = []
    for model_id in sorted({m for m, _ in grouped}):
        deciles = deciles_by_model.get(model_id)
        if deciles is None or len(deciles) != 9:
            continue
        months = sorted(month for m, month in grouped if m == model_id)
        for month in _months(months[0], months[-1]):
            values = grouped.get((model_id, month), [])
            value = (
                psi_against_deciles(np.asarray(deciles), np.asarray(values, dtype=np.float64))
                if len(values) >= min_decisions
                else None
            )
            out.append({"model_id": model_id, "month": month, "psi": value, "n": len(values)})
    return out
