"""Operations API for funding (staff, like routes_ops.py): funders and programs, exposure per
funder against its limits, a date's settlement (read, or run), concentration, share of new
lending by funder, partner payouts and receipts, monthly partner statements, and the
loan-level partner files (CSV or Parquet) with their check against the ledger.

Reading needs `reports.read`; running a settlement and moving money need `batch.run` (as
merchant payouts do); both are audited when they change something."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection

from fenqi.api.deps import (
    allowed,
    get_ctx,
    idempotency_key,
    idempotent,
    staff_client_id,
    staff_scope,
)
from fenqi.api.problems import PROBLEM_RESPONSES, ApiError
from fenqi.context import Context
from fenqi.funding import payouts, reports
from fenqi.funding.files import export_files
from fenqi.funding.loader import catalog_for
from fenqi.funding.model import FundingCatalog
from fenqi.funding.service import exposure
from fenqi.funding.settlement import check_against_ledger, settle_day
from fenqi.privacy.audit import record
from fenqi.privacy.staff import Permission, StaffUser

router = APIRouter(prefix="/v1/ops/funding", tags=["funding"], responses=PROBLEM_RESPONSES)
P = Permission
FunderId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]{0,31}$")]
Month = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")]


def _funder(catalog: FundingCatalog, funder_id: str) -> None:
    if funder_id not in catalog.funders:
        raise ApiError(
            f"funder_id: no such funder {funder_id!r}",
            code="unknown_funder",
            http_status=404,
            field="funder_id",
        )


@router.get("/catalog")
def funding_catalog(
    user: StaffUser = Depends(allowed(P.REPORTS_READ)), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Funders and co-lending programs, as loaded (shipped examples and FENQI_FUNDING_DIR)."""
    return reports.catalog_rows(catalog_for(ctx))


@router.get("/exposure")
def funding_exposure(
    user: StaffUser = Depends(allowed(P.REPORTS_READ)), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Each funder's outstanding, lending of the day and largest borrower against its limits,
    with the share of each limit used (bp)."""
    with ctx.engine.connect() as conn:
        return {"items": reports.with_use(exposure(conn, catalog_for(ctx)))}


@router.get("/settlements/{day}")
def funding_settlements(
    day: date,
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The settlement figures written for a business date (by the end of day or a run)."""
    with ctx.engine.connect() as conn:
        return {"date": day.isoformat(), "items": reports.settlements(conn, day)}


@router.post("/settlements/{day}", status_code=201)
def run_settlement(
    day: date,
    user: StaffUser = Depends(allowed(P.BATCH_RUN)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Write the date's figures (again if run before: the same) and check them against the
    ledger; `ledger_mismatches` lists the funders that differ (none when the books agree)."""
    catalog = catalog_for(ctx)

    def work(conn: Connection) -> tuple[int, Any]:
        settle_day(conn, ctx.clock, catalog, day)
        mismatches = check_against_ledger(conn, catalog, day)
        record(
            conn,
            ctx.clock,
            actor_kind="staff",
            actor_id=user.id,
            action="funding.settle",
            target_kind="business_date",
            target_id=day.isoformat(),
        )
        return 201, {
            "date": day.isoformat(),
            "items": reports.settlements(conn, day),
            "ledger_mismatches": mismatches,
        }

    return idempotent(
        ctx, staff_scope(user.id, "funding.settle"), key, f"POST settle {day}", None, work
    )


@router.get("/concentration")
def funding_concentration(
    top: int = Query(reports.TOP, ge=1, le=100),
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Per funder: its largest borrowers and the share of its book the top ones hold."""
    with ctx.engine.connect() as conn:
        return {"items": [reports.concentration(conn, f, top) for f in catalog_for(ctx).funders]}


@router.get("/lending-share")
def funding_lending_share(
    start: date = Query(..., alias="from"),
    end: date = Query(..., alias="to"),
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """New lending by funder between two business dates (inclusive), and each one's share."""
    if end < start:
        raise ApiError(
            "to: must not be before from", code="invalid_range", http_status=422, field="to"
        )
    with ctx.engine.connect() as conn:
        return reports.lending_share(conn, start, end)


@router.post("/funders/{funder_id}/payouts", status_code=201)
def funder_payout(
    funder_id: FunderId,
    user: StaffUser = Depends(allowed(P.BATCH_RUN)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Pay a partner all the cash due to it (Dr funder_cash_due / Cr cash), audited. Concurrent
    payouts pay once: the others get 409 `nothing_to_pay`."""
    return _funder_movement(ctx, user, key, funder_id, "payout", payouts.pay_funder, "paid_fen")


@router.post("/funders/{funder_id}/receipts", status_code=201)
def funder_receipt(
    funder_id: FunderId,
    user: StaffUser = Depends(allowed(P.BATCH_RUN)),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Record a partner paying its part of the disbursements (Dr cash / Cr funder_settlement)."""
    return _funder_movement(
        ctx, user, key, funder_id, "receipt", payouts.receive_from_funder, "received_fen"
    )


def _funder_movement(
    ctx: Context,
    user: StaffUser,
    key: str,
    funder_id: str,
    kind: str,
    move: Callable[..., dict[str, Any]],
    field: str,
) -> JSONResponse:
    """Cash paid to (payout) or received from (receipt) a partner: idempotent per staff user and
    funder, audited as `funding.<kind>`."""
    catalog = catalog_for(ctx)
    _funder(catalog, funder_id)
    target = f"funder_{kind}:{funder_id}"

    def work(conn: Connection) -> tuple[int, Any]:
        moved = move(conn, ctx.clock, catalog, funder_id, staff_client_id(user.id, target, key))
        record(
            conn,
            ctx.clock,
            actor_kind="staff",
            actor_id=user.id,
            action=f"funding.{kind}",
            target_kind="funder",
            target_id=funder_id,
            detail={"amount_fen": moved[field]},
        )
        return 201, {"funder": funder_id, field: moved[field]}

    return idempotent(
        ctx, staff_scope(user.id, target), key, f"POST funder {kind} {funder_id}", None, work
    )


@router.get("/funders/{funder_id}/statements/{month}")
def funder_statement(
    funder_id: FunderId,
    month: Month,
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A partner's monthly statement: opening and closing balances, the month's figures,
    payouts and receipts."""
    catalog = catalog_for(ctx)
    _funder(catalog, funder_id)
    with ctx.engine.connect() as conn:
        return payouts.monthly_statement(conn, catalog, funder_id, month)


@router.get(
    "/funders/{funder_id}/files/{day}",
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
def funder_file(
    funder_id: FunderId,
    day: date,
    format: Literal["csv", "parquet"] = "csv",
    user: StaffUser = Depends(allowed(P.REPORTS_READ)),
    ctx: Context = Depends(get_ctx),
) -> Response:
    """The partner's loan-level file for a date (control total row last)."""
    _funder(catalog_for(ctx), funder_id)
    with tempfile.TemporaryDirectory() as tmp, ctx.engine.connect() as conn:
        out = export_files(conn, funder_id, day, FsPath(tmp))
        path = out.csv_path if format == "csv" else out.parquet_path
        body = path.read_bytes()
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )
