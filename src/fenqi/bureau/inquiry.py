"""Inquiry under a recorded authorization; the report kept encrypted with a retention date.

`inquire` refuses (403 `bureau_authorization_required`, audited) when the customer has no
standing `bureau_inquiry` consent at the moment of the inquiry; the consent row's id, date and
text version go to the bureau as the authorization. The report is sealed with the personal-data
keys (AES-GCM, context `bureau_reports.report:<customer id>`, so it cannot be moved to another
customer's row) and kept until `retention_until`; the computed attributes (no personal data) are
kept beside it in clear. An outage is recorded as `unavailable` and returned, never raised: the
caller applies its fallback.

`for_application` and `BureauCheck` are the few lines the application flow calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from fenqi.bureau.attributes import BureauAttributes, compute
from fenqi.bureau.client import BureauClient, HttpBureauClient, InquiryAuthorization
from fenqi.bureau.errors import BureauError, BureauUnavailable, NoAuthorization
from fenqi.bureau.model import CreditReport
from fenqi.clock import Clock
from fenqi.privacy import audit
from fenqi.privacy.consent import ConsentKind, list_consents
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.bureau import bureau_reports

if TYPE_CHECKING:
    from fenqi.context import Context
    from fenqi.credit.underwriting import UnderwritingDecision
    from fenqi.settings import Settings

PURPOSE_APPLICATION = "loan_application"
UNAVAILABLE_REASON = "B01_BUREAU_UNAVAILABLE"


def client_from_settings(settings: Settings, clock: Clock) -> BureauClient | None:
    if not settings.bureau_url:
        return None
    from fenqi.bureau.client import CircuitBreaker

    return HttpBureauClient(
        settings.bureau_url,
        settings.bureau_token or "",
        clock,
        lender=settings.bureau_lender_id,
        timeout_seconds=settings.bureau_timeout_seconds,
        retries=settings.bureau_retries,
        breaker=CircuitBreaker(
            clock, settings.bureau_breaker_failures, settings.bureau_breaker_reset_seconds
        ),
    )


@dataclass(frozen=True, slots=True)
class InquiryOutcome:
    report_row_id: int
    status: str  # ok | unavailable | refused
    attributes: BureauAttributes | None
    error_code: str = ""


def _context(customer_id: int) -> str:
    return f"bureau_reports.report:{customer_id}"


def inquire(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    client: BureauClient,
    customer_id: int,
    subject_id: str,
    purpose: str,
    *,
    retention_days: int,
    actor: str = "system",
) -> InquiryOutcome:
    now = clock.now()
    # post-loan monitoring needs its own consent (withdrawable apart from the application's)
    kind = (
        ConsentKind.BUREAU_MONITORING
        if purpose == "post_loan_monitoring"
        else ConsentKind.BUREAU_INQUIRY
    )
    standing = [c for c in list_consents(conn, customer_id, kind, limit=1000) if c.active_at(now)]
    if not standing:
        audit.record(
            conn,
            clock,
            actor_kind="system",
            actor_id=actor,
            action="bureau.inquiry_refused",
            target_kind="customer",
            target_id=customer_id,
            reason="no standing authorization",
            detail={"purpose": purpose},
        )
        raise NoAuthorization(
            f"authorization: no standing {kind.value} consent for this customer",
            field="authorization",
        )
    consent = standing[-1]
    authorization = InquiryAuthorization(
        f"consent:{consent.id}", consent.granted_at, consent.text_version
    )
    retention = clock.today() + timedelta(days=retention_days)
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "purpose": purpose,
        "consent_id": consent.id,
        "requested_at": now,
        "retention_until": retention,
        "key_id": None,
        "report_enc": None,
        "attributes": "{}",
        "error_code": "",
    }
    attrs: BureauAttributes | None = None
    try:
        report = client.inquire(subject_id, purpose, authorization)
    except BureauUnavailable as exc:
        row.update(status="unavailable", error_code=exc.code)
    except BureauError as exc:
        row.update(status="refused", error_code=exc.code[:48])
    else:
        sealed = keys.encrypt(json.dumps(report.to_json()), context=_context(customer_id))
        attrs = compute(report, clock.today(), client.lender)
        row.update(
            status="ok",
            key_id=sealed.key_id,
            report_enc=sealed.ciphertext,
            attributes=json.dumps(attrs.to_json()),
        )
    row_id = int(
        conn.execute(
            insert(bureau_reports).values(**row).returning(bureau_reports.c.id)
        ).scalar_one()
    )
    audit.record(
        conn,
        clock,
        actor_kind="system",
        actor_id=actor,
        action="bureau.inquiry",
        target_kind="customer",
        target_id=customer_id,
        detail={
            "purpose": purpose,
            "status": row["status"],
            "consent_id": consent.id,
            "bureau_report_id": row_id,
        },
    )
    return InquiryOutcome(row_id, row["status"], attrs, row["error_code"])


def stored_report(conn: Connection, keys: KeyRing, report_row_id: int) -> CreditReport | None:
    """Decrypt a stored report (None when the inquiry got none)."""
    row = conn.execute(select(bureau_reports).where(bureau_reports.c.id == report_row_id)).first()
    if row is None or row.report_enc is None:
        return None
    text = keys.decrypt(row.key_id, row.report_enc, context=_context(int(row.customer_id)))
    return CreditReport.from_json(json.loads(text))


def purge_expired(conn: Connection, today: date) -> int:
    """Drop the report body of every stored report past its retention date (the row, its
    attributes and the inquiry's fact stay, as the audit of the decision needs them)."""
    result = conn.execute(
        bureau_reports.update()
        .where(bureau_reports.c.retention_until < today, bureau_reports.c.report_enc.is_not(None))
        .values(report_enc=None, key_id=None)
    )
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class BureauCheck:
    """What the application flow learned from the bureau, and how it changes the decision."""

    outcome: InquiryOutcome
    fallback: str  # refer | decline

    def apply_to(self, record: dict[str, Any]) -> None:
        """Replace the shop-sent bureau fields with the bureau's attributes."""
        attrs = self.outcome.attributes
        if attrs is None:
            return
        record["other_lenders_count"] = attrs.lenders_elsewhere
        record["bureau_worst_dpd"] = attrs.worst_dpd_24m
        record["features"] = {**record["features"], "other_lenders": attrs.lenders_elsewhere}
        record["bureau"] = attrs.to_json()

    def decide(self, decision: UnderwritingDecision) -> UnderwritingDecision:
        """The flow's configured fallback when the bureau did not answer."""
        if self.outcome.attributes is not None:
            return decision
        return replace(
            decision,
            outcome=self.fallback,
            limit_fen=0 if self.fallback == "decline" else decision.limit_fen,
            reason_codes=(*decision.reason_codes, UNAVAILABLE_REASON),
        )


def for_application(
    conn: Connection, ctx: Context, customer_id: int, id_number: str
) -> BureauCheck | None:
    """Inquire for an application when a bureau is configured (None otherwise)."""
    client = ctx.bureau
    if client is None:
        return None
    outcome = inquire(
        conn,
        ctx.clock,
        ctx.keys,
        client,
        customer_id,
        id_number,
        PURPOSE_APPLICATION,
        retention_days=ctx.settings.bureau_report_retention_days,
    )
    return BureauCheck(outcome, ctx.settings.bureau_outage_fallback)
