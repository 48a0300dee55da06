"""Read models for a shopper's account: plans with their lines, statements by due date, and
ledger history across the account's ledger accounts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from fenqi.credit.lines import KINDS, line_from_row
from fenqi.ledger.queries import history
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines_t
from fenqi.store.schema.ledger import ledger_accounts


def _line_dict(row: Any) -> dict[str, Any]:
    line = line_from_row(row)
    return {
        "period": line.period,
        "due_date": line.due_date.isoformat(),
        **{f"{k.value}_fen": line.due[k] for k in KINDS},
        "paid_fen": sum(line.paid.values()),
        "waived_fen": sum(line.waived.values()),
        "owed_fen": line.unpaid_total,
    }


def account_plans(conn: Connection, credit_account_id: int) -> list[dict[str, Any]]:
    rows = (
        conn.execute(
            select(plans).where(plans.c.credit_account_id == credit_account_id).order_by(plans.c.id)
        )
        .mappings()
        .all()
    )
    all_lines = (
        conn.execute(
            select(lines_t)
            .where(lines_t.c.credit_account_id == credit_account_id)
            .order_by(lines_t.c.plan_id, lines_t.c.period)
        )
        .mappings()
        .all()
    )
    by_plan: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in all_lines:
        by_plan[r["plan_id"]].append(_line_dict(r))
    return [
        {
            "id": p["id"],
            "kind": p["kind"],
            "terms": p["terms"],
            "status": p["status"],
            "purchase_date": p["purchase_date"].isoformat(),
            "principal_fen": p["principal_fen"],
            "fee_fen": p["fee_fen"],
            "interest_fen": p["interest_fen"],
            "annualized_rate_bp": p["nominal_rate_bp"],
            "owed_fen": sum(x["owed_fen"] for x in by_plan[p["id"]]),
            "lines": by_plan[p["id"]],
        }
        for p in rows
    ]


def statements(conn: Connection, credit_account_id: int) -> list[dict[str, Any]]:
    """What falls due on each due date (the billing run of issue 5 cuts formal statements).
    Each line discloses its plan's annualized rate (IRR, PBOC 2021 No. 3)."""
    rates = dict(
        conn.execute(
            select(plans.c.id, plans.c.nominal_rate_bp).where(
                plans.c.credit_account_id == credit_account_id
            )
        ).all()
    )
    rows = (
        conn.execute(
            select(lines_t)
            .where(lines_t.c.credit_account_id == credit_account_id)
            .order_by(lines_t.c.due_date, lines_t.c.plan_id)
        )
        .mappings()
        .all()
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = _line_dict(r)
        s = out.setdefault(
            d["due_date"],
            {"due_date": d["due_date"], "due_fen": 0, "paid_fen": 0, "owed_fen": 0, "lines": []},
        )
        s["due_fen"] += sum(d[f"{k.value}_fen"] for k in KINDS) - d["waived_fen"]
        s["paid_fen"] += d["paid_fen"]
        s["owed_fen"] += d["owed_fen"]
        rate = rates.get(r["plan_id"])
        s["lines"].append({"plan_id": r["plan_id"], **d, "annualized_rate_bp": rate})
    return list(out.values())


def ledger_lines(
    conn: Connection, credit_account_id: int, limit: int, after_id: int
) -> list[dict[str, Any]]:
    accounts = dict(
        conn.execute(
            select(ledger_accounts.c.id, ledger_accounts.c.code).where(
                ledger_accounts.c.owner_kind == "customer",
                ledger_accounts.c.owner_id == str(credit_account_id),
            )
        ).all()
    )
    lines: list[dict[str, Any]] = []
    for account_id in accounts:
        lines.extend(history(conn, account_id, limit=limit, after_posting_id=after_id))
    lines.sort(key=lambda x: x["posting_id"])
    out = []
    for x in lines[:limit]:
        mine = (
            x["debit_account_id"] if x["debit_account_id"] in accounts else x["credit_account_id"]
        )
        out.append(
            {
                "posting_id": x["posting_id"],
                "entry_id": x["entry_id"],
                "account": accounts[mine],
                "side": "debit" if mine == x["debit_account_id"] else "credit",
                "amount_fen": x["amount_fen"],
                "code": x["code"],
                "kind": x["kind"],
                "business_date": str(x["business_date"]),
                "description": x["description"],
            }
        )
    return out


def customer_account_ids(
    conn: Connection, customer_id: int, limit: int, after: int | None, newest_first: bool = True
) -> list[int]:
    """A customer's credit account ids, a page of `limit` after the cursor `after` (an id), newest
    first or oldest first."""
    c = credit_accounts.c
    stmt = select(c.id).where(c.customer_ref == str(customer_id))
    if after:
        stmt = stmt.where(c.id < after if newest_first else c.id > after)
    stmt = stmt.order_by(c.id.desc() if newest_first else c.id).limit(limit)
    return [int(i) for i in conn.execute(stmt).scalars().all()]
