"""The access audit log: who did what to whom, when and why. Append-only.

Every operations action (reveal personal data, freeze, change a limit, reverse an entry) is
recorded by a named actor in the same transaction as the change. This module offers no update
or delete. The reason and the string values of detail are redacted before they are stored
(ID numbers and phones masked), so the log cannot become a second copy of personal data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from fenqi.clock import Clock
from fenqi.privacy._rows import as_utc, to_utc
from fenqi.privacy.errors import PrivacyError
from fenqi.privacy.masking import redact_text
from fenqi.store.schema.privacy import audit_log

AUDIT_PAGE_MAX = 1000
REASON_CHARS_MAX = 2000
DETAIL_JSON_CHARS_MAX = 16_000


class ActorKind(StrEnum):
    STAFF = "staff"
    MERCHANT = "merchant"
    CUSTOMER = "customer"
    SYSTEM = "system"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    action: str
    target_kind: str | None
    target_id: str | None
    reason: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor_kind": self.actor_kind.value,
            "actor_id": self.actor_id,
            "action": self.action,
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "reason": self.reason,
            "detail": self.detail,
        }


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {str(k): _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _field(name: str, value: str | None, chars_max: int, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise PrivacyError(f"audit {name}: required", code="invalid_audit", field=name)
        return None
    if len(value) > chars_max:
        raise PrivacyError(
            f"audit {name}: at most {chars_max} characters", code="invalid_audit", field=name
        )
    return value


def record(
    conn: Connection,
    clock: Clock,
    *,
    actor_kind: ActorKind | str,
    actor_id: str | int,
    action: str,
    target_kind: str | None = None,
    target_id: str | int | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry (in the caller's transaction, beside the change it explains)."""
    try:
        kind = ActorKind(actor_kind)
    except ValueError:
        raise PrivacyError(
            f"audit actor_kind: {actor_kind!r} is not one of "
            f"{', '.join(k.value for k in ActorKind)}",
            code="invalid_audit",
            field="actor_kind",
        ) from None
    actor = _field("actor_id", str(actor_id), 64, required=True)
    action_name = _field("action", action, 64, required=True)
    target_kind_name = _field("target_kind", target_kind, 32, required=False)
    target = _field("target_id", None if target_id is None else str(target_id), 64, required=False)
    clean_reason = redact_text(reason)
    if len(clean_reason) > REASON_CHARS_MAX:
        raise PrivacyError(
            f"audit reason: at most {REASON_CHARS_MAX} characters",
            code="invalid_audit",
            field="reason",
        )
    clean_detail = _redact(detail or {})
    detail_json = json.dumps(clean_detail, ensure_ascii=False, sort_keys=True, default=str)
    if len(detail_json) > DETAIL_JSON_CHARS_MAX:
        raise PrivacyError(
            f"audit detail: at most {DETAIL_JSON_CHARS_MAX} characters of JSON",
            code="invalid_audit",
            field="detail",
        )
    at = to_utc(clock.now())
    assert actor is not None and action_name is not None
    new_id = conn.execute(
        audit_log.insert()
        .values(
            at=at,
            actor_kind=kind.value,
            actor_id=actor,
            action=action_name,
            target_kind=target_kind_name,
            target_id=target,
            reason=clean_reason,
            detail=detail_json,
        )
        .returning(audit_log.c.id)
    ).scalar_one()
    return AuditEntry(
        int(new_id),
        at,
        kind,
        actor,
        action_name,
        target_kind_name,
        target,
        clean_reason,
        json.loads(detail_json),
    )


def list_entries(
    conn: Connection,
    *,
    target_kind: str | None = None,
    target_id: str | int | None = None,
    actor_id: str | int | None = None,
    action: str | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> list[AuditEntry]:
    """Entries in id order after `after_id`; pass the last id back to get the next page."""
    if not 1 <= limit <= AUDIT_PAGE_MAX:
        raise ValueError(f"limit must be 1..{AUDIT_PAGE_MAX}")
    query = select(audit_log).where(audit_log.c.id > after_id)
    if target_kind is not None:
        query = query.where(audit_log.c.target_kind == target_kind)
    if target_id is not None:
        query = query.where(audit_log.c.target_id == str(target_id))
    if actor_id is not None:
        query = query.where(audit_log.c.actor_id == str(actor_id))
    if action is not None:
        query = query.where(audit_log.c.action == action)
    rows = conn.execute(query.order_by(audit_log.c.id).limit(limit)).all()
    return [
        AuditEntry(
            id=int(r.id),
            at=as_utc(r.at),
            actor_kind=ActorKind(r.actor_kind),
            actor_id=r.actor_id,
            action=r.action,
            target_kind=r.target_kind,
            target_id=r.target_id,
            reason=r.reason,
            detail=json.loads(r.detail),
        )
        for r in rows
    ]
