"""Read models for console pages (bounded pages; nothing here writes)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from fenqi.analytics.decisions import arm_figures, psi_by_month, recent_scores
from fenqi.credit import service as credit
from fenqi.credit import views
from fenqi.credit.arrears import arrears_on
from fenqi.risk.promotion import gate_history
from fenqi.risk.registry import MANIFEST, VERSION_RE, resolve
from fenqi.store.schema.batch import batch_runs as runs_t
from fenqi.store.schema.batch import batch_steps, statements
from fenqi.store.schema.credit import credit_accounts, repayments
from fenqi.store.schema.parties import applications
from fenqi.store.schema.privacy import audit_log
from fenqi.store.schema.risk import risk_decisions
from fenqi.store.schema.webhooks import webhook_deliveries
from fenqi.store.times import utc
from fenqi.webhooks.outbox import list_deliveries

PAGE = 50
LEDGER_LINES_MAX = 200
STATEMENTS_MAX = 24
REGISTRY_MODELS_MAX = 200
GATE_DECISIONS_MAX = 20
BATCH_RUNS_MAX = 30
DECISION_PREFIX = "rd_"  # applications.decision_id is "rd_<risk_decisions.id>"


def shopper_accounts(conn: Connection, customer_id: int, today: date) -> list[dict[str, Any]]:
    ca = credit_accounts.c
    rows = conn.execute(
        select(ca.id, ca.tier, ca.past_due_since, ca.charged_off_on, ca.opened_at)
        .where(ca.customer_ref == str(customer_id))
        .order_by(ca.id)
    ).all()
    out = []
    for r in rows:
        account_id = int(r[0])
        ledger = views.ledger_lines(conn, account_id, LEDGER_LINES_MAX, 0)
        ledger.reverse()  # newest first
        days_past_due, bucket = arrears_on(r[2], today)
        out.append(
            {
                "summary": credit.account_summary(conn, account_id, today),
                "tier": r[1],
                "days_past_due": days_past_due,
                "arrears_bucket": bucket,
                "charged_off_on": r[3],
                "opened_at": utc(r[4]).date().isoformat(),
                "plans": views.account_plans(conn, account_id),
                "due_by_date": views.statements(conn, account_id),
                "statements": statements_of(conn, account_id),
                "ledger": ledger,
                "repayments": repayments_of(conn, account_id),
            }
        )
    return out


def statements_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """Statements cut by the end-of-day run, newest first."""
    st = statements.c
    rows = conn.execute(
        select(statements)
        .where(st.credit_account_id == account_id)
        .order_by(st.statement_date.desc())
        .limit(STATEMENTS_MAX)
    ).mappings()
    return [dict(x) for x in rows]


def repayments_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    r = repayments.c
    rows = conn.execute(
        select(repayments)
        .where(r.credit_account_id == account_id)
        .order_by(r.id.desc())
        .limit(LEDGER_LINES_MAX)
    ).mappings()
    return [dict(x) for x in rows]


def _decision_number(decision_id: str | None) -> int | None:
    if decision_id and decision_id.startswith(DECISION_PREFIX):
        tail = decision_id[len(DECISION_PREFIX) :]
        return int(tail) if tail.isdigit() else None
    return None


def shopper_applications(conn: Connection, customer_id: int) -> list[dict[str, Any]]:
    a = applications.c
    rows = (
        conn.execute(
            select(applications).where(a.customer_id == customer_id).order_by(a.id.desc()).limit(50)
        )
        .mappings()
        .all()
    )
    return [
        {
            **dict(r),
            "reasons": json.loads(r["reasons"] or "[]"),
            "decision_number": _decision_number(r["decision_id"]),
            "created_at": utc(r["created_at"]).isoformat(timespec="seconds"),
        }
        for r in rows
    ]


def decisions(
    conn: Connection,
    *,
    outcome: str | None = None,
    variant: str | None = None,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    d = risk_decisions.c
    stmt = select(risk_decisions).order_by(d.id.desc()).limit(PAGE)
    if outcome:
        stmt = stmt.where(d.outcome == outcome)
    if variant:
        stmt = stmt.where(d.variant == variant)
    if before_id:
        stmt = stmt.where(d.id < before_id)
    return [_decision_dict(r) for r in conn.execute(stmt).mappings()]


def _decision_dict(row: Any) -> dict[str, Any]:
    return {
        **dict(row),
        "decided_at": utc(row["decided_at"]).isoformat(timespec="seconds"),
    }


def decision(conn: Connection, decision_id: int) -> dict[str, Any] | None:
    d = risk_decisions.c
    row = conn.execute(select(risk_decisions).where(d.id == decision_id)).mappings().first()
    if row is None:
        return None
    siblings = [
        _decision_dict(r)
        for r in conn.execute(
            select(risk_decisions)
            .where(d.application_ref == row["application_ref"], d.id != decision_id)
            .order_by(d.id)
            .limit(10)
        ).mappings()
    ]
    app = (
        conn.execute(
            select(applications).where(
                applications.c.decision_id == f"{DECISION_PREFIX}{decision_id}"
            )
        )
        .mappings()
        .first()
    )
    return {
        "d": _decision_dict(row),
        "siblings": siblings,
        "application": dict(app) if app is not None else None,
    }


def gate_decisions(models_dir: Path) -> list[dict[str, Any]]:
    """The promotion gate's recent decisions in the registry, newest first, with reasons."""
    return [
        {
            "challenger": str(e.get("challenger")),
            "champion": e.get("champion"),
            "promoted": bool(e.get("promoted")),
            "decided_at": str(e.get("decided_at") or "")[:19],
            "reasons": [str(r) for r in e.get("reasons") or []],
            "figures": e.get("figures") or {},
        }
        for e in gate_history(models_dir, GATE_DECISIONS_MAX)
    ]


