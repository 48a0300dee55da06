"""Corrections of reported credit records after a dispute (异议): the fields an investigator may
fix, a fix applied to a derived record, and the fixes in force for a reporting date. Apart from
`disputes.py` (opening and answering a dispute) so that reporting applies corrections without
importing the dispute workflow, and the workflow builds records without a cycle."""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from fenqi.errors import FenqiError
from fenqi.store.schema.compliance import bureau_disputes

if TYPE_CHECKING:
    from fenqi.bureau.records import AccountRecord


class DisputeStatus(StrEnum):
    OPEN = "open"
    CORRECTED = "corrected"
    CONFIRMED = "confirmed"


class DisputeError(FenqiError):
    code = "dispute_invalid"
    http_status = 422


FIXABLE = {"status", "dpd", "past_due_fen"}


def fixed_record(record: AccountRecord, fix: dict[str, Any]) -> AccountRecord:
    """The investigator's corrected fields on top of a derived record (checked here; the
    format validators then check the whole record)."""
    from dataclasses import replace

    from fenqi.bureau.records import ReportStatus

    unknown = set(fix) - FIXABLE
    if unknown:
        raise DisputeError(f"fix: only {', '.join(sorted(FIXABLE))} may be corrected", field="fix")
    try:
        status = ReportStatus(fix.get("status", record.status.value))
        dpd = int(fix.get("dpd", record.dpd))
        past_due = int(fix.get("past_due_fen", record.past_due_minor))
    except (TypeError, ValueError) as exc:
        raise DisputeError(f"fix: {exc}", field="fix") from None
    if dpd < 0 or not 0 <= past_due <= record.balance_minor:
        raise DisputeError("fix: dpd >= 0 and 0 <= past_due_fen <= the balance", field="fix")
    if (status is ReportStatus.CURRENT) != (dpd == 0 and past_due == 0):
        raise DisputeError("fix: current means no days and no amount past due", field="fix")
    return replace(
        record,
        status=status,
        dpd=dpd,
        past_due_minor=past_due,
        first_delinquency_on=record.first_delinquency_on if dpd else None,
    )


def corrected_fixes(conn: Connection, as_of: date) -> dict[int, dict[str, Any]]:
    """The fixes of disputes corrected for records of `as_of`, per credit account (the latest
    wins): every later derivation of that date's record applies them again, so a rerun of the
    month does not undo a correction."""
    d = bureau_disputes.c
    out: dict[int, dict[str, Any]] = {}
    for account, evidence_json in conn.execute(
        select(d.credit_account_id, d.evidence)
        .where(d.record_as_of == as_of, d.status == DisputeStatus.CORRECTED.value)
        .order_by(d.id)
    ):
        fix = json.loads(evidence_json or "{}").get("fix")
        if fix:
            out[int(account)] = fix
    return out
