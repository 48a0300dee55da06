"""Operations API for staff: sign in, find shoppers (masked; revealing needs a reason), freeze
and unfreeze, change limits, reverse ledger entries, onboard shops and pay them, webhooks,
audit log. Every action is done by a named staff user whose role grants it, and is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from fenqi.api import schemas as s
from fenqi.api.deps import (
    Id,
    allowed,
    decode_cursor,
    get_ctx,
    idempotency_key,
    idempotent,
    page,
    staff_client_id,
    staff_scope,
)
from fenqi.api.problems import PROBLEM_RESPONSES, error_response
from fenqi.api.text import IdNumberText, Line, PhoneText
from fenqi.context import Context
from fenqi.credit import customers, operations
from fenqi.credit import service as credit
from fenqi.credit.repayments import account_repayments
from fenqi.privacy.audit import list_entries, record
from fenqi.privacy.logins import LoginThrottled, sign_in
from fenqi.privacy.staff import Permission, StaffUser
from fenqi.webhooks.outbox import DeliveryStatus, list_deliveries

router = APIRouter(prefix="/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
P = Permission


@router.post(
    "/sessions",
    status_code=201,
    response_model=s.SessionOut,
    responses={429: {"description": "Too many failed sign-ins (Retry-After)"}},
)
def login(
    body: s.StaffLoginIn, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any] | JSONResponse:
    """Staff sign in with username and password (argon2); returns a bearer token.

    Not idempotent by key: a sign-in creates a new session each time and nothing else.
    Failures are audited and throttled per account and per address (429 with Retry-After).
    """
    address = request.client.host if request.client else "unknown"
    try:
        user = sign_in(ctx, body.username, body.password, address, "api")
    except LoginThrottled as exc:
        response = error_response(exc)
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    with ctx.engine.begin() as conn:
        token, expires = customers.open_session(
            conn, ctx.clock, "staff", str(user.id), None, hours=8
        )
        record(conn, ctx.clock, actor_kind="staff", actor_id=user.id, action="staff.login")
    return {"token": token, "expires_at": expires.isoformat()}


@router.get("/customers")
def find_customers(
    phone: PhoneText | None = Query(None, max_length=20),
    id_number: IdNumberText | None = Query(None, max_length=18),
    user: StaffUser = Depends(allowed(P.CUSTOMER_READ_MASKED)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Find shoppers by phone or ID number (matched by keyed hash); results are masked."""
    with ctx.engine.begin() as conn:
        items = operations.find_customers(
            conn, ctx.clock, ctx.keys, user.id, phone=phone, id_number=id_number
        )
        return {"items": items}


