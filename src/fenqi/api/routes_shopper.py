"""Shopper API (the wallet): accounts, plans, statements, ledger history, repay, early payoff,
turning purchases into installments. A shopper sees only their own accounts, and a session a
shop minted shows only that shop's purchases (`fenqi.credit.shop_scope`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from fenqi.api import schemas as s
from fenqi.api.deps import (
    Id,
    ShopperPrincipal,
    decode_cursor,
    get_ctx,
    idempotency_key,
    idempotent,
    shopper,
)
from fenqi.api.problems import PROBLEM_RESPONSES, ApiError
from fenqi.api.views import plan_quote
from fenqi.context import Context
from fenqi.credit import conversion, payoff, shop_scope, views
from fenqi.credit import service as credit
from fenqi.credit.credit_balance import pay_back_credit_balance
from fenqi.credit.plans import PlanOffer
from fenqi.webhooks.outbox import EventType, enqueue

router = APIRouter(prefix="/v1/me", tags=["shopper"], responses=PROBLEM_RESPONSES)


def _own(conn: Connection, who: ShopperPrincipal, account_id: Id) -> dict[str, Any]:
    account = credit.get_account(conn, account_id)
    if account["customer_ref"] != str(who.customer_id):
        raise ApiError(f"credit account {account_id} not found", code="not_found", http_status=404)
    return account


def _shop_plans(conn: Connection, who: ShopperPrincipal, account_id: int) -> set[int] | None:
    """The plans this session may see and act on: those of its shop (None: no shop scope)."""
    if who.merchant_id is None:
        return None
    return shop_scope.shop_plan_ids(conn, account_id, who.merchant_id)


def _own_plans(
    conn: Connection, who: ShopperPrincipal, account_id: int, plan_ids: list[int]
) -> None:
    allowed = _shop_plans(conn, who, account_id)
    for plan_id in plan_ids:
        if allowed is not None and plan_id not in allowed:
            raise ApiError(f"plan {plan_id} not found", code="not_found", http_status=404)


def _notify(
    conn: Connection, ctx: Context, who: ShopperPrincipal, event: str, data: dict[str, Any]
) -> None:
    if who.merchant_id:  # the shop whose session this is hears about it
        enqueue(conn, ctx.clock, who.merchant_id, event, data)


@router.get("/accounts", response_model=s.AccountPage)
def accounts(
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    order: Literal["desc", "asc"] = Query(
        "desc", description="`desc`: newest first (the default); `asc`: oldest first."
    ),
    who: ShopperPrincipal = Depends(shopper),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The shopper's credit accounts, in the paginated shape of every list."""
    after = decode_cursor(cursor)
    with ctx.engine.connect() as conn:
        ids = views.customer_account_ids(
            conn, who.customer_id, limit, after, newest_first=order == "desc"
        )
        items = [credit.account_summary(conn, i, ctx.clock.today()) for i in ids]
    from fenqi.api.deps import page

    return page(items, limit, id_key="credit_account_id")