def registry_models(models_dir: Path) -> list[dict[str, Any]]:
    """The manifests in the model registry, newest first, and which one decides (the champion,
    or before any promotion the newest), with each challenger's latest gate outcome."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    try:
        current = resolve(folder).name
    except Exception:  # an empty or unreadable registry shows as empty
        current = None
    latest_gate: dict[str, dict[str, Any]] = {}
    for entry in gate_decisions(folder):
        latest_gate.setdefault(entry["challenger"], entry)
    out = []
    for path in sorted(folder.iterdir())[:REGISTRY_MODELS_MAX]:
        if not (VERSION_RE.match(path.name) and (path / MANIFEST).is_file()):
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        out.append(
            {
                "model_id": manifest.get("model_id", path.name),
                "kind": manifest.get("kind"),
                "created_at": manifest.get("created_at"),
                "rows": manifest.get("training_data", {}).get("rows"),
                "metrics": {
                    **manifest.get("metrics", {}),
                    "psi": manifest.get("metrics", {}).get(
                        "psi_holdout_vs_train", manifest.get("metrics", {}).get("psi")
                    ),
                },
                "features": len(manifest.get("features", [])),
                "deciles": manifest.get("score_reference", {}).get("deciles"),
                "current": path.name == current,
                "gate": latest_gate.get(path.name),
                "recalibrated_from": (manifest.get("recalibration") or {}).get("from"),
            }
        )
    out.sort(key=lambda m: str(m["created_at"]), reverse=True)
    return out


def model_monitoring(conn: Connection, registry: list[dict[str, Any]]) -> dict[str, Any]:
    scores = recent_scores(conn)
    deciles = {m["model_id"]: m["deciles"] for m in registry if m["deciles"]}
    return {"arms": arm_figures(conn), "scores": scores, "psi": psi_by_month(scores, deciles)}


def batch_runs(conn: Connection) -> list[dict[str, Any]]:
    r, s = runs_t.c, batch_steps.c
    runs = (
        conn.execute(select(runs_t).order_by(r.business_date.desc()).limit(BATCH_RUNS_MAX))
        .mappings()
        .all()
    )
    if not runs:
        return []
    steps: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(
        select(
            s.run_id,
            s.step,
            func.count(),
            func.sum(s.rows),
            func.sum(s.amount_fen),
            func.min(s.finished_at),
            func.max(s.finished_at),
        )
        .where(s.run_id.in_([x["id"] for x in runs]))
        .group_by(s.run_id, s.step)
        .order_by(s.run_id, func.min(s.finished_at))
    ):
        steps.setdefault(int(row[0]), []).append(
            {
                "step": row[1],
                "partitions_done": int(row[2]),
                "rows": int(row[3] or 0),
                "amount_fen": int(row[4] or 0),
                "first_finished_at": utc(row[5]).isoformat(timespec="seconds"),
                "last_finished_at": utc(row[6]).isoformat(timespec="seconds"),
            }
        )
    order = _step_order()
    out = []
    for run in runs:
        mine = sorted(steps.get(int(run["id"]), []), key=lambda x: order.get(x["step"], 99))
        partitions = max(int(run["partitions"]), 1)
        out.append(
            {
                **dict(run),
                "started_at": utc(run["started_at"]).isoformat(timespec="seconds"),
                "finished_at": (
                    utc(run["finished_at"]).isoformat(timespec="seconds")
                    if run["finished_at"]
                    else None
                ),
                "steps": [{**x, "progress": x["partitions_done"] / partitions} for x in mine],
                "progress": (
                    sum(x["partitions_done"] for x in mine) / (partitions * len(order))
                    if order
                    else None
                ),
                "figures": run["figures"] or {},
            }
        )
    return out


def delivery_counts(conn: Connection) -> dict[str, int]:
    """How many deliveries are in each status (dead ones are the failures to look at)."""
    d = webhook_deliveries.c
    return {
        str(status): int(n)
        for status, n in conn.execute(select(d.status, func.count()).group_by(d.status))
    }


def _step_order() -> dict[str, int]:
    """The end-of-day steps in the order they run (the batch area's own list)."""
    try:
        from fenqi.batch.steps import STEPS
    except ImportError:  # pragma: no cover - the batch area is always installed with fenqi
        return {}
    return {name: i for i, (name, _) in enumerate(STEPS)}


def deliveries(
    conn: Connection, *, status: str | None = None, after_id: int = 0
) -> list[dict[str, Any]]:
    return [
        d.to_dict() for d in list_deliveries(conn, status=status, limit=PAGE, after_id=after_id)
    ]


def audit_entries(
    conn: Connection, *, target_kind: str | None, target_id: str | None, limit: int = 200
) -> list[dict[str, Any]]:
    """The newest audit entries first (the audit module pages oldest first)."""
    al = audit_log.c
    stmt = select(audit_log).order_by(al.id.desc()).limit(limit)
    if target_kind:
        stmt = stmt.where(al.target_kind == target_kind)
    if target_id:
        stmt = stmt.where(al.target_id == target_id)
    return [
        {**dict(r), "at": utc(r["at"]).isoformat(timespec="seconds")}
        for r in conn.execute(stmt).mappings()
    ]
