"""The console's funding page: funders and programs, exposure against limits, a date's
settlement, concentration and the share of new lending by funder (read-only; money moves
through the operations API, api/routes_funding.py)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from fenqi.funding import reports
from fenqi.funding.loader import catalog_for
from fenqi.funding.service import exposure
from fenqi.privacy.staff import Permission
from fenqi.web.auth import Console, ctx_of, needs
from fenqi.web.routes_console import _page

router = APIRouter(prefix="/console", include_in_schema=False)
SHARE_DAYS = 30


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
        day=on,
    )
