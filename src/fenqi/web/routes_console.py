"""The staff console: sign-in, dashboard, shoppers, decisions, risk models, batch runs,
webhooks and the audit log. Pages follow the role: links a role lacks are hidden and the
pages behind them answer 403."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fenqi.analytics import (
    balance_series,
    charts,
    load_book,
    portfolio_summary,
    roll_rates,
    vintage_curves,
)
from fenqi.analytics.decisions import PSI_MIN_DECISIONS
from fenqi.api.text import ID_MAX, BookDate, ConsoleId, Line, Paragraph
from fenqi.credit import customers, operations
from fenqi.errors import FenqiError
from fenqi.money import parse_yuan
from fenqi.privacy.audit import record
from fenqi.privacy.logins import LoginFailed, LoginThrottled, sign_in
from fenqi.privacy.passwords import HashingBusy
from fenqi.privacy.staff import Permission
from fenqi.web import queries
from fenqi.web.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_HOURS,
    Console,
    anonymous_csrf,
    check_anonymous_csrf,
    ctx_of,
    current,
    end_session,
    needs,
    posted,
    set_anonymous_csrf,
    set_session_cookie,
)
from fenqi.web.render import figure_html, page

router = APIRouter(prefix="/console", include_in_schema=False)
P = Permission
REASON_CHARS_MAX = 500

# The console's pages, in menu order, and which permissions open each (any of them).
NAV: tuple[tuple[str, str, tuple[Permission, ...]], ...] = (
    ("Dashboard", "/console/dashboard", (P.REPORTS_READ,)),
    ("Shoppers", "/console/shoppers", (P.CUSTOMER_READ_MASKED,)),
    ("Decisions", "/console/decisions", (P.RISK_MODELS_READ,)),
    ("Risk models", "/console/models", (P.RISK_MODELS_READ,)),
    ("Batch runs", "/console/batch", (P.BATCH_RUN, P.REPORTS_READ)),
    ("Funding", "/console/funding", (P.REPORTS_READ,)),  # web/routes_funding.py
    ("Compliance", "/console/compliance", (P.COMPLIANCE_CASES, P.REPORTS_READ)),
    ("Webhooks", "/console/webhooks", (P.WEBHOOKS_REPLAY,)),
    ("Audit log", "/console/audit", (P.AUDIT_READ,)),
    ("Test mode", "/console/test-mode", (P.REPORTS_READ,)),  # web/routes_test_mode.py
)


def nav_for(console: Console) -> list[tuple[str, str]]:
    return [(label, href) for label, href, perms in NAV if console.can_any(perms)]


def _page(request: Request, console: Console, template: str, **context: Any) -> HTMLResponse:
    return page(
        request, template, console=console, nav=nav_for(console), path=request.url.path, **context
    )


# ---------------------------------------------------------------- sign-in


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(console: Console = Depends(current)) -> Response:
    pages = [href for _, href, perms in NAV if console.can_any(perms)]
    return RedirectResponse(pages[0] if pages else "/console/login", status_code=303)


def _safe_next(next_path: str | None) -> str:
    """Only paths inside the console: never redirect a signed-in user to another site."""
    if next_path and next_path.startswith("/console") and "//" not in next_path:
        return next_path
    return "/console"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    token = anonymous_csrf(request)
    response = page(request, "login.html", csrf=token, next=_safe_next(next), error=None)
    set_anonymous_csrf(request, response)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Line = Form(..., max_length=64),
    password: str = Form(..., max_length=256),
    next: Line = Form("/console", max_length=500),
) -> Response:
    await check_anonymous_csrf(request)
    ctx = ctx_of(request)
    address = request.client.host if request.client else "unknown"
    try:  # argon2 work off the event loop, throttled and audited (fenqi.privacy.logins)
        user = await run_in_threadpool(sign_in, ctx, username, password, address, "console")
    except (LoginFailed, LoginThrottled, HashingBusy) as error:
        refused = page(
            request,
            "login.html",
            status_code=error.http_status,
            csrf=anonymous_csrf(request),
            next=_safe_next(next),
            error="Wrong username or password."
            if isinstance(error, LoginFailed)
            else f"{error.message[0].upper()}{error.message[1:]}.",
        )
        if isinstance(error, LoginThrottled):
            refused.headers["Retry-After"] = str(error.retry_after_seconds)
        return refused
    with ctx.engine.begin() as conn:
        token, _ = customers.open_session(
            conn, ctx.clock, "staff", str(user.id), None, hours=SESSION_HOURS
        )
        record(
            conn,
            ctx.clock,
            actor_kind="staff",
            actor_id=user.id,
            action="staff.login",
            detail={"via": "console"},
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/logout")
def logout(request: Request, console: Console = Depends(posted())) -> Response:
    end_session(ctx_of(request), console.token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# ---------------------------------------------------------------- dashboard


DASHBOARD_MONTHS_MAX = 60  # month-end series, roll rates: five years at most in one page


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    start: BookDate | None = None,
    end: BookDate | None = None,
    console: Console = Depends(needs(P.REPORTS_READ)),
) -> Response:
    ctx = ctx_of(request)
    today = ctx.clock.today()
    notes = []
    if end is not None and end > today:  # no figures exist yet for days to come
        notes.append(f"The end date was after the business date; showing up to {today}.")
        end = today
    end = end or today
    start = start or _months_back(end, 5)
    if start > end:
        start = _months_back(end, 5)
        notes.append("The start date was after the end date.")
    if start < _months_back(end, DASHBOARD_MONTHS_MAX):
        start = _months_back(end, DASHBOARD_MONTHS_MAX)
        notes.append(f"At most {DASHBOARD_MONTHS_MAX} months are shown; from {start}.")
    error = " ".join(notes) or None
    with ctx.engine.connect() as conn:
        grace = {name: p.billing.grace_days for name, p in ctx.catalog.items()}
        book = load_book(conn, end, grace)
        summary = portfolio_summary(conn, start, end, book)
        vintages = vintage_curves(conn, end, book)
        rolls = roll_rates(conn, start, end, book)
        series = balance_series(conn, start, end, book)
    figures = {
        "balances": figure_html(charts.balances_figure(series), "chart-balances"),
        "buckets": figure_html(charts.buckets_figure(summary), "chart-buckets"),
        "vintages": figure_html(charts.vintage_figure(vintages), "chart-vintages"),
        "rolls": figure_html(charts.roll_rate_figure(rolls), "chart-rolls"),
    }
    return _page(
        request,
        console,
        "dashboard.html",
        s=summary,
        rolls=rolls,
        figures=figures,
        start=start,
        end=end,
        error=error,
    )


# ---------------------------------------------------------------- shoppers


@router.get("/shoppers", response_class=HTMLResponse)
def shoppers(
    request: Request, console: Console = Depends(needs(P.CUSTOMER_READ_MASKED))
) -> Response:
    return _page(request, console, "shoppers.html", results=None, error=None, searched=False)


@router.post("/shoppers/search", response_class=HTMLResponse)
def shopper_search(
    request: Request,
    phone: Line = Form("", max_length=20),
    id_number: Line = Form("", max_length=18),
    console: Console = Depends(posted(P.CUSTOMER_READ_MASKED)),
) -> Response:
    """A POST, so the phone or ID number searched for stays out of URLs and access logs."""
    ctx = ctx_of(request)
    results: list[dict[str, Any]] = []
    error = None
    try:
        with ctx.engine.begin() as conn:
            results = operations.find_customers(
                conn,
                ctx.clock,
                ctx.keys,
                console.user.id,
                phone=phone.strip() or None,
                id_number=id_number.strip() or None,
            )
    except FenqiError as exc:
        error = str(exc)
    return _page(request, console, "shoppers.html", results=results, error=error, searched=True)


@router.get("/shoppers/{customer_id}", response_class=HTMLResponse)
def shopper(
    request: Request,
    customer_id: ConsoleId,
    console: Console = Depends(needs(P.CUSTOMER_READ_MASKED)),
) -> Response:
    ctx = ctx_of(request)
    with ctx.engine.begin() as conn:
        try:
            person = customers.masked(conn, ctx.keys, customer_id)
        except FenqiError:
            return _page(request, console, "not_found.html", what=f"shopper {customer_id}")
        accounts = queries.shopper_accounts(conn, customer_id, ctx.clock.today())
        apps = queries.shopper_applications(conn, customer_id)
        operations.audit_staff(
            conn, ctx.clock, console.user.id, "customer.view", "customer", customer_id
        )
    return _page(
        request, console, "shopper.html", person=person, accounts=accounts, applications=apps
    )


@router.post("/shoppers/{customer_id}/reveal", response_class=HTMLResponse)
def reveal(
    request: Request,
    customer_id: ConsoleId,
    reason: Paragraph = Form("", max_length=REASON_CHARS_MAX),
    console: Console = Depends(posted(P.CUSTOMER_REVEAL_PII)),
) -> Response:
    """The unmasked identity, for a stated reason that goes to the audit log with the reveal."""
    ctx = ctx_of(request)
    if not reason.strip():
        return page(
            request,
            "_reveal.html",
            status_code=400,
            plain=None,
            customer_id=customer_id,
            console=console,
            error="Say why you need to see this shopper's identity.",
        )
    with ctx.engine.begin() as conn:
        plain = operations.reveal_customer(
            conn, ctx.clock, ctx.keys, console.user.id, customer_id, reason.strip()
        )
    return page(
        request, "_reveal.html", plain=plain, customer_id=customer_id, console=console, error=None
    )


# ---------------------------------------------------------------- account actions

ACCOUNT_ACTIONS = ("freeze", "unfreeze", "close")


def _account_result(
    request: Request, console: Console, account_id: int, error: str | None, status_code: int
) -> HTMLResponse:
    """The account's action box again: the error in place, or (done) a reload of the page,
    which shows the new status or limit."""
    response = page(
        request,
        "_account_actions.html",
        status_code=status_code,
        console=console,
        account_id=account_id,
        error=error,
    )
    if error is None:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/accounts/{account_id}/status", response_class=HTMLResponse)
def account_status(
    request: Request,
    account_id: ConsoleId,
    action: str = Form("", max_length=16),
    reason: Paragraph = Form("", max_length=REASON_CHARS_MAX),
    console: Console = Depends(posted(P.ACCOUNT_FREEZE)),
) -> Response:
    """Freeze, unfreeze or close a credit account, for a stated reason (audited, as the API's
    `POST /v1/ops/accounts/{id}/{action}`)."""
    if action not in ACCOUNT_ACTIONS:
        return _account_result(
            request, console, account_id, f"Choose one of {', '.join(ACCOUNT_ACTIONS)}.", 400
        )
    if not reason.strip():
        return _account_result(request, console, account_id, f"Say why you {action} it.", 400)
    ctx = ctx_of(request)
    try:
        with ctx.engine.begin() as conn:
            operations.change_account_status(
                conn, ctx.clock, console.user.id, account_id, action, reason.strip()
            )
    except FenqiError as error:
        return _account_result(request, console, account_id, str(error), 409)
    return _account_result(request, console, account_id, None, 200)


@router.post("/accounts/{account_id}/limit", response_class=HTMLResponse)
def account_limit(
    request: Request,
    account_id: ConsoleId,
    limit_yuan: str = Form("", max_length=40),
    reason: Paragraph = Form("", max_length=REASON_CHARS_MAX),
    console: Console = Depends(posted(P.ACCOUNT_CHANGE_LIMIT)),
) -> Response:
    """Set a credit account's limit, for a stated reason (audited with the old and new limit, as
    the API's `POST /v1/ops/accounts/{id}/limit`)."""
    try:
        limit_fen = parse_yuan(limit_yuan)
    except ValueError as error:
        return _account_result(request, console, account_id, f"New limit: {error}.", 400)
    if not reason.strip():
        return _account_result(request, console, account_id, "Say why the limit changes.", 400)
    ctx = ctx_of(request)
    try:
        with ctx.engine.begin() as conn:
            operations.change_account_limit(
                conn,
                ctx.clock,
                ctx.product,
                console.user.id,
                account_id,
                limit_fen,
                reason.strip(),
            )
    except FenqiError as error:
        return _account_result(request, console, account_id, str(error), 400)
    return _account_result(request, console, account_id, None, 200)


