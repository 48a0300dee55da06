"""The console's test-mode page: whether test mode is on, where its book is, and what is in it
(read-only). Every other console page shows the live book only; the header says which book a
page shows (docs/console.md, docs/api.md "Test mode")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, func, select

from fenqi.ledger.queries import trial_balance
from fenqi.privacy.staff import Permission
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.parties import customers, merchant_api_keys, merchants, orders
from fenqi.store.schema.webhooks import webhook_events
from fenqi.web.auth import Console, ctx_of, needs
from fenqi.web.routes_console import _page

router = APIRouter(prefix="/console", include_in_schema=False)


def test_book_summary(conn: Connection) -> dict[str, Any]:
    """Counts of what the test book holds, and its trial balance per currency."""
    counted = {
        "shops": merchants,
        "test API keys": merchant_api_keys,
        "customers": customers,
        "credit accounts": credit_accounts,
        "orders": orders,
        "webhook events": webhook_events,
    }
    counts = {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in counted.items()
    }
    totals = trial_balance(conn).totals
    return {"counts": counts, "totals": totals}


@router.get("/test-mode", response_class=HTMLResponse)
def test_mode_page(
    request: Request, console: Console = Depends(needs(Permission.REPORTS_READ))
) -> Response:
    test = ctx_of(request).test_mode
    summary, where = None, None
    if test is not None:
        where = test.engine.url.render_as_string(hide_password=True)
        with test.engine.connect() as conn:
            summary = test_book_summary(conn)
    return _page(request, console, "test_mode.html", book_mode="test", summary=summary, where=where)
