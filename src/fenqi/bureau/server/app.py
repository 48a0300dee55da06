"""The bureau service's HTTP interface (FastAPI).

- `POST /v1/inquiries`: a lender asks for a subject's report, naming the purpose and the
  subject's authorization (reference, date granted, text version). The report is the file as it
  stood before this inquiry; the inquiry is then kept on the subject's file, so every later
  report shows it. Without an authorization: 403 `bureau_authorization_required`, nothing kept.
- `POST /v1/files`: a lender's reporting file (`pboc` or `metro2`). It is validated whole
  before anything is stored: a malformed file is refused with 422 `bureau_file_invalid` naming
  the line and the field, and nothing changes. Records update each account and its month in the
  status history; a correction replaces the earlier record of the same month.
- `GET /v1/subjects/{subject_id}`: the subject's whole file (for the bureau's own operators
  and tests).

Lenders authenticate with a bearer token (`tokens`: token → lender).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select

from fenqi.bureau import metro2, pboc
from fenqi.bureau.errors import BureauError, FileFormatError
from fenqi.bureau.model import CreditReport, HistoryEntry, ReportAccount, ReportInquiry
from fenqi.bureau.server.db import (
    cb_accounts,
    cb_history,
    cb_inquiries,
    cb_submissions,
    create_bureau_tables,
    upsert,
)
from fenqi.clock import Clock

HISTORY_MONTHS = 24


class Authorization(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=64)
    granted_at: datetime
    text_version: str = Field(min_length=1, max_length=32)


class InquiryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_id: str = Field(min_length=9, max_length=32)
    purpose: Literal["loan_application", "post_loan_monitoring", "dispute_investigation"]
    authorization: Authorization | None = None


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["pboc", "metro2"]
    content: str = Field(min_length=1, max_length=50_000_000)


def _problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": message, "status": status, "code": code, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def lender(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The lender a bearer token belongs to (401 for an unknown token)."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    name: str | None = request.app.state.tokens.get(token)
    if name is None:
        raise BureauError(
            "authorization: unknown lender token", code="unauthorized", http_status=401
        )
    return name


Lender = Annotated[str, Depends(lender)]


def create_bureau_app(engine: Engine, clock: Clock, tokens: dict[str, str]) -> FastAPI:
    if not tokens:
        raise ValueError("tokens: the bureau needs at least one lender token")
    create_bureau_tables(engine)
    app = FastAPI(title="fenqi credit reference service (test double)", version="1")
    app.state.tokens = dict(tokens)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
        return _problem(
            422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}", field=where
        )

    @app.exception_handler(BureauError)
    async def _bureau_error(_: Request, exc: BureauError) -> JSONResponse:
        return _problem(exc.http_status, exc.code, exc.message, **exc.detail)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/inquiries")
    def inquire(body: InquiryIn, who: Lender) -> dict[str, Any]:
        auth = body.authorization
        if auth is None:
            raise BureauError(
                "authorization: an inquiry needs the subject's recorded authorization",
                code="bureau_authorization_required",
                http_status=403,
                field="authorization",
            )
        now = clock.now()
        if auth.granted_at.tzinfo is None or auth.granted_at > now:
            raise BureauError(
                "authorization.granted_at: must be an aware instant not after now",
                code="bureau_authorization_required",
                http_status=403,
                field="authorization.granted_at",
            )
        with engine.begin() as conn:
            report = subject_report(conn, body.subject_id, now)
            conn.execute(
                cb_inquiries.insert().values(
                    subject_id=body.subject_id,
                    lender=who,
                    purpose=body.purpose,
                    authorization_ref=auth.reference,
                    authorized_at=auth.granted_at,
                    at=now,
                )
            )
        return report.to_json()

    @app.post("/v1/files", status_code=201)
    def submit(body: FileIn, who: Lender) -> dict[str, Any]:
        now = clock.now()
        try:
            records = _ingestible(body.format, body.content)
        except FileFormatError as exc:
            with engine.begin() as conn:
                conn.execute(
                    cb_submissions.insert().values(
                        lender=who,
                        format=body.format,
                        records=0,
                        received_at=now,
                        status="rejected",
                        error=exc.message,
                    )
                )
            raise
        with engine.begin() as conn:
            for rec in records:
                _store(conn, who, rec)
            sid = conn.execute(
                cb_submissions.insert()
                .values(
                    lender=who,
                    format=body.format,
                    records=len(records),
                    received_at=now,
                    status="accepted",
                    error="",
                )
                .returning(cb_submissions.c.id)
            ).scalar_one()
        return {"submission_id": int(sid), "records": len(records), "status": "accepted"}

    @app.get("/v1/subjects/{subject_id}")
    def subject_file(subject_id: str, who: Lender) -> dict[str, Any]:
        with engine.connect() as conn:
            return subject_report(conn, subject_id, clock.now()).to_json()

    return app


def _ingestible(fmt: str, content: str) -> list[dict[str, Any]]:
    """Parse and validate the whole file first; rows as the service stores them."""
    out: list[dict[str, Any]] = []
    if fmt == "pboc":
        status = {"1": "current", "2": "delinquent", "3": "closed", "4": "charged_off"}
        for r in pboc.parse(content):
            out.append(
                {
                    "subject_id": r.subject_id,
                    "account_ref": r.account_ref,
                    "portfolio": "revolving" if r.account_type == "R1" else "installment",
                    "currency": r.currency,
                    "opened_on": r.opened_on,
                    "as_of": r.as_of,
                    "limit_minor": r.limit,
                    "balance_minor": r.balance,
                    "past_due_minor": r.past_due,
                    "charge_off_minor": r.charge_off,
                    "status": status[r.status],
                    "dpd": r.dpd,
                    "closed_on": r.as_of if r.status == "3" else None,
                    "special": r.special_event.lower(),
                    "correction": r.correction,
                }
            )
        return out
    codes = {
        "11": ("current", 0),
        "13": ("closed", 0),
        "97": ("charged_off", 180),
        **{c: ("delinquent", d) for d, c in metro2.DELINQUENCY_CODES},
    }
    for m in metro2.parse(content):
        st, dpd = codes[m.status]
        out.append(
            {
                "subject_id": m.subject_id,
                "account_ref": m.account_ref,
                "portfolio": "revolving",
                "currency": "USD",
                "opened_on": m.opened_on,
                "as_of": m.as_of,
                "limit_minor": m.limit * 100,
                "balance_minor": m.balance * 100,
                "past_due_minor": m.past_due * 100,
                "charge_off_minor": m.charge_off * 100,
                "status": st,
                "dpd": dpd,
                "closed_on": m.as_of if st == "closed" else None,
                "special": "",
                "correction": m.correction,
            }
        )
    return out


def _store(conn: Connection, lender: str, rec: dict[str, Any]) -> None:
    dialect = conn.dialect.name
    values = {k: v for k, v in rec.items() if k != "correction"}
    values["lender"] = lender
    existing = conn.execute(
        select(cb_accounts.c.id, cb_accounts.c.as_of).where(
            cb_accounts.c.lender == lender, cb_accounts.c.account_ref == rec["account_ref"]
        )
    ).first()
    if existing is None:
        account_id = conn.execute(
            cb_accounts.insert().values(**values).returning(cb_accounts.c.id)
        ).scalar_one()
    else:
        account_id = existing.id
        if rec["as_of"] >= existing.as_of:  # an older month's correction leaves 'now' alone
            conn.execute(
                cb_accounts.update().where(cb_accounts.c.id == account_id).values(**values)
            )
    month = f"{rec['as_of'].year:04d}-{rec['as_of'].month:02d}"
    conn.execute(
        upsert(dialect, cb_history, ["account_id", "month"]),
        {
            "account_id": account_id,
            "month": month,
            "status": rec["status"],
            "dpd": rec["dpd"],
            "balance_minor": rec["balance_minor"],
            "corrected": bool(rec["correction"]),
        },
    )


def subject_report(conn: Connection, subject_id: str, now: datetime) -> CreditReport:
    accounts = conn.execute(
        select(cb_accounts).where(cb_accounts.c.subject_id == subject_id).order_by(cb_accounts.c.id)
    ).all()
    ids = [a.id for a in accounts]
    history: dict[int, list[HistoryEntry]] = {i: [] for i in ids}
    if ids:
        for h in conn.execute(
            select(cb_history)
            .where(cb_history.c.account_id.in_(ids))
            .order_by(cb_history.c.account_id, cb_history.c.month.desc())
        ):
            if len(history[h.account_id]) < HISTORY_MONTHS:
                history[h.account_id].append(HistoryEntry(h.month, h.status, int(h.dpd)))
    inquiries = conn.execute(
        select(cb_inquiries)
        .where(cb_inquiries.c.subject_id == subject_id)
        .order_by(cb_inquiries.c.id)
    ).all()
    return CreditReport(
        report_id=f"cr_{uuid.uuid4().hex[:16]}",
        subject_id=subject_id,
        generated_at=now,
        accounts=tuple(
            ReportAccount(
                lender=a.lender,
                account_ref=a.account_ref,
                portfolio=a.portfolio,
                currency=a.currency,
                opened_on=a.opened_on,
                closed_on=a.closed_on,
                limit_minor=int(a.limit_minor),
                balance_minor=int(a.balance_minor),
                past_due_minor=int(a.past_due_minor),
                status=a.status,
                dpd=int(a.dpd),
                as_of=a.as_of,
                history=tuple(history[a.id]),
            )
            for a in accounts
        ),
        inquiries=tuple(ReportInquiry(i.lender, i.purpose, _aware(i.at)) for i in inquiries),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
