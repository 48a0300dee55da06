"""Compliance API (issue 18): credit-report disputes (异议) and data-subject requests (PIPL),
for the shopper (`/v1/me/...`) and for staff (`/v1/ops/...`, permission `compliance.cases`),
and the regulatory reports (`/v1/ops/compliance/reports/...`, permission `reports.read`).

Every change and every refusal is audited; a refusal is answered as problem+json and kept
(with the idempotency key's stored answer), so nothing a shopper asked for is lost."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import Connection

from fenqi.api.deps import (
    Id,
    ShopperPrincipal,
    allowed,
    get_ctx,
    idempotency_key,
    idempotent,
    shopper,
    staff_scope,
)
from fenqi.api.problems import PROBLEM_RESPONSES, problem_body
from fenqi.api.schemas import Body
from fenqi.api.text import Line, Paragraph
from fenqi.bureau import disputes
from fenqi.bureau.corrections import DisputeError
from fenqi.context import Context
from fenqi.errors import FenqiError
from fenqi.privacy import rights
from fenqi.privacy.audit import record
from fenqi.privacy.consent import ConsentKind, list_consents, record_consent
from fenqi.privacy.staff import Permission, StaffUser

me = APIRouter(prefix="/v1/me", tags=["shopper"], responses=PROBLEM_RESPONSES)
ops = APIRouter(prefix="/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)
P = Permission
Item = Literal[
    "balance", "status", "past_due", "days_past_due", "history", "charge_off", "limit", "other"
]
ConsentName = Literal[
    "bureau_inquiry",
    "bureau_monitoring",
    "shopping_data",
    "marketing",
    "sensitive_data",
    "sharing",
]


class DisputeIn(Body):
    item: Item
    claim: Paragraph = Field(min_length=1, max_length=2000)
    record_as_of: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="The reported record's date; default the latest.",
    )


class FixIn(Body):
    status: Literal["current", "delinquent", "charged_off", "closed"] | None = None
    dpd: int | None = Field(None, ge=0, le=10_000)
    past_due_fen: int | None = Field(None, ge=0, le=10**12)


class ResolveIn(Body):
    outcome: Literal["corrected", "confirmed"]
    note: Paragraph = Field(min_length=1, max_length=2000)
    fix: FixIn | None = Field(
        None, description="Fields the investigation found wrong (corrected only)."
    )


class AccessIn(Body):
    pass


class CorrectionIn(Body):
    field: Literal["phone", "income_band", "name"]
    value: Line = Field(min_length=1, max_length=64)


class WithdrawalIn(Body):
    kind: ConsentName


class ConsentIn(Body):
    kind: ConsentName
    text_version: Line = Field(min_length=1, max_length=32)
    scope: Line = Field("", max_length=255)


def _refused(
    conn: Connection,
    ctx: Context,
    actor: tuple[str, str],
    action: str,
    target: tuple[str, Any],
    exc: FenqiError,
) -> tuple[int, Any]:
    """Audit a refusal in the request's transaction and answer it as problem+json."""
    record(
        conn,
        ctx.clock,
        actor_kind=actor[0],
        actor_id=actor[1],
        action=action,
        target_kind=target[0],
        target_id=target[1],
        reason=exc.message,
        detail={"code": exc.code},
    )
    safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | bool)}
    return exc.http_status, problem_body(exc.code, exc.message, status=exc.http_status, **safe)


def _open_dispute(
    conn: Connection,
    ctx: Context,
    actor: disputes.Actor,
    account_id: int,
    body: DisputeIn,
    customer_id: int | None,
) -> tuple[int, Any]:
    try:
        with conn.begin_nested():
            as_of = date.fromisoformat(body.record_as_of) if body.record_as_of else None
            return 201, disputes.open_dispute(
                conn,
                ctx.clock,
                actor,
                account_id=account_id,
                item=body.item,
                claim=body.claim,
                record_as_of=as_of,
                customer_id=customer_id,
                answer_days=ctx.settings.bureau_dispute_days,
            )
    except (FenqiError, ValueError) as exc:
        err = exc if isinstance(exc, FenqiError) else DisputeError(str(exc))
        return _refused(
            conn,
            ctx,
            (actor.kind, actor.id),
            "bureau.dispute_refused",
            ("credit_account", account_id),
            err,
        )


# -- shopper ------------------------------------------------------------------------------