@router.get("/accounts/{account_id}", response_model=s.AccountOut)
def account(
    account_id: Id, who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Limit, available, owed, next due date and amount."""
    with ctx.engine.begin() as conn:
        _own(conn, who, account_id)
        return credit.account_summary(conn, account_id, ctx.clock.today())


@router.get("/accounts/{account_id}/plans", response_model=list[s.PlanOut])
def plans(
    account_id: Id, who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        _own(conn, who, account_id)
        items = views.account_plans(conn, account_id)
        allowed = _shop_plans(conn, who, account_id)
        return items if allowed is None else shop_scope.plans_for_shop(items, allowed)


@router.get("/accounts/{account_id}/statements", response_model=list[s.StatementOut])
def statements(
    account_id: Id, who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        _own(conn, who, account_id)
        items = views.statements(conn, account_id)
        allowed = _shop_plans(conn, who, account_id)
        return items if allowed is None else shop_scope.statements_for_shop(items, allowed)


@router.get("/accounts/{account_id}/ledger")
def ledger(
    account_id: Id,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    who: ShopperPrincipal = Depends(shopper),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The account's ledger postings, oldest first (cursor pagination)."""
    with ctx.engine.connect() as conn:
        _own(conn, who, account_id)
        if who.merchant_id is None:
            items = views.ledger_lines(conn, account_id, limit, decode_cursor(cursor))
        else:
            items = shop_scope.ledger_lines_for_shop(
                conn, account_id, who.merchant_id, limit, decode_cursor(cursor)
            )
    from fenqi.api.deps import page

    return page(items, limit, id_key="posting_id")


@router.post("/accounts/{account_id}/repayments", status_code=201, response_model=s.RepaymentOut)
def repay(
    account_id: Id,
    body: s.RepaymentIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Pay any amount; the product's allocation order decides where each fen goes."""

    def work(conn: Connection) -> tuple[int, Any]:
        product = ctx.product(_own(conn, who, account_id)["product"])
        result = credit.repay(
            conn,
            ctx.clock,
            product,
            account_id,
            body.amount_fen,
            f"customer:{who.customer_id}:{key}",
        )
        out = {
            "repayment_id": result.repayment_id,
            "amount_fen": result.amount_fen,
            "by_kind_fen": result.by_kind_fen,
            "to_credit_balance_fen": result.to_credit_balance_fen,
        }
        _notify(
            conn,
            ctx,
            who,
            EventType.REPAYMENT_RECEIVED,
            {"credit_account_id": account_id, "repayment": out},
        )
        return 201, out

    return idempotent(
        ctx,
        f"customer:{who.customer_id}",
        key,
        f"POST /v1/me/accounts/{account_id}/repayments",
        body,
        work,
    )


@router.post(
    "/accounts/{account_id}/credit-balance/payouts",
    status_code=201,
    response_model=s.CreditPayoutOut,
)
def pay_back_credit(
    account_id: Id,
    body: s.CreditPayoutIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Pay the account's credit balance (or `amount_fen` of it) back to the shopper."""

    def work(conn: Connection) -> tuple[int, Any]:
        account = _own(conn, who, account_id)
        done = pay_back_credit_balance(
            conn, ctx.clock, account_id, body.amount_fen, f"customer:{who.customer_id}:{key}"
        )
        return 201, {
            "credit_account_id": account_id,
            "currency": account["currency"],
            "amount_fen": done.amount_fen,
            "credit_balance_fen": done.credit_balance_fen,
        }

    return idempotent(
        ctx,
        f"customer:{who.customer_id}",
        key,
        f"POST /v1/me/accounts/{account_id}/credit-balance/payouts",
        body,
        work,
    )


@router.post("/accounts/{account_id}/plans/{plan_id}/payoff-quote", response_model=s.PayoffOut)
def payoff_quote(
    account_id: Id,
    plan_id: Id,
    who: ShopperPrincipal = Depends(shopper),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """What paying this plan off today costs (what is waived is shown too). Read-only: no
    Idempotency-Key needed."""

    def work(conn: Connection) -> tuple[int, Any]:
        product = ctx.product(_own(conn, who, account_id)["product"])
        _own_plans(conn, who, account_id, [plan_id])
        return 200, payoff.quote_payoff(
            conn, product, account_id, plan_id, ctx.clock.today()
        ).to_dict()

    with ctx.engine.connect() as conn:
        status, result = work(conn)
    return JSONResponse(result, status_code=status)


@router.post(
    "/accounts/{account_id}/plans/{plan_id}/payoff", status_code=201, response_model=s.PayoffOut
)
def pay_off(
    account_id: Id,
    plan_id: Id,
    body: s.PayoffIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Pay one plan off early; `amount_fen` must equal today's payoff quote."""

    def work(conn: Connection) -> tuple[int, Any]:
        product = ctx.product(_own(conn, who, account_id)["product"])
        _own_plans(conn, who, account_id, [plan_id])
        q = payoff.pay_off(
            conn,
            ctx.clock,
            product,
            account_id,
            plan_id,
            body.amount_fen,
            f"customer:{who.customer_id}:{key}",
        )
        _notify(
            conn,
            ctx,
            who,
            EventType.PLAN_PAID_OFF,
            {"credit_account_id": account_id, "payoff": q.to_dict()},
        )
        return 201, q.to_dict()

    return idempotent(
        ctx, f"customer:{who.customer_id}", key, f"POST payoff {account_id}/{plan_id}", body, work
    )


@router.post("/accounts/{account_id}/conversions/quote", response_model=s.ConversionOut)
def conversion_quote(
    account_id: Id,
    body: s.ConversionIn,
    who: ShopperPrincipal = Depends(shopper),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Quote turning interest-free-cycle purchases (one, or all on a statement) into
    installments (交易分期 / 账单分期). Read-only: no Idempotency-Key needed."""

    def work(conn: Connection) -> tuple[int, Any]:
        account = _own(conn, who, account_id)
        _own_plans(conn, who, account_id, body.plan_ids)
        q = conversion.conversion_quote(
            conn,
            ctx.product(account["product"]),
            account_id,
            body.plan_ids,
            body.terms,
            ctx.clock.today(),
            ctx.settings.apr_cap_bp,
            account["tier"],
        )
        return 200, {"plan_id": None, "quote": plan_quote(PlanOffer("installments", q))}

    with ctx.engine.connect() as conn:
        status, result = work(conn)
    return JSONResponse(result, status_code=status)


@router.post("/accounts/{account_id}/conversions", status_code=201, response_model=s.ConversionOut)
def convert(
    account_id: Id,
    body: s.ConversionIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    def work(conn: Connection) -> tuple[int, Any]:
        account = _own(conn, who, account_id)
        _own_plans(conn, who, account_id, body.plan_ids)
        product = ctx.product(account["product"])
        q = conversion.conversion_quote(
            conn,
            product,
            account_id,
            body.plan_ids,
            body.terms,
            ctx.clock.today(),
            ctx.settings.apr_cap_bp,
            account["tier"],
        )
        plan_id = conversion.convert(
            conn,
            ctx.clock,
            product,
            account_id,
            body.plan_ids,
            body.terms,
            ctx.settings.apr_cap_bp,
            f"customer:{who.customer_id}:{key}",
            account["tier"],
        )
        return 201, {"plan_id": plan_id, "quote": plan_quote(PlanOffer("installments", q))}

    return idempotent(
        ctx, f"customer:{who.customer_id}", key, f"POST conversions {account_id}", body, work
    )
