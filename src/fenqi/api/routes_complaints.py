"""The complaints register for staff (issue 18): `/v1/ops/complaints`, permission
`compliance.cases`. Changes are idempotent (Idempotency-Key) and audited; a refusal is audited
and answered as problem+json (fenqi.compliance.complaints)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import Connection

from fenqi.api.deps import Id, allowed, get_ctx, idempotency_key, idempotent, staff_scope
from fenqi.api.problems import PROBLEM_RESPONSES, problem_body
from fenqi.api.schemas import Body
from fenqi.api.text import Paragraph
from fenqi.compliance import complaints as cp
from fenqi.context import Context
from fenqi.errors import FenqiError
from fenqi.privacy.staff import Permission, StaffUser

router = APIRouter(prefix="/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
P = Permission.COMPLIANCE_CASES


class ComplaintIn(Body):
    customer_id: int = Field(ge=1)
    channel: Literal[cp.CHANNELS]  # type: ignore[valid-type]
    category: Literal[cp.CATEGORIES]  # type: ignore[valid-type]
    text: Paragraph = Field(min_length=1, max_length=4000)
    due_on: date | None = Field(None, description="Answer date; default 15 days from today.")


class CloseIn(Body):
    outcome: Literal[cp.OUTCOMES]  # type: ignore[valid-type]
    note: Paragraph = Field(min_length=1, max_length=4000)


def _answer(result: dict[str, Any] | FenqiError, ok: int) -> tuple[int, Any]:
    if isinstance(result, FenqiError):
        safe = {k: v for k, v in result.detail.items() if isinstance(v, str | int | float | bool)}
        return result.http_status, problem_body(
            result.code, result.message, status=result.http_status, **safe
        )
    return ok, result


@router.post("/complaints", status_code=201)
def open_complaint(
    body: ComplaintIn,
    user: StaffUser = Depends(allowed(P)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Record a complaint a customer made (by phone, letter, e-mail, in the app...)."""
    actor = ("staff", str(user.id))

    def work(conn: Connection) -> tuple[int, Any]:
        result = cp.attempt(
            conn,
            ctx.clock,
            actor,
            ("customer", body.customer_id),
            lambda: cp.open_complaint(
                conn,
                ctx.clock,
                actor,
                customer_id=body.customer_id,
                channel=body.channel,
                category=body.category,
                text=body.text,
                due_on=body.due_on,
            ),
        )
        return _answer(result, 201)

    return idempotent(
        ctx, staff_scope(user.id, "complaints"), key, "POST /v1/ops/complaints", body, work
    )


@router.post("/complaints/{complaint_id}/close")
def close_complaint(
    complaint_id: Id,
    body: CloseIn,
    user: StaffUser = Depends(allowed(P)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Close a complaint with its outcome and the answer given to the customer."""
    actor = ("staff", str(user.id))

    def work(conn: Connection) -> tuple[int, Any]:
        result = cp.attempt(
            conn,
            ctx.clock,
            actor,
            ("complaint", complaint_id),
            lambda: cp.close_complaint(
                conn, ctx.clock, actor, complaint_id, body.outcome, body.note
            ),
        )
        return _answer(result, 200)

    return idempotent(
        ctx,
        staff_scope(user.id, f"complaint:{complaint_id}"),
        key,
        f"POST /v1/ops/complaints/{complaint_id}/close",
        body,
        work,
    )


@router.get("/complaints")
def list_complaints(
    status: Literal["open", "closed"] | None = None,
    customer_id: int | None = Query(None, ge=1),
    overdue: bool = Query(False, description="Only open complaints past their answer date."),
    user: StaffUser = Depends(allowed(P)),
    ctx: Context = Depends(get_ctx),
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return cp.list_complaints(
            conn,
            status=status,
            customer_id=customer_id,
            overdue_on=ctx.clock.today() if overdue else None,
        )


@router.get("/complaints/{complaint_id}")
def get_complaint(
    complaint_id: Id, user: StaffUser = Depends(allowed(P)), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        return cp.get_complaint(conn, complaint_id)
