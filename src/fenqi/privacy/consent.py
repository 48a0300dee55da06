"""Consent records: what a customer agreed to, under which wording, when, and until when.

A credit-bureau inquiry and the use of shopping data need the applicant's consent, recorded
with the time, the version of the text shown and its scope (issue 4; PIPL art. 14 and the
credit-reporting regulations require consent to be informed, specific and revocable). Rows are
never deleted: revoking sets revoked_at, so `has_consent` can answer for any past instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from fenqi.clock import Clock
from fenqi.privacy._rows import as_utc, to_utc
from fenqi.privacy.errors import PrivacyError
from fenqi.store.prepared import Prepared
from fenqi.store.schema.privacy import consents

TEXT_VERSION_CHARS_MAX = 32
SCOPE_CHARS_MAX = 255
CHANNEL_CHARS_MAX = 48  # room for "merchant:" and the longest shop id (32)
CONSENT_LIST_MAX = 1000


class ConsentKind(StrEnum):
    BUREAU_INQUIRY = "bureau_inquiry"  # query the shopper's credit report
    SHOPPING_DATA = "shopping_data"  # use the shop's data about the shopper in decisions
    MARKETING = "marketing"  # contact the shopper with offers
    BUREAU_MONITORING = "bureau_monitoring"  # post-loan monitoring inquiries (issue 18)
    SENSITIVE_DATA = "sensitive_data"  # separate consent for sensitive data (PIPL art. 29)
    SHARING = "sharing"  # sharing with one funder or bureau, named in scope (PIPL art. 23)


@dataclass(frozen=True)
class Consent:
    id: int
    customer_id: int
    kind: ConsentKind
    text_version: str
    scope: str
    granted_at: datetime
    revoked_at: datetime | None
    channel: str

    def active_at(self, at: datetime) -> bool:
        return self.granted_at <= at and (self.revoked_at is None or self.revoked_at > at)


def _kind(value: ConsentKind | str) -> ConsentKind:
    try:
        return ConsentKind(value)
    except ValueError:
        known = ", ".join(k.value for k in ConsentKind)
        raise PrivacyError(
            f"kind: no such consent kind {value!r}; known: {known}",
            code="invalid_consent",
            field="kind",
        ) from None


def _bounded(field: str, value: str, chars_max: int, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise PrivacyError(f"{field}: required", code="invalid_consent", field=field)
    if len(value) > chars_max:
        raise PrivacyError(
            f"{field}: at most {chars_max} characters", code="invalid_consent", field=field
        )
    return value


# built once, reused per consent
_INSERT = Prepared(consents.insert().returning(consents.c.id))
_INSERT_MANY = Prepared(consents.insert())


@dataclass(frozen=True, slots=True)
class ConsentGiven:
    """One consent as the customer gave it (what `record_consents` takes)."""

    kind: ConsentKind | str
    text_version: str
    scope: str = ""


def _row(
    clock: Clock,
    customer_id: int,
    kind: ConsentKind | str,
    text_version: str,
    scope: str,
    channel: str,
) -> dict[str, Any]:
    consent_kind = _kind(kind)
    return {
        "customer_id": customer_id,
        "kind": consent_kind.value,
        "text_version": _bounded(
            "text_version", text_version, TEXT_VERSION_CHARS_MAX, required=True
        ),
        "scope": _bounded("scope", scope, SCOPE_CHARS_MAX, required=False),
        "granted_at": to_utc(clock.now()),
        "revoked_at": None,
        "channel": _bounded("channel", channel, CHANNEL_CHARS_MAX, required=True),
    }


def record_consent(
    conn: Connection,
    clock: Clock,
    customer_id: int,
    kind: ConsentKind | str,
    *,
    text_version: str,
    scope: str = "",
    channel: str,
) -> Consent:
    """Record a consent given now, under `text_version` of the wording, through `channel`."""
    row = _row(clock, customer_id, kind, text_version, scope, channel)
    new_id = _INSERT.run(conn, row).scalar_one()
    return Consent(
        int(new_id),
        customer_id,
        ConsentKind(row["kind"]),
        row["text_version"],
        row["scope"],
        row["granted_at"],
        None,
        row["channel"],
    )


def record_consents(
    conn: Connection,
    clock: Clock,
    customer_id: int,
    given: Iterable[ConsentGiven],
    *,
    channel: str,
) -> int:
    """Record several consents given now through `channel`, in order, in one statement
    (as many `record_consent` calls would, without reading the new ids back); every consent
    is checked before any is written. Returns how many were recorded."""
    rows = [_row(clock, customer_id, c.kind, c.text_version, c.scope, channel) for c in given]
    _INSERT_MANY.many(conn, rows)
    return len(rows)


def revoke_consent(
    conn: Connection, clock: Clock, customer_id: int, kind: ConsentKind | str
) -> int:
    """Revoke, as of now, every standing consent of this kind; return how many were revoked."""
    consent_kind = _kind(kind)
    now = to_utc(clock.now())
    result = conn.execute(
        update(consents)
        .where(
            consents.c.customer_id == customer_id,
            consents.c.kind == consent_kind.value,
            consents.c.revoked_at.is_(None),
            consents.c.granted_at <= now,
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount)


def has_consent(conn: Connection, customer_id: int, kind: ConsentKind | str, at: datetime) -> bool:
    """Whether a consent of this kind was granted at or before `at` and not revoked by then."""
    consent_kind = _kind(kind)
    instant = to_utc(at)
    row = conn.execute(
        select(consents.c.id)
        .where(
            consents.c.customer_id == customer_id,
            consents.c.kind == consent_kind.value,
            consents.c.granted_at <= instant,
            or_(consents.c.revoked_at.is_(None), consents.c.revoked_at > instant),
        )
        .limit(1)
    ).first()
    return row is not None


def _from_row(row: Any) -> Consent:
    return Consent(
        id=int(row.id),
        customer_id=int(row.customer_id),
        kind=ConsentKind(row.kind),
        text_version=row.text_version,
        scope=row.scope,
        granted_at=as_utc(row.granted_at),
        revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
        channel=row.channel,
    )


def list_consents(
    conn: Connection,
    customer_id: int,
    kind: ConsentKind | str | None = None,
    *,
    limit: int = 100,
) -> list[Consent]:
    """A customer's consent history, oldest first (for data-subject requests and support)."""
    if not 1 <= limit <= CONSENT_LIST_MAX:
        raise ValueError(f"limit must be 1..{CONSENT_LIST_MAX}")
    condition = consents.c.customer_id == customer_id
    if kind is not None:
        condition = and_(condition, consents.c.kind == _kind(kind).value)
    rows = conn.execute(
        select(consents).where(condition).order_by(consents.c.id).limit(limit)
    ).all()
    return [_from_row(r) for r in rows]
