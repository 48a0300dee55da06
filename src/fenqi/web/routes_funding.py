"""The console's funding page: funders and programs, exposure against limits, a date's
settlement, concentration and the share of new lending by funder (read-only; money moves
through the operations API, api/routes_funding.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from fenqi.funding import reports
from fenqi.funding.loader import catalog_for
from fenqi.funding.model import FundingCatalog
from fenqi.funding.service import exposure
from fenqi.privacy.staff import Permission
from fenqi.web.auth import Console, ctx_of, needs
from fenqi.web.routes_console import _page

router = APIRouter(prefix="/console", include_in_schema=False)
SHARE_DAYS = 30
TOP_REGIONS = 5


def top_regions(catalog: FundingCatalog, conc: dict[str, Any]) -> dict[str, Any]:
    """A funder's largest provinces by its principal outstanding there, each against its
    `per_region_fen` limit (the cap last applied to the province's row, else the catalog's
    current limit) and the share of that limit used (bp)."""
    funder = catalog.funders.get(conc["funder"])
    current = funder.limits.per_region_fen if funder is not None else None
    rows = []
    for r in conc["regions"][:TOP_REGIONS]:
        limit = r["limit_fen"] if r["limit_fen"] is not None else current
        used = r["outstanding_fen"] * 10_000 // limit if limit else None
        rows.append({**r, "limit_fen": limit, "used_bp": used})
    return {
        "funder": conc["funder"],
        "limit_fen": current,
        "regions": rows,
        "more": max(0, len(conc["regions"]) - TOP_REGIONS),
    }


@router.get("/funding", response_class=HTMLResponse)
def funding_page(
    request: Request,
    day: date | None = Query(None, alias="date"),
    console: Console = Depends(needs(Permission.REPORTS_READ)),
) -> Response:
    ctx = ctx_of(request)
    catalog = catalog_for(ctx)
    on = day or ctx.clock.today()
    with ctx.engine.connect() as conn:
        limits = reports.with_use(exposure(conn, catalog))
        settled = reports.settlements(conn, on)
        concentration = [reports.concentration(conn, f, 5) for f in catalog.funders]
        share = reports.lending_share(conn, on - timedelta(days=SHARE_DAYS - 1), on)
    return _page(
        request,
        console,
        "funding.html",
        catalog=catalog,
        limits=limits,
        settled=settled,
        concentration=concentration,
        share=share,
        regions=[top_regions(catalog, c) for c in concentration],
        day=on,
    )
