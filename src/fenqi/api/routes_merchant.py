"""Merchant API: applications, shopper sessions, quotes, orders (authorize, capture, void,
refund), settlement. A shop authenticates with its API key and sees only its own orders and
the shoppers who dealt with it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, func, select

from fenqi.api import schemas as s
from fenqi.api.deps import (
    Id,
    MerchantPrincipal,
    ShopKey,
    decode_cursor,
    get_ctx,
    idempotency_key,
    idempotent,
    merchant,
    page,
    shop_idempotent,
    shop_key,
)
from fenqi.api.problems import PROBLEM_RESPONSES, ApiError
from fenqi.api.views import plan_quote
from fenqi.context import Context
from fenqi.credit import checkout, customers
from fenqi.credit import service as credit
from fenqi.credit.applications import apply
from fenqi.credit.currency import check_order_currency, check_product_currency
from fenqi.credit.merchants import merchant_currency
from fenqi.credit.plans import offers
from fenqi.products.model import ProductKind
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.parties import applications
from fenqi.store.times import iso

router = APIRouter(prefix="/v1", tags=["merchant"], responses=PROBLEM_RESPONSES)


def _linked_account(
    conn: Connection, m: MerchantPrincipal, credit_account_id: int, *, lock: bool = False
) -> dict[str, Any]:
    account = credit.get_account(conn, credit_account_id, for_update=lock)
    if not customers.is_linked(conn, int(account["customer_ref"]), m.id):
        raise ApiError(
            f"credit account {credit_account_id} not found", code="not_found", http_status=404
        )
    return account


@router.post("/applications", status_code=201, response_model=s.ApplicationOut)
def create_application(
    body: s.ApplicationIn,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """A shopper applies for credit through the shop; the decision flow decides. The product
    must lend in the shop's currency (422 `currency_mismatch`)."""

    def work(conn: Connection) -> tuple[int, Any]:
        product = ctx.product(body.product)
        check_product_currency(product.name, product.currency, merchant_currency(conn, m.id))
        return 201, apply(conn, ctx, m.id, body.to_application())

    return idempotent(ctx, f"merchant:{m.id}", key, "POST /v1/applications", body, work)


@router.get("/applications/{application_id}", response_model=s.ApplicationOut)
def get_application(
    application_id: Id, m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """An application this shop made, with its decision (404 for any other)."""
    with ctx.engine.connect() as conn:
        row = (
            conn.execute(select(applications).where(applications.c.id == application_id))
            .mappings()
            .first()
        )
        if row is None or row["merchant_id"] != m.id:
            raise ApiError(
                f"application {application_id} not found", code="not_found", http_status=404
            )
        approved = row["outcome"] == "approved"
        account: str | None = None
        limit_fen: int | None = None
        if approved and row["credit_account_id"] is not None:
            # the application that opened an account is the first approved one naming it
            first = conn.execute(
                select(func.min(applications.c.id)).where(
                    applications.c.credit_account_id == row["credit_account_id"],
                    applications.c.outcome == "approved",
                )
            ).scalar_one()
            account = "opened" if first == row["id"] else "existing"
            limit_fen = conn.execute(
                select(credit_accounts.c.limit_fen).where(
                    credit_accounts.c.id == row["credit_account_id"]
                )
            ).scalar_one()
    return {
        "application_id": row["id"],
        "created_at": iso(row["created_at"]),
        "customer_id": row["customer_id"],
        "outcome": row["outcome"],
        "credit_account_id": row["credit_account_id"] if approved else None,
        "product": row["product"],
        "tier": row["tier"],
        "account": account,
        "limit_fen": limit_fen,  # the account's limit now
        "decision_limit_fen": row["limit_fen"] if approved else None,
        "reasons": json.loads(row["reasons"]),
        "decision_id": row["decision_id"],
    }


@router.get("/products", response_model=s.ProductList)
def products(m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)) -> Any:
    """The products this shop offers: those in the shop's currency, with their plans."""
    with ctx.engine.connect() as conn:
        currency = merchant_currency(conn, m.id)
    items = [
        {
            "name": p.name,
            "display_name": p.display_name,
            "kind": p.kind.value,
            "currency": p.currency,
            "limit_min_fen": p.limits.min_fen,
            "limit_max_fen": p.limits.max_fen,
            "interest_free_cycle": p.kind is ProductKind.REVOLVING,
            "max_interest_free_days": p.billing.max_interest_free_days,
            "installment_terms": [
                {
                    "count": t.count,
                    "total_fee_bp": t.total_fee_bp,
                    "annual_rate_bp": t.annual_rate_bp,
                }
                for t in p.installments.terms
            ],
            "tiers": [
                {
                    "name": t.name,
                    "limit_max_fen": t.limit_max_fen,
                    "fee_discount_bp": t.fee_discount_bp,
                }
                for t in p.tiers
            ],
        }
        for _, p in sorted(ctx.catalog.items())
        if p.currency == currency
    ]
    return {"items": items, "next_cursor": None}


