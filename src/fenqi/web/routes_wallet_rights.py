"""The wallet's "my data" page (issue 18): dispute a credit-report record, see everything
fenqi holds (the readable export), withdraw a consent, ask for deletion — each through the
shopper API with the wallet's shopper token, as a shop's own app would."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fenqi.api.text import ID_MAX, Line, Paragraph
from fenqi.web.auth import ctx_of
from fenqi.web.routes_shop import WALLET_COOKIE, _api, _post, _problem, _with_csrf, verify_csrf

router = APIRouter(include_in_schema=False)
PAGE = "/wallet/privacy"


def _back(message: str, error: bool = False) -> Response:
    return RedirectResponse(
        f"{PAGE}?message={quote_plus(message[:200])}&error={int(error)}", status_code=303
    )


def _page(request: Request, token: str, **extra: Any) -> Response:
    with _api(request, token) as api:
        r = api.get("/v1/me/accounts")
        if r.status_code != 200:
            return RedirectResponse("/wallet", status_code=303)
        accounts = [
            {"credit_account_id": a["credit_account_id"], "product": a.get("product", "")}
            for a in r.json()["items"]
        ]
        found = {
            "disputes": api.get("/v1/me/disputes").json(),
            "consents": api.get("/v1/me/consents").json(),
            "requests": api.get("/v1/me/privacy/requests").json(),
        }
    days = ctx_of(request).settings.bureau_dispute_days
    return _with_csrf(
        request, "wallet_privacy.html", accounts=accounts, dispute_days=days, **found, **extra
    )


@router.get(PAGE, response_class=HTMLResponse)
def privacy_page(
    request: Request,
    message: Line | None = Query(None, max_length=200),
    error: int = Query(0, ge=0, le=1),
) -> Response:
    token = request.cookies.get(WALLET_COOKIE)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    return _page(request, token, message=message, error=bool(error), export=None)


def _token(request: Request, csrf_token: str | None) -> str | None:
    verify_csrf(request, csrf_token)
    return request.cookies.get(WALLET_COOKIE)


@router.post("/wallet/disputes")
def wallet_dispute(
    request: Request,
    account_id: int = Form(..., ge=1, le=ID_MAX),
    item: str = Form(..., max_length=16),
    claim: Paragraph = Form(..., max_length=500),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    token = _token(request, csrf_token)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    with _api(request, token) as api:
        r = _post(api, f"/v1/me/accounts/{account_id}/disputes", {"item": item, "claim": claim})
    if r.status_code != 201:
        return _back(_problem(r), error=True)
    return _back(f"Dispute received: we answer by {r.json()['due_on']}.")


@router.post("/wallet/privacy/access", response_class=HTMLResponse)
def wallet_access(
    request: Request, csrf_token: str | None = Form(None, max_length=100)
) -> Response:
    from fenqi.privacy.rights import render_html

    token = _token(request, csrf_token)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    with _api(request, token) as api:
        r = _post(api, "/v1/me/privacy/access", {})
    if r.status_code != 200:
        return _back(_problem(r), error=True)
    return _page(request, token, message=None, error=False, export=render_html(r.json()["data"]))


@router.post("/wallet/privacy/withdraw")
def wallet_withdraw(
    request: Request,
    kind: str = Form(..., max_length=24),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    token = _token(request, csrf_token)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    with _api(request, token) as api:
        r = _post(api, "/v1/me/privacy/withdrawals", {"kind": kind})
    if r.status_code != 201:
        return _back(_problem(r), error=True)
    return _back(f"Consent withdrawn: {r.json()['outcome']['effect']}.")


@router.post("/wallet/privacy/delete")
def wallet_delete(
    request: Request, csrf_token: str | None = Form(None, max_length=100)
) -> Response:
    token = _token(request, csrf_token)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    with _api(request, token) as api:
        r = _post(api, "/v1/me/privacy/deletion", {})
    if r.status_code != 201:
        return _back(f"We cannot delete your data yet: {_problem(r)}", error=True)
    return _back(f"Deletion scheduled: what the law makes us keep goes on {r.json()['erase_on']}.")
