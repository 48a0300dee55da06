"""The console's compliance page (issue 18): credit-report disputes to investigate and answer,
data-subject requests (access with the readable export, correction, deletion, consent
withdrawal), and the regulatory reports with CSV. Every action is the API's, audited the same
way (`fenqi.api.routes_compliance` and the services behind it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fenqi.api.text import ConsoleId, Line, Paragraph
from fenqi.bureau import disputes
from fenqi.compliance import reports
from fenqi.errors import FenqiError
from fenqi.privacy import rights
from fenqi.privacy.consent import ConsentKind
from fenqi.privacy.staff import Permission
from fenqi.web.auth import Console, ctx_of, needs, posted
from fenqi.web.routes_console import _page

router = APIRouter(prefix="/console/compliance", include_in_schema=False)
P = Permission
HOME = "/console/compliance"


def _back(message: str, error: bool = False) -> Response:
    return RedirectResponse(
        f"{HOME}?message={quote(message[:300])}&error={int(error)}", status_code=303
    )


@router.get("", response_class=HTMLResponse)
def compliance_page(
    request: Request,
    status: str = Query("open", max_length=12),
    message: str = Query("", max_length=300),
    error: int = Query(0, ge=0, le=1),
    console: Console = Depends(needs(P.COMPLIANCE_CASES, P.REPORTS_READ)),
) -> Response:
    ctx = ctx_of(request)
    found: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    if console.can(P.COMPLIANCE_CASES):
        with ctx.engine.connect() as conn:
            found = disputes.list_disputes(conn, status=status or None)
            requests = rights.list_requests(conn)[-100:]
    last_month = ctx.clock.today().replace(day=1) - timedelta(days=1)
    return _page(
        request,
        console,
        "compliance.html",
        disputes=found,
        requests=list(reversed(requests)),
        status=status,
        today=ctx.clock.today().isoformat(),
        message=message,
        error=bool(error),
        consent_kinds=[k.value for k in ConsentKind],
        report_names=reports.REPORTS,
        month=last_month.strftime("%Y-%m"),
        report=None,
    )


@router.post("/disputes/{dispute_id}/resolve")
def resolve_dispute(
    request: Request,
    dispute_id: ConsoleId,
    outcome: str = Form("", max_length=12),
    note: Paragraph = Form("", max_length=500),
    fix_status: str = Form("", max_length=12),
    console: Console = Depends(posted(P.COMPLIANCE_CASES)),
) -> Response:
    from fenqi.api.routes_compliance import resolve

    ctx = ctx_of(request)
    fix: dict[str, Any] | None = None
    if fix_status == "current":
        fix = {"status": "current", "dpd": 0, "past_due_fen": 0}
    elif fix_status:
        fix = {"status": fix_status}
    actor = disputes.Actor("staff", str(console.user.id), "console")
    with ctx.engine.begin() as conn:
        code, body = resolve(ctx, conn, actor, dispute_id, outcome, note, fix)
    if code != 200:
        return _back(f"Dispute {dispute_id}: {body['detail']}", error=True)
    return _back(f"Dispute {dispute_id} {body['status']}.")


@router.post("/requests", response_model=None)
def data_subject_request(
    request: Request,
    customer_id: Line = Form("", max_length=20),
    action: str = Form("", max_length=16),
    kind: str = Form("", max_length=24),
    field: str = Form("", max_length=16),
    value: Line = Form("", max_length=64),
    console: Console = Depends(posted(P.COMPLIANCE_CASES)),
) -> Response:
    """An access request shows the export (audited); the others answer on the page."""
    ctx = ctx_of(request)
    if not customer_id.isdigit():
        return _back("Enter a customer id.", error=True)
    who = int(customer_id)
    actor = ("staff", str(console.user.id), "console")
    days = ctx.settings.privacy_request_days
    try:
        with ctx.engine.begin() as conn:
            if action == "access":
                req, data = rights.request_access(
                    conn, ctx.clock, ctx.keys, actor, who, due_days=days
                )
                return _page(
                    request,
                    console,
                    "compliance_export.html",
                    body=rights.render_html(data),
                    request_id=req["id"],
                )
            if action == "withdrawal":
                req = rights.withdraw(conn, ctx.clock, actor, who, kind, due_days=days)
            elif action == "correction":
                req = rights.correct(
                    conn, ctx.clock, ctx.keys, actor, who, field, value, due_days=days
                )
            elif action == "deletion":
                req = _delete(ctx, conn, actor, who)
            else:
                return _back("Choose a request.", error=True)
    except FenqiError as exc:
        return _back(f"Customer {who}: {exc.message}", error=True)
    if req.get("status") == "refused":
        return _back(f"Request {req['id']} refused: {req['outcome'].get('reason', '')}", True)
    return _back(f"Request {req['id']} ({req['kind']}): {req['status']}.")


def _delete(ctx: Any, conn: Any, actor: tuple[str, str, str], who: int) -> dict[str, Any]:
    from fenqi.bureau.reporting import ledger_owed_as_of

    owed, _ = ledger_owed_as_of(conn, ctx.clock.today())
    try:
        return rights.request_deletion(
            conn,
            ctx.clock,
            ctx.keys,
            actor,
            who,
            due_days=ctx.settings.privacy_request_days,
            owed_fen=owed,
            retention_years=ctx.settings.record_retention_years,
        )
    except rights.Refused as exc:  # recorded and audited: keep it (the transaction commits)
        return rights.get_request(conn, int(exc.detail["request_id"]))


@router.get("/reports", response_model=None)
def report_page(
    request: Request,
    name: str = Query("overdue", max_length=16),
    month: str = Query(..., max_length=7),
    format: str = Query("html", max_length=4),
    console: Console = Depends(needs(P.REPORTS_READ)),
) -> Response:
    ctx = ctx_of(request)
    grace = {n: p.billing.grace_days for n, p in ctx.catalog.items()}
    try:
        with ctx.engine.connect() as conn:
            rep = reports.build(
                conn,
                name,
                month,
                grace_of=grace,
                cap_fen=ctx.settings.borrower_exposure_cap_fen,
                zone=ctx.settings.timezone,
            )
    except (FenqiError, ValueError) as exc:
        return _back(str(exc), error=True)
    if format == "csv":
        return Response(
            rep.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="fenqi-{name}-{month}.csv"'},
        )
    return _page(
        request,
        console,
        "compliance.html",
        disputes=[],
        requests=[],
        status="",
        today="",
        message="",
        error=False,
        consent_kinds=[],
        report_names=reports.REPORTS,
        month=month,
        report=rep,
    )