# ---------------------------------------------------------------- decisions and models


@router.get("/decisions", response_class=HTMLResponse)
def decisions(
    request: Request,
    outcome: str | None = Query(None, pattern="^(approve|decline|refer)$"),
    variant: str | None = Query(None, pattern="^(champion|challenger)$"),
    before: int | None = Query(None, ge=1, le=ID_MAX),
    console: Console = Depends(needs(P.RISK_MODELS_READ)),
) -> Response:
    with ctx_of(request).engine.connect() as conn:
        rows = queries.decisions(conn, outcome=outcome, variant=variant, before_id=before)
    return _page(
        request,
        console,
        "decisions.html",
        rows=rows,
        outcome=outcome,
        variant=variant,
        next_before=rows[-1]["id"] if len(rows) == queries.PAGE else None,
    )


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision(
    request: Request,
    decision_id: ConsoleId,
    console: Console = Depends(needs(P.RISK_MODELS_READ)),
) -> Response:
    with ctx_of(request).engine.connect() as conn:
        found = queries.decision(conn, decision_id)
    if found is None:
        return _page(request, console, "not_found.html", what=f"decision {decision_id}")
    return _page(request, console, "decision.html", **found)


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, console: Console = Depends(needs(P.RISK_MODELS_READ))) -> Response:
    ctx = ctx_of(request)
    registry = queries.registry_models(ctx.settings.models_dir)
    with ctx.engine.connect() as conn:
        monitor = queries.model_monitoring(conn, registry)
    figures = {
        "scores": figure_html(charts.score_histogram_figure(monitor["scores"]), "chart-scores"),
        "psi": figure_html(charts.psi_figure(monitor["psi"], PSI_MIN_DECISIONS), "chart-psi"),
    }
    return _page(
        request,
        console,
        "models.html",
        registry=registry,
        gate=queries.gate_decisions(ctx.settings.models_dir),
        arms=monitor["arms"],
        figures=figures,
        has_scores=bool(monitor["scores"]),
        psi=monitor["psi"],
        psi_min=PSI_MIN_DECISIONS,
    )