@router.post("/shopper-sessions", status_code=201, response_model=s.SessionOut)
def create_shopper_session(
    body: s.ShopperSessionIn,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """A token for a shopper who dealt with this shop, for the shop's wallet pages."""

    def work(conn: Connection) -> tuple[int, Any]:
        if not customers.is_linked(conn, body.customer_id, m.id):
            raise ApiError(
                f"customer {body.customer_id} not found", code="not_found", http_status=404
            )
        token, expires = customers.open_session(
            conn, ctx.clock, "customer", str(body.customer_id), m.id
        )
        return 201, {"token": token, "expires_at": expires.isoformat()}

    return idempotent(
        ctx, f"merchant:{m.id}", key, "POST /v1/shopper-sessions", body, work, sensitive=True
    )


@router.post("/quotes", status_code=200, response_model=s.QuoteOut)
def quote(
    body: s.QuoteIn,
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """The plans on offer for an amount: per-period amount, fees, first due date, and the
    annualized rate (IRR) to disclose. Read-only: no Idempotency-Key needed."""

    def work(conn: Connection) -> tuple[int, Any]:
        account = _linked_account(conn, m, body.credit_account_id)
        shop_currency = merchant_currency(conn, m.id)
        check_order_currency(shop_currency, shop_currency, account["currency"])
        product = ctx.product(account["product"])
        summary = credit.account_summary(conn, body.credit_account_id, ctx.clock.today())
        found = offers(
            product,
            body.amount_fen,
            ctx.clock.today(),
            cap_bp=ctx.settings.apr_cap_bp,
            tier=account["tier"],
        )
        return 200, {
            "credit_account_id": body.credit_account_id,
            "currency": product.currency,
            "amount_fen": body.amount_fen,
            "available_fen": summary["available_fen"],
            "plans": [plan_quote(o) for o in found],
        }

    with ctx.engine.connect() as conn:
        status, result = work(conn)
    return JSONResponse(result, status_code=status)


@router.post(
    "/orders",
    status_code=201,
    response_model=s.OrderOut,
    responses={402: PROBLEM_RESPONSES[409] | {"description": "Declined"}},
)
def authorize(
    body: s.OrderIn,
    shop: ShopKey = Depends(shop_key),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Authorize: checkout risk, then a hold on available credit for the chosen plan; with
    `capture`, a sale: authorized and captured at once."""

    def work(conn: Connection, m: MerchantPrincipal) -> tuple[int, Any]:
        # locked: the account's row is the first lock of every change to it (architecture.md)
        account = _linked_account(conn, m, body.credit_account_id, lock=True)
        # refused before checkout risk counts anything
        check_order_currency(body.currency, m.currency, account["currency"])
        return 201, checkout.authorize_order(
            conn,
            ctx.clock,
            ctx.product(account["product"]),
            merchant_id=m.id,
            credit_account_id=body.credit_account_id,
            amount_fen=body.amount_fen,
            terms=body.terms,
            merchant_order_ref=body.merchant_order_ref,
            client_id=f"{m.id}:{key}",
            cap_bp=ctx.settings.apr_cap_bp,
            hold_seconds=ctx.settings.pending_hold_seconds,
            risk=ctx.checkout_risk,
            risk_facts={
                "transaction_ref": f"{m.id}:{key}",
                "device_id": body.device_id,
                "merchant_category": m.category,
            },
            step_up_verified=body.step_up_verified,
            capture=body.capture,
            currency=body.currency,
            account=account,
        )

    return shop_idempotent(ctx, shop, key, "POST /v1/orders", body, work)


OrderStatus = Literal[
    "authorized", "partially_captured", "captured", "voided", "expired", "refunded"
]


@router.get("/orders", response_model=s.OrderPage)
def list_orders(
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    order: Literal["desc", "asc"] = Query(
        "desc", description="`desc`: newest first (the default); `asc`: oldest first."
    ),
    status: OrderStatus | None = None,
    merchant_order_ref: str | None = Query(None, min_length=1, max_length=64),
    credit_account_id: int | None = Query(None, ge=1, le=2**53 - 1),
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The shop's orders, newest first unless `order=asc`, each with every plan; filters narrow
    by status, the shop's own reference and the credit account."""
    with ctx.engine.connect() as conn:
        items = checkout.list_orders(
            conn,
            m.id,
            limit=limit,
            after_id=decode_cursor(cursor),
            newest_first=order == "desc",
            status=status,
            merchant_order_ref=merchant_order_ref,
            credit_account_id=credit_account_id,
        )
    return page(items, limit)


@router.get("/orders/by-reference/{merchant_order_ref}", response_model=s.OrderOut)
def get_order_by_reference(
    merchant_order_ref: str = Path(min_length=1, max_length=64),
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The shop's order by its own reference (`merchant_order_ref`), as `GET /v1/orders/{id}`."""
    with ctx.engine.connect() as conn:
        return checkout.order_by_reference(conn, m.id, merchant_order_ref)


@router.get("/orders/{order_id}", response_model=s.OrderOut)
def get_order(
    order_id: Id, m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """An order with every plan it booked (one per capture); `plan_id` is the latest's."""
    with ctx.engine.connect() as conn:
        return checkout.get_order(conn, m.id, order_id)


@router.get("/orders/{order_id}/captures", response_model=s.CaptureList)
def list_captures(
    order_id: Id, m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The order's captures in order (an order has at most a few: one page)."""
    with ctx.engine.connect() as conn:
        return {"items": checkout.order_captures_of(conn, m.id, order_id), "next_cursor": None}


@router.get("/orders/{order_id}/captures/{capture_id}", response_model=s.CaptureOut)
def get_capture(
    order_id: Id,
    capture_id: Id,
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        return _one_of(checkout.order_captures_of(conn, m.id, order_id), capture_id, "capture")


@router.get("/orders/{order_id}/refunds", response_model=s.RefundList)
def list_refunds(
    order_id: Id, m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The order's refunds, oldest first."""
    with ctx.engine.connect() as conn:
        return {"items": checkout.order_refunds_of(conn, m.id, order_id), "next_cursor": None}


@router.get("/orders/{order_id}/refunds/{refund_id}", response_model=s.RefundOut)
def get_refund(
    order_id: Id,
    refund_id: Id,
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        return _one_of(checkout.order_refunds_of(conn, m.id, order_id), refund_id, "refund")


def _one_of(items: list[dict[str, Any]], item_id: int, kind: str) -> dict[str, Any]:
    """The item of an order's captures or refunds with this id, or 404."""
    for item in items:
        if item["id"] == item_id:
            return item
    raise ApiError(f"{kind} {item_id} not found", code="not_found", http_status=404)


def _product_of_order(conn: Connection, ctx: Context, m: MerchantPrincipal, order_id: Id) -> Any:
    order = checkout.get_order(conn, m.id, order_id)
    return ctx.product(credit.get_account(conn, order["credit_account_id"])["product"])


@router.post("/orders/{order_id}/captures", status_code=201, response_model=s.OrderOut)
def capture(
    order_id: Id,
    body: s.CaptureIn,
    shop: ShopKey = Depends(shop_key),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Capture all or part of what is authorized; several partial captures are allowed."""

    def work(conn: Connection, m: MerchantPrincipal) -> tuple[int, Any]:
        return 201, checkout.capture_order(
            conn,
            ctx.clock,
            ctx.product,
            merchant_id=m.id,
            order_id=order_id,
            amount_fen=body.amount_fen,
            final=body.final,
            client_id=f"{m.id}:{key}",
            cap_bp=ctx.settings.apr_cap_bp,
        )

    route = f"POST /v1/orders/{order_id}/captures"
    return shop_idempotent(ctx, shop, key, route, body, work)


@router.post("/orders/{order_id}/void", status_code=200, response_model=s.OrderOut)
def void(
    order_id: Id,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Release what is authorized and not captured."""
    return idempotent(
        ctx,
        f"merchant:{m.id}",
        key,
        f"POST /v1/orders/{order_id}/void",
        None,
        lambda conn: (
            200,
            checkout.void_order(
                conn, ctx.clock, merchant_id=m.id, order_id=order_id, client_id=f"{m.id}:{key}"
            ),
        ),
    )


@router.post("/orders/{order_id}/refunds", status_code=201, response_model=s.OrderOut)
def refund(
    order_id: Id,
    body: s.RefundIn,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Refund all or part of what was captured, by the product's refund rule."""

    def work(conn: Connection) -> tuple[int, Any]:
        product = _product_of_order(conn, ctx, m, order_id)
        return 201, checkout.refund_order(
            conn,
            ctx.clock,
            product,
            merchant_id=m.id,
            order_id=order_id,
            amount_fen=body.amount_fen,
            client_id=f"{m.id}:{key}",
        )

    return idempotent(
        ctx, f"merchant:{m.id}", key, f"POST /v1/orders/{order_id}/refunds", body, work
    )


@router.get("/settlement", response_model=s.SettlementOut)
def settlement(
    currency: str | None = Query(
        None, pattern="^[A-Z]{3}$", description="Default: the currency the shop sells in."
    ),
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """What fenqi owes this shop: captured less refunds less the merchant discount. A read:
    `currency` must be one the catalog's products use (422 `unknown_currency` otherwise), and
    nothing is written."""
    known = sorted({p.currency for p in ctx.catalog.values()})
    if currency is not None and currency not in known:
        raise ApiError(
            f"currency: {currency!r} is not a currency of any product ({', '.join(known)})",
            code="unknown_currency",
            http_status=422,
            field="currency",
        )
    with ctx.engine.connect() as conn:
        chosen = currency or merchant_currency(conn, m.id)
        return checkout.settlement(conn, ctx.clock, m.id, chosen)
