"""Ledger queries: an account's history, the trial balance, and reconciliation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Subquery, and_, case, func, or_, select

from fenqi.clock import Clock
from fenqi.store.schema.ledger import ledger_account_slots as slot_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_balances as bal
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst


def history(
    conn: Connection, account_id: int, *, limit: int = 100, after_posting_id: int = 0
) -> list[dict[str, Any]]:
    """An account's postings in order, with the entry each belongs to (cursor: posting id)."""
    limit = max(1, min(limit, 1000))
    rows = (
        conn.execute(
            select(
                pst.c.id.label("posting_id"),
                pst.c.entry_id,
                pst.c.amount_fen,
                pst.c.phase,
                pst.c.code,
                pst.c.debit_account_id,
                pst.c.credit_account_id,
                ent.c.kind,
                ent.c.client_id,
                ent.c.business_date,
                ent.c.created_at,
                ent.c.description,
            )
            .join(ent, ent.c.id == pst.c.entry_id)
            .where(
                or_(pst.c.debit_account_id == account_id, pst.c.credit_account_id == account_id),
                pst.c.id > after_posting_id,
            )
            .order_by(pst.c.id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    out = []
    for r in rows:
        item = dict(r)
        item["side"] = "debit" if r["debit_account_id"] == account_id else "credit"
        out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class TrialBalance:
    rows: list[dict[str, Any]]  # per currency and account code
    totals: dict[str, dict[str, int]]  # per currency

    @property
    def balanced(self) -> bool:
        return all(
            t["debits_posted"] == t["credits_posted"]
            and t["debits_pending"] == t["credits_pending"]
            for t in self.totals.values()
        )


BALANCES = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


def balances() -> Subquery:
    """Every account's balances: its balance row plus the sum of its slots (hot accounts)."""
    sums = (
        select(slot_t.c.account_id, *[func.sum(slot_t.c[c]).label(c) for c in BALANCES])
        .group_by(slot_t.c.account_id)
        .subquery("slot_sums")
    )
    return (
        select(
            acc.c.id,
            acc.c.code,
            acc.c.currency,
            *[(bal.c[c] + func.coalesce(sums.c[c], 0)).label(c) for c in BALANCES],
        )
        .select_from(
            acc.join(bal, bal.c.account_id == acc.c.id).outerjoin(
                sums, sums.c.account_id == acc.c.id
            )
        )
        .subquery("balances")
    )


def trial_balance(conn: Connection) -> TrialBalance:
    b = balances()
    cols = [func.coalesce(func.sum(b.c[name]), 0).label(name) for name in BALANCES]
    rows = (
        conn.execute(
            select(b.c.currency, b.c.code, func.count().label("accounts"), *cols)
            .group_by(b.c.currency, b.c.code)
            .order_by(b.c.currency, b.c.code)
        )
        .mappings()
        .all()
    )
    totals: dict[str, dict[str, int]] = {}
    out = []
    for r in rows:
        item = {k: (int(v) if k not in ("currency", "code") else v) for k, v in r.items()}
        item["net_debit_posted"] = item["debits_posted"] - item["credits_posted"]
        out.append(item)
        t = totals.setdefault(
            str(r["currency"]),
            dict.fromkeys(
                ("debits_pending", "debits_posted", "credits_pending", "credits_posted"), 0
            ),
        )
        for k in t:
            t[k] += int(r[k])
    return TrialBalance(out, totals)


def reconcile(conn: Connection, limit: int = 100) -> list[dict[str, int]]:
    """Recompute every account's balances from its postings; returns the accounts that differ."""
    sides = []
    for side, col in (("debits", pst.c.debit_account_id), ("credits", pst.c.credit_account_id)):
        sides.append(
            select(
                col.label("account_id"),
                func.sum(pst.c.amount_fen).filter(pst.c.phase == "posted").label("posted"),
                func.sum(pst.c.pending_remaining_fen).label("pending"),
            )
            .group_by(col)
            .subquery(f"{side}_sum")
        )
    d, c = sides
    acc = balances()
    stmt = (
        select(
            acc.c.id,
            acc.c.debits_posted,
            acc.c.debits_pending,
            acc.c.credits_posted,
            acc.c.credits_pending,
            func.coalesce(d.c.posted, 0).label("calc_debits_posted"),
            func.coalesce(d.c.pending, 0).label("calc_debits_pending"),
            func.coalesce(c.c.posted, 0).label("calc_credits_posted"),
            func.coalesce(c.c.pending, 0).label("calc_credits_pending"),
        )
        .select_from(
            acc.outerjoin(d, d.c.account_id == acc.c.id).outerjoin(c, c.c.account_id == acc.c.id)
        )
        .where(
            or_(
                acc.c.debits_posted != func.coalesce(d.c.posted, 0),
                acc.c.debits_pending != func.coalesce(d.c.pending, 0),
                acc.c.credits_posted != func.coalesce(c.c.posted, 0),
                acc.c.credits_pending != func.coalesce(c.c.pending, 0),
            )
        )
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings().all()]


def open_holds_fen(conn: Connection, account_id: int) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(pst.c.pending_remaining_fen), 0))
            .join(ent, ent.c.id == pst.c.entry_id)
            .where(and_(pst.c.debit_account_id == account_id, ent.c.status == "pending"))
        ).scalar_one()
    )


def entry_postings(conn: Connection, entry_id: int) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in conn.execute(select(pst).where(pst.c.entry_id == entry_id).order_by(pst.c.seq))
        .mappings()
        .all()
    ]


def timeout_after(clock: Clock, seconds: int) -> datetime:
    return clock.now() + timedelta(seconds=seconds)


def net_credit_by_code(conn: Connection, account_id: int) -> dict[str, int]:
    """Posted credits less posted debits of one account, per posting code (set-based)."""
    signed = case(
        (pst.c.credit_account_id == account_id, pst.c.amount_fen), else_=-pst.c.amount_fen
    )
    rows = conn.execute(
        select(pst.c.code, func.sum(signed))
        .where(
            or_(pst.c.debit_account_id == account_id, pst.c.credit_account_id == account_id),
            pst.c.phase == "posted",
        )
        .group_by(pst.c.code)
    ).all()
    return {str(code): int(total) for code, total in rows}
