"""A demo shop and a shopper wallet, to try fenqi in a browser.

Both act as a real shop would: they call the merchant REST API over HTTP (on the same server)
with the demo shop's API key from the demo file, never the services directly, so what they show
is what a shop integrating fenqi would get. The wallet uses a shopper token that the shop
obtains for the shopper (`POST /v1/shopper-sessions`), kept in an HttpOnly cookie.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fenqi.api.text import ID_MAX, Line
from fenqi.context import Context
from fenqi.web.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    CsrfFailed,
    anonymous_csrf,
    cookie_secure,
    ctx_of,
    set_anonymous_csrf,
)
from fenqi.web.render import page

router = APIRouter(include_in_schema=False)
WALLET_COOKIE = "fenqi_wallet"
DEFAULT_DEMO_FILE = Path(".fenqi/demo.json")
API_TIMEOUT_SECONDS = 30.0
AMOUNT_FEN_MAX = 10**10


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    price_fen: int
    blurb: str


# The shop's shelf: a few things at prices where installments make sense.
ITEMS: tuple[Item, ...] = (
    Item("phone-5g", "Phone 5G, 256 GB", 299_900, "6.7-inch screen, two-day battery."),
    Item("headphones", "Noise-cancelling headphones", 89_900, "40 hours, fold flat."),
    Item("laptop-14", "14-inch laptop", 599_900, "16 GB memory, 1 TB SSD."),
)
ITEMS_BY_SKU = {i.sku: i for i in ITEMS}


@dataclass(frozen=True)
class Demo:
    shop_id: str
    api_key: str
    shoppers: list[dict[str, int]]

    def account_of(self, customer_id: int) -> int | None:
        for s in self.shoppers:
            if int(s["customer_id"]) == customer_id:
                return int(s["credit_account_id"])
        return None


def demo_file(ctx: Context) -> Path:
    configured = getattr(ctx.settings, "demo_file", None)
    return Path(configured) if configured else DEFAULT_DEMO_FILE


def load_demo(ctx: Context) -> Demo | None:
    """The demo shop written by `fenqi demo`, or None when there is none (yet)."""
    try:
        raw = json.loads(demo_file(ctx).read_text())
        shop = raw["shop"]
        shoppers = [
            {"customer_id": int(s["customer_id"]), "credit_account_id": int(s["credit_account_id"])}
            for s in raw.get("shoppers", [])[:50]
        ]
        return Demo(str(shop["id"]), str(shop["api_key"]), shoppers)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _api(request: Request, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=str(request.base_url).rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=API_TIMEOUT_SECONDS,
    )


def _post(client: httpx.Client, path: str, body: Any, key: str | None = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or response.text)
    except ValueError:
        return f"HTTP {response.status_code}"


# What a shopper is told when the API refuses: plain words, never the API's detail (it names
# internal rule codes, e.g. a checkout-risk rule) — a real shop keeps those to itself.
SHOPPER_MESSAGES = {
    "insufficient_credit": "Your available credit does not cover this purchase.",
    "account_not_active": "Your credit account cannot be used for purchases right now.",
    "risk_decline": "We could not approve this purchase. Please choose another way to pay.",
    "risk_step_up": "For your security, please confirm this purchase.",
    "currency_mismatch": "This credit account cannot pay in this shop's currency.",
}
SHOPPER_MESSAGE_DEFAULT = "The payment could not be completed. Please try again later."


def shopper_message(response: httpx.Response) -> str:
    """A refusal in words for the shopper: by the problem's code, never its detail."""
    try:
        code = str(response.json().get("code", ""))
    except ValueError:
        code = ""
    return SHOPPER_MESSAGES.get(code, SHOPPER_MESSAGE_DEFAULT)


def affordable_plans(quote: dict[str, Any]) -> list[dict[str, Any]]:
    """The quoted plans the shopper's available credit covers (the authorization holds the
    purchase amount, whatever the plan)."""
    available = int(quote.get("available_fen") or 0)
    return [
        p
        for p in quote.get("plans", [])
        if sum(int(x["principal_fen"]) for x in p.get("schedule", [])) <= available
    ]