@me.post("/accounts/{account_id}/disputes", status_code=201)
def shopper_dispute(
    account_id: Id,
    body: DisputeIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Dispute a record fenqi reported to the credit bureau about this account (异议). The
    account is flagged as disputed in the next report; operations answer by `due_on`."""
    actor = disputes.Actor("customer", str(who.customer_id), "api")
    return idempotent(
        ctx,
        f"customer:{who.customer_id}",
        key,
        f"POST /v1/me/accounts/{account_id}/disputes",
        body,
        lambda conn: _open_dispute(conn, ctx, actor, account_id, body, who.customer_id),
    )


@me.get("/disputes")
def shopper_disputes(
    who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    """The shopper's disputes and their outcomes."""
    with ctx.engine.connect() as conn:
        items = disputes.list_disputes(conn, customer_id=who.customer_id)
    for d in items:
        d.pop("evidence", None)
    return items


def _me(who: ShopperPrincipal) -> tuple[str, str, str]:
    return ("customer", str(who.customer_id), "api")


def _rights_call(
    ctx: Context, scope: str, key: str, route: str, body: Body, fn: Any, *, sensitive: bool = False
) -> JSONResponse:
    def work(conn: Connection) -> tuple[int, Any]:
        try:
            answer: tuple[int, Any] = fn(conn)
            return answer
        except rights.Refused as exc:  # recorded and audited by the service: keep it
            return exc.http_status, problem_body(exc.code, exc.message, status=exc.http_status)

    return idempotent(ctx, scope, key, route, body, work, sensitive=sensitive)


def _access(ctx: Context, actor: tuple[str, str, str], customer_id: int) -> Any:
    def fn(conn: Connection) -> tuple[int, Any]:
        req, data = rights.request_access(
            conn,
            ctx.clock,
            ctx.keys,
            actor,
            customer_id,
            due_days=ctx.settings.privacy_request_days,
        )
        return 200, {"request": req, "data": data}

    return fn


def _correction(
    ctx: Context, actor: tuple[str, str, str], customer_id: int, body: CorrectionIn
) -> Any:
    def fn(conn: Connection) -> tuple[int, Any]:
        return 201, rights.correct(
            conn,
            ctx.clock,
            ctx.keys,
            actor,
            customer_id,
            body.field,
            body.value,
            due_days=ctx.settings.privacy_request_days,
        )

    return fn


def _deletion(ctx: Context, actor: tuple[str, str, str], customer_id: int) -> Any:
    def fn(conn: Connection) -> tuple[int, Any]:
        from fenqi.bureau.reporting import ledger_owed_as_of

        owed, _ = ledger_owed_as_of(conn, ctx.clock.today())
        return 201, rights.request_deletion(
            conn,
            ctx.clock,
            ctx.keys,
            actor,
            customer_id,
            due_days=ctx.settings.privacy_request_days,
            owed_fen=owed,
            retention_years=ctx.settings.record_retention_years,
        )

    return fn


def _withdrawal(ctx: Context, actor: tuple[str, str, str], customer_id: int, kind: str) -> Any:
    def fn(conn: Connection) -> tuple[int, Any]:
        return 201, rights.withdraw(
            conn, ctx.clock, actor, customer_id, kind, due_days=ctx.settings.privacy_request_days
        )

    return fn


@me.post("/privacy/access")
def shopper_access(
    body: AccessIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Everything fenqi holds about the shopper, decrypted, machine-readable (PIPL art. 45).
    The stored answer for the idempotency key is sealed like the data itself."""
    return _rights_call(
        ctx,
        f"customer:{who.customer_id}",
        key,
        "POST /v1/me/privacy/access",
        body,
        _access(ctx, _me(who), who.customer_id),
        sensitive=True,
    )


@me.post("/privacy/corrections", status_code=201)
def shopper_correction(
    body: CorrectionIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Correct the phone or income band on file (PIPL art. 46); a name by staff."""
    return _rights_call(
        ctx,
        f"customer:{who.customer_id}",
        key,
        "POST /v1/me/privacy/corrections",
        body,
        _correction(ctx, _me(who), who.customer_id, body),
        sensitive=True,
    )


@me.post("/privacy/deletion", status_code=201)
def shopper_deletion(
    body: AccessIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Ask for deletion (PIPL art. 47): refused (409) while an account is open or owes; else
    what can go goes now and the rest is kept until the date the answer states."""
    return _rights_call(
        ctx,
        f"customer:{who.customer_id}",
        key,
        "POST /v1/me/privacy/deletion",
        body,
        _deletion(ctx, _me(who), who.customer_id),
    )


@me.post("/privacy/withdrawals", status_code=201)
def shopper_withdrawal(
    body: WithdrawalIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Withdraw a consent (PIPL art. 15); its effect is stated in the answer."""
    return _rights_call(
        ctx,
        f"customer:{who.customer_id}",
        key,
        "POST /v1/me/privacy/withdrawals",
        body,
        _withdrawal(ctx, _me(who), who.customer_id, body.kind),
    )


@me.get("/privacy/requests")
def shopper_requests(
    who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return rights.list_requests(conn, customer_id=who.customer_id)


@me.get("/consents")
def shopper_consents(
    who: ShopperPrincipal = Depends(shopper), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    """Every consent given, with the wording version shown, and whether it still stands."""
    with ctx.engine.connect() as conn:
        found = list_consents(conn, who.customer_id, limit=1000)
    return [
        {
            "id": c.id,
            "kind": c.kind.value,
            "text_version": c.text_version,
            "scope": c.scope,
            "granted_at": c.granted_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            "channel": c.channel,
        }
        for c in found
    ]


@me.post("/consents", status_code=201)
def shopper_consent(
    body: ConsentIn,
    who: ShopperPrincipal = Depends(shopper),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Give a separate consent (sensitive data; sharing with one funder or bureau, named in
    `scope`; marketing; bureau monitoring), recorded with the wording version shown."""

    def work(conn: Connection) -> tuple[int, Any]:
        if body.kind == ConsentKind.SHARING.value and not body.scope:
            raise rights.RightsError("scope: name the funder or bureau shared with", field="scope")
        c = record_consent(
            conn,
            ctx.clock,
            who.customer_id,
            body.kind,
            text_version=body.text_version,
            scope=body.scope,
            channel="app",
        )
        record(
            conn,
            ctx.clock,
            actor_kind="customer",
            actor_id=who.customer_id,
            action="privacy.consent_given",
            target_kind="customer",
            target_id=who.customer_id,
            detail={"kind": c.kind.value, "text_version": c.text_version, "scope": c.scope},
        )
        return 201, {"id": c.id, "kind": c.kind.value, "granted_at": c.granted_at.isoformat()}

    return idempotent(ctx, f"customer:{who.customer_id}", key, "POST /v1/me/consents", body, work)


# -- staff --------------------------------------------------------------------------------


@ops.get("/disputes")
def staff_disputes(
    status: Literal["open", "corrected", "confirmed"] | None = None,
    overdue: bool = Query(False, description="Only open disputes past their answer date."),
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    ctx: Context = Depends(get_ctx),
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return disputes.list_disputes(
            conn, status=status, overdue_on=ctx.clock.today() if overdue else None
        )


@ops.get("/disputes/{dispute_id}")
def staff_dispute(
    dispute_id: Id,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A dispute with the evidence from the ledger for the disputed date (while open: now)."""
    with ctx.engine.connect() as conn:
        d = disputes.get_dispute(conn, dispute_id)
        if d["status"] == "open":
            d["evidence"] = disputes.evidence(
                conn, int(d["credit_account_id"]), date.fromisoformat(d["record_as_of"])
            )
    return d


@ops.post("/accounts/{account_id}/disputes", status_code=201)
def staff_open_dispute(
    account_id: Id,
    body: DisputeIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Open a dispute for a shopper who raised it by phone, letter or at the bureau."""
    actor = disputes.Actor("staff", str(user.id), "api")
    return idempotent(
        ctx,
        staff_scope(user.id, f"account:{account_id}"),
        key,
        f"POST /v1/ops/accounts/{account_id}/disputes",
        body,
        lambda conn: _open_dispute(conn, ctx, actor, account_id, body, None),
    )


def resolve(
    ctx: Context,
    conn: Connection,
    actor: disputes.Actor,
    dispute_id: int,
    outcome: str,
    note: str,
    fix: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    """Resolve in a savepoint: a refusal rolls the attempt back and is audited (shared with
    the console and the CLI)."""
    grace = {name: p.billing.grace_days for name, p in ctx.catalog.items()}
    try:
        with conn.begin_nested():
            return 200, disputes.resolve_dispute(
                conn,
                ctx.clock,
                ctx.keys,
                actor,
                dispute_id,
                outcome,
                note,
                grace_of=grace,
                client=ctx.bureau,
                fix=fix,
            )
    except FenqiError as exc:
        return _refused(
            conn,
            ctx,
            (actor.kind, actor.id),
            "bureau.dispute_resolve_refused",
            ("dispute", dispute_id),
            exc,
        )


@ops.post("/disputes/{dispute_id}/resolve")
def staff_resolve(
    dispute_id: Id,
    body: ResolveIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Close a dispute: `corrected` (the record is derived again from the corrected ledger and
    the correction goes to the bureau) or `confirmed` (the record stands), with the reason."""
    actor = disputes.Actor("staff", str(user.id), "api")
    return idempotent(
        ctx,
        staff_scope(user.id, f"dispute:{dispute_id}"),
        key,
        f"POST /v1/ops/disputes/{dispute_id}/resolve",
        body,
        lambda conn: resolve(
            ctx,
            conn,
            actor,
            dispute_id,
            body.outcome,
            body.note,
            body.fix.model_dump(exclude_none=True) if body.fix else None,
        ),
    )


@ops.get("/privacy/requests")
def staff_requests(
    status: Literal["open", "completed", "scheduled", "refused"] | None = None,
    overdue: bool = False,
    customer_id: int | None = Query(None, ge=1),
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    ctx: Context = Depends(get_ctx),
) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return rights.list_requests(
            conn,
            customer_id=customer_id,
            status=status,
            overdue_on=ctx.clock.today() if overdue else None,
        )


def _staff(user: StaffUser) -> tuple[str, str, str]:
    return ("staff", str(user.id), "api")


@ops.post("/customers/{customer_id}/privacy/access")
def staff_access(
    customer_id: Id,
    body: AccessIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Answer an access request received by letter or phone (the export, decrypted)."""
    return _rights_call(
        ctx,
        staff_scope(user.id, f"customer:{customer_id}"),
        key,
        f"POST /v1/ops/customers/{customer_id}/privacy/access",
        body,
        _access(ctx, _staff(user), customer_id),
        sensitive=True,
    )


@ops.post("/customers/{customer_id}/privacy/corrections", status_code=201)
def staff_correction(
    customer_id: Id,
    body: CorrectionIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    return _rights_call(
        ctx,
        staff_scope(user.id, f"customer:{customer_id}"),
        key,
        f"POST /v1/ops/customers/{customer_id}/privacy/corrections",
        body,
        _correction(ctx, _staff(user), customer_id, body),
        sensitive=True,
    )


@ops.post("/customers/{customer_id}/privacy/deletion", status_code=201)
def staff_deletion(
    customer_id: Id,
    body: AccessIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    return _rights_call(
        ctx,
        staff_scope(user.id, f"customer:{customer_id}"),
        key,
        f"POST /v1/ops/customers/{customer_id}/privacy/deletion",
        body,
        _deletion(ctx, _staff(user), customer_id),
    )


@ops.post("/customers/{customer_id}/privacy/withdrawals", status_code=201)
def staff_withdrawal(
    customer_id: Id,
    body: WithdrawalIn,
    user: StaffUser = Depends(allowed(P.COMPLIANCE_CASES)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    return _rights_call(
        ctx,
        staff_scope(user.id, f"customer:{customer_id}"),
        key,
        f"POST /v1/ops/customers/{customer_id}/privacy/withdrawals",
        body,
        _withdrawal(ctx, _staff(user), customer_id, body.kind),
    )


@ops.get("/compliance/reports/{name}")
def staff_report(
    name: Literal["overdue", "rates", "disputes", "bureau", "exposure"],
    month: str = Query(..., pattern=r"^\d{4}-\d{2}$", description="YYYY-MM"),
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A regulatory report for a month, from the ledger (the same month gives the same
    figures): rows and totals (CSV: the console or `fenqi compliance report --csv`)."""
    from fenqi.compliance.reports import build

    grace = {n: p.billing.grace_days for n, p in ctx.catalog.items()}
    with ctx.engine.connect() as conn:
        return build(
            conn,
            name,
            month,
            grace_of=grace,
            cap_fen=ctx.settings.borrower_exposure_cap_fen,
            zone=ctx.settings.timezone,
        ).to_dict()