# ---------------------------------------------------------------- batch, webhooks, audit


@router.get("/batch", response_class=HTMLResponse)
def batch(
    request: Request, console: Console = Depends(needs(P.BATCH_RUN, P.REPORTS_READ))
) -> Response:
    with ctx_of(request).engine.connect() as conn:
        runs = queries.batch_runs(conn)
    template = "_batch_runs.html" if request.headers.get("HX-Request") else "batch.html"
    return _page(request, console, template, runs=runs)


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks(
    request: Request,
    status: str | None = Query(None, pattern="^(pending|delivering|delivered|dead)$"),
    after: int = Query(0, ge=0, le=ID_MAX),
    console: Console = Depends(needs(P.WEBHOOKS_REPLAY)),
) -> Response:
    with ctx_of(request).engine.connect() as conn:
        rows = queries.deliveries(conn, status=status, after_id=after)
        counts = queries.delivery_counts(conn)
    return _page(
        request,
        console,
        "webhooks.html",
        rows=rows,
        status=status,
        message=None,
        counts=counts,
        next_after=rows[-1]["id"] if len(rows) == queries.PAGE else None,
    )


@router.post("/webhooks/events/{event_id}/replay", response_class=HTMLResponse)
def replay(
    request: Request,
    event_id: Annotated[Line, Path(min_length=1, max_length=64)],
    console: Console = Depends(posted(P.WEBHOOKS_REPLAY)),
) -> Response:
    ctx = ctx_of(request)
    try:
        with ctx.engine.begin() as conn:
            delivery_id = operations.replay_webhook_event(
                conn, ctx.clock, console.user.id, event_id[:64]
            )
        message = f"Event {event_id} queued again as delivery {delivery_id}."
    except FenqiError as exc:
        message = f"Not replayed: {exc}"
    return page(request, "_message.html", message=message)


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    target_kind: Line | None = Query(None, max_length=32),
    target_id: Line | None = Query(None, max_length=64),
    console: Console = Depends(needs(P.AUDIT_READ)),
) -> Response:
    with ctx_of(request).engine.connect() as conn:
        entries = queries.audit_entries(conn, target_kind=target_kind, target_id=target_id)
    return _page(
        request,
        console,
        "audit.html",
        entries=entries,
        target_kind=target_kind,
        target_id=target_id,
    )


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/console/login?next={quote(next_path)}", status_code=303)


__all__ = ["CSRF_FIELD", "login_redirect", "router"]