def verify_csrf(request: Request, csrf_token: str | None) -> None:
    """Double submit: the form's (or htmx header's) token must equal the cookie's. These
    handlers are synchronous (they call the API over HTTP on this same server, which must not
    block the event loop), so the form is read by FastAPI, not awaited here."""
    sent = request.headers.get(CSRF_HEADER) or csrf_token
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfFailed()


def _with_csrf(request: Request, template: str, status_code: int = 200, **ctx: Any) -> Response:
    csrf = anonymous_csrf(request)
    response = page(request, template, status_code=status_code, csrf=csrf, **ctx)
    set_anonymous_csrf(request, response)
    return response


# ---------------------------------------------------------------- shop


@router.get("/shop", response_class=HTMLResponse)
def shop(request: Request, sku: str = ITEMS[0].sku) -> Response:
    demo = load_demo(ctx_of(request))
    item = ITEMS_BY_SKU.get(sku, ITEMS[0])
    return _with_csrf(request, "shop.html", demo=demo, item=item, items=ITEMS)


def _fragment(request: Request, message: str, status_code: int = 200) -> Response:
    return page(request, "_shop_message.html", status_code=status_code, message=message)


@router.post("/shop/quote", response_class=HTMLResponse)
def shop_quote(
    request: Request,
    sku: str = Form(..., max_length=32),
    customer_id: int = Form(..., ge=1, le=ID_MAX),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    verify_csrf(request, csrf_token)
    demo = load_demo(ctx_of(request))
    item = ITEMS_BY_SKU.get(sku)
    account = demo.account_of(customer_id) if demo else None
    if demo is None or item is None or account is None:
        return _fragment(request, "Unknown item or shopper.", 400)
    with _api(request, demo.api_key) as api:
        r = _post(api, "/v1/quotes", {"credit_account_id": account, "amount_fen": item.price_fen})
    if r.status_code != 200:
        return _fragment(request, f"No plans: {shopper_message(r)}", 200)
    quote = r.json()
    plans = affordable_plans(quote)
    if not plans:  # nothing to choose: say why, without offering what would be declined
        return _fragment(
            request,
            f"Your available credit (¥{quote['available_fen'] / 100:,.2f}) does not cover "
            f"this item (¥{item.price_fen / 100:,.2f}).",
            200,
        )
    return page(
        request,
        "_shop_plans.html",
        quote={**quote, "plans": plans},
        item=item,
        customer_id=customer_id,
        order_ref=f"demo-{uuid.uuid4().hex[:16]}",
        csrf=request.cookies.get(CSRF_COOKIE, ""),
    )


@router.post("/shop/order", response_class=HTMLResponse)
def shop_order(
    request: Request,
    sku: str = Form(..., max_length=32),
    customer_id: int = Form(..., ge=1, le=ID_MAX),
    terms: int = Form(..., ge=0, le=60),
    order_ref: str = Form(..., pattern=r"^demo-[0-9a-f]{16}$"),
    step_up_verified: bool = Form(False),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    """Authorize, then capture (the shop ships at once). A `risk_step_up` refusal asks the
    shopper to confirm (in a real shop: payment password or SMS code), then retries."""
    verify_csrf(request, csrf_token)
    demo = load_demo(ctx_of(request))
    item = ITEMS_BY_SKU.get(sku)
    account = demo.account_of(customer_id) if demo else None
    if demo is None or item is None or account is None:
        return _fragment(request, "Unknown item or shopper.", 400)
    body = {
        "credit_account_id": account,
        "amount_fen": item.price_fen,
        "currency": "CNY",  # the demo shop sells in yuan
        "terms": terms,
        "merchant_order_ref": order_ref,
        "step_up_verified": step_up_verified,
    }
    csrf = request.cookies.get(CSRF_COOKIE, "")
    with _api(request, demo.api_key) as api:
        # the key names the attempt, so a double click or a retry after a timeout is one order
        r = _post(api, "/v1/orders", body, f"{order_ref}:authorize:{int(step_up_verified)}")
        if r.status_code == 402 and r.json().get("code") == "risk_step_up":
            return page(
                request,
                "_shop_step_up.html",
                item=item,
                customer_id=customer_id,
                terms=terms,
                order_ref=order_ref,
                csrf=csrf,
                detail=shopper_message(r),
            )
        if r.status_code != 201:
            return _fragment(request, f"Payment declined: {shopper_message(r)}")
        order = r.json()
        c = _post(api, f"/v1/orders/{order['id']}/captures", {}, f"{order_ref}:capture")
    if c.status_code != 201:
        return _fragment(request, f"Authorized, but capture failed: {shopper_message(c)}")
    return page(request, "_shop_done.html", order=c.json(), item=item, terms=terms)


# ---------------------------------------------------------------- wallet


def parse_yuan(text: str) -> int | None:
    """'123.45' -> 12345 fen; None unless a positive amount with at most two decimals."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value() or not 0 < fen <= AMOUNT_FEN_MAX:
        return None
    return int(fen)


@router.get("/wallet", response_class=HTMLResponse)
def wallet(
    request: Request,
    paid_fen: int | None = Query(None, ge=0, le=10**12),
    error: Line | None = Query(None, max_length=200),
) -> Response:
    demo = load_demo(ctx_of(request))
    token = request.cookies.get(WALLET_COOKIE)
    if demo is None or not token:
        return _with_csrf(request, "wallet.html", demo=demo, accounts=None, error=error)
    accounts = []
    with _api(request, token) as api:
        r = api.get("/v1/me/accounts")
        if r.status_code == 401:  # expired: sign in again
            response = _with_csrf(request, "wallet.html", demo=demo, accounts=None, error=None)
            response.delete_cookie(WALLET_COOKIE, path="/wallet")
            return response
        for summary in r.json()["items"] if r.status_code == 200 else []:
            account_id = summary["credit_account_id"]
            accounts.append(
                {
                    "summary": summary,
                    "plans": api.get(f"/v1/me/accounts/{account_id}/plans").json(),
                    "statements": api.get(f"/v1/me/accounts/{account_id}/statements").json(),
                    "pay_key": secrets.token_hex(12),
                }
            )
    return _with_csrf(
        request,
        "wallet.html",
        demo=demo,
        accounts=accounts,
        paid_fen=paid_fen,
        error=error[:200] if error else None,
    )


@router.post("/wallet/session")
def wallet_session(
    request: Request,
    customer_id: int = Form(..., ge=1, le=ID_MAX),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    verify_csrf(request, csrf_token)
    demo = load_demo(ctx_of(request))
    if demo is None or demo.account_of(customer_id) is None:
        return RedirectResponse("/wallet?error=unknown+shopper", status_code=303)
    with _api(request, demo.api_key) as api:
        r = _post(api, "/v1/shopper-sessions", {"customer_id": customer_id})
    if r.status_code != 201:
        return RedirectResponse("/wallet?error=sign-in+failed", status_code=303)
    response = RedirectResponse("/wallet", status_code=303)
    response.set_cookie(
        WALLET_COOKIE,
        r.json()["token"],
        httponly=True,
        samesite="lax",
        path="/wallet",
        secure=cookie_secure(request),
    )
    return response


@router.post("/wallet/logout")
def wallet_logout(
    request: Request, csrf_token: str | None = Form(None, max_length=100)
) -> Response:
    verify_csrf(request, csrf_token)
    response = RedirectResponse("/wallet", status_code=303)
    response.delete_cookie(WALLET_COOKIE, path="/wallet")
    return response


@router.post("/wallet/repay")
def wallet_repay(
    request: Request,
    account_id: int = Form(..., ge=1, le=ID_MAX),
    amount_yuan: str = Form(..., max_length=20),
    pay_key: str = Form(..., pattern=r"^[0-9a-f]{24}$"),
    csrf_token: str | None = Form(None, max_length=100),
) -> Response:
    verify_csrf(request, csrf_token)
    token = request.cookies.get(WALLET_COOKIE)
    amount_fen = parse_yuan(amount_yuan)
    if not token:
        return RedirectResponse("/wallet", status_code=303)
    if amount_fen is None:
        return RedirectResponse("/wallet?error=enter+an+amount+like+123.45", status_code=303)
    with _api(request, token) as api:
        # one key per rendered form: submitting the same form twice pays once
        r = _post(
            api, f"/v1/me/accounts/{account_id}/repayments", {"amount_fen": amount_fen}, pay_key
        )
    if r.status_code != 201:
        return RedirectResponse(f"/wallet?error={quote_plus(_problem(r)[:150])}", status_code=303)
    return RedirectResponse(f"/wallet?paid_fen={r.json()['amount_fen']}", status_code=303)
