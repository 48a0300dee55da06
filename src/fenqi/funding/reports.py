"""Operations reports on funding, read-only and set-based: the catalog as a table, exposure
against limits (service.exposure), a date's settlement rows, concentration (largest borrowers
per funder, and the share of the top ten), and the share of new lending by funder over a
date range. Used by the operations API (api/routes_funding.py) and the console page."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from fenqi.funding.model import FundingCatalog
from fenqi.store.schema.funding import funder_exposure as exp_t
from fenqi.store.schema.funding import funder_region_exposure as reg_t
from fenqi.store.schema.funding import funder_state as st_t
from fenqi.store.schema.funding import funding_settlements as set_t
from fenqi.store.schema.funding import funding_tranches as tr_t

TOP = 10


def catalog_rows(catalog: FundingCatalog) -> dict[str, Any]:
    return {
        "platform_floor_bp": catalog.platform_floor_bp,
        "funders": [f.model_dump(mode="json") for f in catalog.funders.values()],
        "programs": [p.model_dump(mode="json") for p in catalog.programs.values()],
    }


def with_use(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exposure rows with the share of each limit used, in bp (None: no limit)."""

    def used(value: int, cap: int | None) -> int | None:
        return None if not cap else value * 10_000 // cap

    return [
        {
            **r,
            "total_used_bp": used(r["outstanding_fen"], r["limit_total_fen"]),
            "day_used_bp": used(r["lent_on_day_fen"], r["limit_per_day_fen"]),
            "borrower_used_bp": used(r["largest_borrower_fen"], r["limit_per_borrower_fen"]),
        }
        for r in rows
    ]


def settlements(conn: Connection, day: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(set_t).where(set_t.c.business_date == day).order_by(set_t.c.funder_id)
    ).mappings()
    return [
        {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in r.items()
            if k != "created_at"
        }
        for r in rows
    ]


def concentration(conn: Connection, funder_id: str, top: int = TOP) -> dict[str, Any]:
    """The funder's largest borrowers (credit accounts) by its principal outstanding with them,
    what share of its book the top `top` hold, and its book by province."""
    total = conn.execute(
        select(st_t.c.outstanding_fen).where(st_t.c.funder_id == funder_id)
    ).scalar_one_or_none()
    total = int(total or 0)
    rows = conn.execute(
        select(exp_t.c.credit_account_id, exp_t.c.outstanding_fen)
        .where(exp_t.c.funder_id == funder_id, exp_t.c.outstanding_fen > 0)
        .order_by(exp_t.c.outstanding_fen.desc(), exp_t.c.credit_account_id)
        .limit(top)
    ).all()
    borrowers = conn.execute(
        select(func.count())
        .select_from(exp_t)
        .where(exp_t.c.funder_id == funder_id, exp_t.c.outstanding_fen > 0)
    ).scalar_one()
    top_sum = sum(int(r.outstanding_fen) for r in rows)
    regions = conn.execute(
        select(reg_t.c.region, reg_t.c.outstanding_fen, reg_t.c.cap_fen)
        .where(reg_t.c.funder_id == funder_id, reg_t.c.outstanding_fen > 0)
        .order_by(reg_t.c.outstanding_fen.desc(), reg_t.c.region)
    ).all()
    return {
        "funder": funder_id,
        "outstanding_fen": total,
        "borrowers": int(borrowers),
        "top": [
            {
                "credit_account_id": int(r.credit_account_id),
                "outstanding_fen": int(r.outstanding_fen),
                "share_bp": int(r.outstanding_fen) * 10_000 // total if total else 0,
            }
            for r in rows
        ],
        "top_share_bp": top_sum * 10_000 // total if total else 0,
        # by province (the ID number's first two digits; "00": unknown), against its limit
        "regions": [
            {
                "region": str(r.region),
                "outstanding_fen": int(r.outstanding_fen),
                "share_bp": int(r.outstanding_fen) * 10_000 // total if total else 0,
                "limit_fen": None if r.cap_fen is None else int(r.cap_fen),
            }
            for r in regions
        ],
    }


def lending_share(conn: Connection, start: date, end: date) -> dict[str, Any]:
    """New lending (principal allocated) by funder between two business dates, inclusive."""
    rows = conn.execute(
        select(tr_t.c.funder_id, func.sum(tr_t.c.principal_fen), func.count())
        .where(tr_t.c.business_date.between(start, end))
        .group_by(tr_t.c.funder_id)
        .order_by(tr_t.c.funder_id)
    ).all()
    total = sum(int(r[1]) for r in rows)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "lent_fen": total,
        "funders": [
            {
                "funder": str(f),
                "lent_fen": int(amount),
                "loans": int(n),
                "share_bp": int(amount) * 10_000 // total if total else 0,
            }
            for f, amount, n in rows
        ],
    }