@router.post("/customers/{customer_id}/reveal")
def reveal(
    customer_id: Id,
    body: s.ReasonIn,
    user: StaffUser = Depends(allowed(P.CUSTOMER_REVEAL_PII)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """The unmasked identity; needs a reason, written to the audit log."""

    def work(conn: Connection) -> tuple[int, Any]:
        plain = operations.reveal_customer(
            conn, ctx.clock, ctx.keys, user.id, customer_id, body.reason
        )
        return 200, {"id": customer_id, **plain}

    return idempotent(
        ctx,
        staff_scope(user.id, f"customer:{customer_id}"),
        key,
        f"POST reveal {customer_id}",
        body,
        work,
        sensitive=True,
    )


def _status_route(action: str) -> Any:
    def change(
        account_id: Id,
        body: s.ReasonIn,
        user: StaffUser = Depends(allowed(P.ACCOUNT_FREEZE)),
        key: str = Depends(idempotency_key),
        ctx: Context = Depends(get_ctx),
    ) -> JSONResponse:
        def work(conn: Connection) -> tuple[int, Any]:
            status = operations.change_account_status(
                conn, ctx.clock, user.id, account_id, action, body.reason
            )
            return 200, credit.account_summary(conn, account_id, ctx.clock.today()) | {
                "status": status
            }

        return idempotent(
            ctx,
            staff_scope(user.id, f"credit_account:{account_id}"),
            key,
            f"POST {action} {account_id}",
            body,
            work,
        )

    change.__name__ = f"{action}_account"
    change.__doc__ = f"{action.capitalize()} a credit account, with a reason (audited)."
    return change


for _action in ("freeze", "unfreeze", "close"):
    router.post(f"/accounts/{{account_id}}/{_action}", response_model=s.AccountOut)(
        _status_route(_action)
    )


@router.post("/accounts/{account_id}/limit", response_model=s.AccountOut)
def change_limit(
    account_id: Id,
    body: s.LimitIn,
    user: StaffUser = Depends(allowed(P.ACCOUNT_CHANGE_LIMIT)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Raise or lower a limit, with a reason (audited)."""

    def work(conn: Connection) -> tuple[int, Any]:
        operations.change_account_limit(
            conn, ctx.clock, ctx.product, user.id, account_id, body.limit_fen, body.reason
        )
        return 200, credit.account_summary(conn, account_id, ctx.clock.today())

    return idempotent(
        ctx,
        staff_scope(user.id, f"credit_account:{account_id}"),
        key,
        f"POST limit {account_id}",
        body,
        work,
    )


@router.post("/accounts/{account_id}/hardship", status_code=201)
def hardship(
    account_id: Id,
    body: s.HardshipIn,
    user: StaffUser = Depends(allowed(P.HARDSHIP_APPROVE)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Restructure a delinquent balance into a new plan (re-aged), approved by this user."""

    def work(conn: Connection) -> tuple[int, Any]:
        plan_id = operations.hardship_plan(
            conn,
            ctx.clock,
            ctx.product,
            user.id,
            account_id,
            body.terms,
            waive_charges=body.waive_charges,
            reason=body.reason,
            client_id=staff_client_id(user.id, f"hardship:{account_id}", key),
        )
        return 201, {"plan_id": plan_id, "credit_account_id": account_id, "terms": body.terms}

    return idempotent(
        ctx,
        staff_scope(user.id, f"credit_account:{account_id}"),
        key,
        f"POST hardship {account_id}",
        body,
        work,
    )


@router.post("/ledger/entries/{entry_id}/reverse", status_code=201)
def reverse(
    entry_id: Id,
    body: s.ReasonIn,
    user: StaffUser = Depends(allowed(P.LEDGER_REVERSE)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Post the mirror image of a posted entry, with a reason (audited)."""

    def work(conn: Connection) -> tuple[int, Any]:
        result = operations.reverse_ledger_entry(
            conn,
            ctx.clock,
            user.id,
            entry_id,
            body.reason,
            staff_client_id(user.id, f"ledger_entry:{entry_id}", key),
        )
        return 201, {"entry_id": result.entry_id, "reverses_entry_id": entry_id}

    return idempotent(
        ctx,
        staff_scope(user.id, f"ledger_entry:{entry_id}"),
        key,
        f"POST reverse {entry_id}",
        body,
        work,
    )


@router.get("/accounts/{account_id}/repayments")
def list_repayments(
    account_id: Id,
    user: StaffUser = Depends(allowed(P.CUSTOMER_READ_MASKED)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        return {"items": account_repayments(conn, account_id)}


@router.post("/accounts/{account_id}/repayments/{repayment_id}/reverse", status_code=201)
def reverse_a_repayment(
    account_id: Id,
    repayment_id: Id,
    body: s.ReasonIn,
    user: StaffUser = Depends(allowed(P.LEDGER_REVERSE)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """A repayment that bounced: what it paid is owed again where it was paid (audited)."""

    def work(conn: Connection) -> tuple[int, Any]:
        entry = operations.reverse_repayment(
            conn,
            ctx.clock,
            user.id,
            account_id,
            repayment_id,
            body.reason,
            staff_client_id(user.id, f"repayment:{repayment_id}", key),
        )
        return 201, {"repayment_id": repayment_id, "reversal_entry_id": entry}

    return idempotent(
        ctx,
        staff_scope(user.id, f"repayment:{repayment_id}"),
        key,
        f"POST reverse repayment {repayment_id}",
        body,
        work,
    )


@router.post("/merchants", status_code=201, response_model=s.MerchantOut)
def create_merchant(
    body: s.MerchantIn,
    user: StaffUser = Depends(allowed(P.STAFF_MANAGE)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Onboard a shop: its API key and webhook secret are shown in this response only."""

    def work(conn: Connection) -> tuple[int, Any]:
        out = operations.create_merchant(
            conn,
            ctx.clock,
            ctx.keys,
            user.id,
            body.id,
            body.name,
            body.category,
            body.webhook_url,
            allow_private=ctx.settings.webhook_allow_private_networks,
            currency=body.currency,
        )
        return 201, out

    return idempotent(
        ctx,
        staff_scope(user.id, f"merchant:{body.id}"),
        key,
        "POST /v1/ops/merchants",
        body,
        work,
        sensitive=True,  # the shop's API key and webhook secret: stored sealed
    )


@router.post("/merchants/{merchant_id}/payouts", status_code=201)
def payout(
    merchant_id: Annotated[Line, Path(min_length=1, max_length=32)],
    currency: str = Query("CNY", pattern="^[A-Z]{3}$"),
    user: StaffUser = Depends(allowed(P.BATCH_RUN)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Pay a shop what it is owed (its merchant payable), audited."""

    def work(conn: Connection) -> tuple[int, Any]:
        paid = operations.pay_out_merchant(
            conn,
            ctx.clock,
            user.id,
            merchant_id,
            currency,
            staff_client_id(user.id, f"payout:{merchant_id}:{currency}", key),
        )
        return 201, {"merchant_id": merchant_id, "currency": currency, "paid_fen": paid}

    return idempotent(
        ctx,
        staff_scope(user.id, f"payout:{merchant_id}:{currency}"),
        key,
        f"POST payout {merchant_id} {currency}",
        None,
        work,
    )


@router.get("/webhooks/deliveries")
def deliveries(
    status: DeliveryStatus | None = None,
    merchant_id: Line | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    user: StaffUser = Depends(allowed(P.WEBHOOKS_REPLAY)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        items = [
            d.to_dict()
            for d in list_deliveries(
                conn,
                merchant_id=merchant_id,
                status=status,
                limit=limit,
                after_id=decode_cursor(cursor),
            )
        ]
    return page(items, limit)


@router.post("/webhooks/events/{event_id}/replay", status_code=201)
def replay_event(
    event_id: Annotated[Line, Path(min_length=1, max_length=40)],
    user: StaffUser = Depends(allowed(P.WEBHOOKS_REPLAY)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    def work(conn: Connection) -> tuple[int, Any]:
        delivery_id = operations.replay_webhook_event(conn, ctx.clock, user.id, event_id)
        return 201, {"event_id": event_id, "delivery_id": delivery_id}

    return idempotent(
        ctx,
        staff_scope(user.id, f"webhook_event:{event_id}"),
        key,
        f"POST replay {event_id}",
        None,
        work,
    )


@router.get("/audit")
def audit(
    target_kind: Line | None = Query(None, max_length=32),
    target_id: Line | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    user: StaffUser = Depends(allowed(P.AUDIT_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        items = [
            e.to_dict()
            for e in list_entries(
                conn,
                target_kind=target_kind,
                target_id=target_id,
                limit=limit,
                after_id=decode_cursor(cursor),
            )
        ]
    return page(items, limit)
