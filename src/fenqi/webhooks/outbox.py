"""The outbox: services enqueue events in their own transaction; operators list and replay.

`enqueue` only inserts (an event row and its first pending delivery) on the caller's
connection and never commits, so the event exists exactly when the caller's change does.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
)

from fenqi.clock import Clock
from fenqi.store.books import is_test_book
from fenqi.store.prepared import Prepared
from fenqi.store.schema.webhooks import (
    webhook_deliveries,
    webhook_events,
    webhook_subscriptions,
)
from fenqi.webhooks.errors import EventNotFound, InvalidEvent, ReplayConflict

EVENT_ID_PREFIX = "evt_"
EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
EVENT_TYPE_LENGTH_MAX = 64
MERCHANT_ID_LENGTH_MAX = 64
# A webhook body is a notification, not a data export; shops' servers commonly cap request
# bodies near 1 MiB, so we stay well below.
BODY_BYTES_MAX = 256 * 1024
LIST_LIMIT_MAX = 500
PURGE_BATCH_MAX = 10_000


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD = "dead"


class EventType(StrEnum):
    """The event types fenqi emits (services may add more of the same dotted shape)."""

    APPLICATION_DECIDED = "application.decided"
    ORDER_AUTHORIZED = "order.authorized"
    ORDER_CAPTURED = "order.captured"
    ORDER_VOIDED = "order.voided"
    ORDER_REFUNDED = "order.refunded"
    REPAYMENT_RECEIVED = "repayment.received"
    PLAN_PAID_OFF = "plan.paid_off"


@dataclass(frozen=True)
class Event:
    event_id: str
    merchant_id: str
    type: str
    created_at: datetime
    payload: str  # the exact JSON body sent to the shop

    @property
    def body(self) -> bytes:
        return self.payload.encode("utf-8")

    def envelope(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.payload)
        return decoded


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    event_type: str
    merchant_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    locked_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "merchant_id": self.merchant_id,
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "locked_until": iso(self.locked_until),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "delivered_at": iso(self.delivered_at),
            "created_at": iso(self.created_at),
        }


def as_utc(value: datetime) -> datetime:
    """Stored instants as aware UTC (SQLite hands them back naive, in the UTC we stored)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def format_instant(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the millisecond: the envelope's `created_at`."""
    return as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return EVENT_ID_PREFIX + secrets.token_hex(12)


def build_body(
    event_id: str,
    event_type: str,
    created_at: datetime,
    data: dict[str, Any],
    livemode: bool = True,
) -> str:
    """The envelope {"id", "type", "created_at", "livemode", "data"} as compact JSON text
    (`livemode` false for an event of the test book: docs/api.md, "Test mode")."""
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": format_instant(created_at),
        "livemode": livemode,
        "data": data,
    }
    try:
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"data: not JSON-serializable ({exc})", field="data") from None
    if len(body.encode("utf-8")) > BODY_BYTES_MAX:
        raise InvalidEvent(f"data: body over {BODY_BYTES_MAX} bytes", field="data")
    return body


def _validate(merchant_id: str, event_type: str, data: dict[str, Any]) -> None:
    if not merchant_id or len(merchant_id) > MERCHANT_ID_LENGTH_MAX:
        raise InvalidEvent(
            f"merchant_id: must be 1 to {MERCHANT_ID_LENGTH_MAX} characters", field="merchant_id"
        )
    if len(event_type) > EVENT_TYPE_LENGTH_MAX or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise InvalidEvent(
            f"type: {event_type!r} is not a dotted lower-case name like 'order.captured'",
            field="type",
        )
    if not isinstance(data, dict):
        raise InvalidEvent("data: must be a JSON object (dict)", field="data")


def enqueue(
    conn: Connection, clock: Clock, merchant_id: str, event_type: str, data: dict[str, Any]
) -> str:
    """Write an event and its first pending delivery on `conn`; returns the public event id.
    A shop whose endpoint subscribes to a list of event types (`webhook_subscriptions`) gets
    no delivery of an event of another type; the event is still written.

    Call it inside the transaction that makes the change the event reports; it does not commit.
    """
    _validate(merchant_id, event_type, data)
    now = as_utc(clock.now())
    event_id = new_event_id()
    body = build_body(event_id, event_type, now, data, not is_test_book(conn))
    params = {
        "event_id": event_id,
        "merchant_id": merchant_id,
        "type": event_type,
        "payload": body,
        "created_at": now,
    }
    if conn.dialect.name == "postgresql":  # the event and its delivery in one statement
        _INSERT_EVENT_AND_DELIVERY.run(conn, params)
        return event_id
    event_row_id = _INSERT_EVENT.run(conn, params).scalar_one()
    _DELIVER_IF_SUBSCRIBED.run(
        conn,
        {"event_row_id": event_row_id, "merchant_id": merchant_id, "type": event_type, "now": now},
    )
    return event_id


def _subscribed(merchant_id: Any, event_type: Any) -> Any:
    """The shop subscribes to every event type (no subscription row) or to this one."""
    s = webhook_subscriptions.c
    return or_(
        ~exists().where(s.merchant_id == merchant_id),
        exists().where(s.merchant_id == merchant_id, s.event_type == event_type),
    )


def _event_and_delivery() -> Any:
    """INSERT the event, and its first pending delivery from the event's new id (PostgreSQL:
    a data-modifying WITH; SQLite has none, so there it is two statements)."""
    e, d = webhook_events.c, webhook_deliveries.c
    event = (
        insert(webhook_events)
        .values(
            event_id=bindparam("event_id", type_=e.event_id.type),
            merchant_id=bindparam("merchant_id", type_=e.merchant_id.type),
            type=bindparam("type", type_=e.type.type),
            payload=bindparam("payload", type_=e.payload.type),
            created_at=bindparam("created_at", type_=e.created_at.type),
        )
        .returning(e.id, e.merchant_id, e.created_at)
        .cte("new_event")
    )
    pending = literal(DeliveryStatus.PENDING.value, type_=d.status.type)
    return insert(webhook_deliveries).from_select(
        ["event_row_id", "merchant_id", "status", "attempts", "next_attempt_at", "created_at"],
        select(
            event.c.id,
            event.c.merchant_id,
            pending,
            literal(0, type_=d.attempts.type),
            event.c.created_at,
            event.c.created_at,
        ).where(_subscribed(event.c.merchant_id, bindparam("type", type_=e.type.type))),
    )


# built once and reused (the values come as parameters): enqueue runs on every business event
_INSERT_EVENT_AND_DELIVERY = Prepared(_event_and_delivery())
_INSERT_EVENT = Prepared(
    insert(webhook_events)
    .values({c: bindparam(c) for c in ("event_id", "merchant_id", "type", "payload", "created_at")})
    .returning(webhook_events.c.id)
)
_DELIVER = Prepared(
    insert(webhook_deliveries)
    .values(
        event_row_id=bindparam("event_row_id"),
        merchant_id=bindparam("merchant_id"),
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        next_attempt_at=bindparam("now", type_=webhook_deliveries.c.next_attempt_at.type),
        created_at=bindparam("now", type_=webhook_deliveries.c.created_at.type),
    )
    .returning(webhook_deliveries.c.id)
)

_DELIVER_IF_SUBSCRIBED = Prepared(
    insert(webhook_deliveries).from_select(
        ["event_row_id", "merchant_id", "status", "attempts", "next_attempt_at", "created_at"],
        select(
            bindparam("event_row_id", type_=webhook_deliveries.c.event_row_id.type),
            bindparam("merchant_id", type_=webhook_deliveries.c.merchant_id.type),
            literal(DeliveryStatus.PENDING.value, type_=webhook_deliveries.c.status.type),
            literal(0, type_=webhook_deliveries.c.attempts.type),
            bindparam("now", type_=webhook_deliveries.c.next_attempt_at.type),
            bindparam("now", type_=webhook_deliveries.c.created_at.type),
        ).where(
            _subscribed(
                bindparam("merchant_id", type_=webhook_deliveries.c.merchant_id.type),
                bindparam("type", type_=webhook_events.c.type.type),
            )
        ),
    )
)


def _insert_delivery(conn: Connection, event_row_id: int, merchant_id: str, now: datetime) -> int:
    """A pending delivery of an event, due now."""
    params = {"event_row_id": event_row_id, "merchant_id": merchant_id, "now": now}
    return int(_DELIVER.run(conn, params).scalar_one())


def _event_from_row(row: Row[Any]) -> Event:
    return Event(
        event_id=row.event_id,
        merchant_id=row.merchant_id,
        type=row.type,
        created_at=as_utc(row.created_at),
        payload=row.payload,
    )


def get_event(conn: Connection, event_id: str, *, merchant_id: str | None = None) -> Event:
    """One event by its public id; with `merchant_id`, another shop's event is not found."""
    stmt = select(webhook_events).where(webhook_events.c.event_id == event_id)
    if merchant_id is not None:
        stmt = stmt.where(webhook_events.c.merchant_id == merchant_id)
    row = conn.execute(stmt).first()
    if row is None:
        raise EventNotFound(f"no webhook event {event_id!r}", event_id=event_id)
    return _event_from_row(row)


def replay(conn: Connection, clock: Clock, event_id: str, *, merchant_id: str | None = None) -> int:
    """A new pending delivery of an event whose deliveries are all delivered or dead.

    Dead letters come back this way once the shop has fixed its endpoint. An event with a
    delivery still pending or in flight is refused: it will be delivered anyway.
    """
    stmt = select(webhook_events.c.id, webhook_events.c.merchant_id).where(
        webhook_events.c.event_id == event_id
    )
    if merchant_id is not None:
        stmt = stmt.where(webhook_events.c.merchant_id == merchant_id)
    # Lock the event row (PostgreSQL) so two replays of one event do not both pass the check.
    event = conn.execute(stmt.with_for_update()).first()
    if event is None:
        raise EventNotFound(f"no webhook event {event_id!r}", event_id=event_id)
    open_delivery = conn.execute(
        select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.event_row_id == event.id,
            webhook_deliveries.c.status.in_(
                [DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERING.value]
            ),
        )
        .limit(1)
    ).first()
    if open_delivery is not None:
        raise ReplayConflict(
            f"webhook event {event_id!r} already has delivery {open_delivery.id} in progress",
            event_id=event_id,
            delivery_id=open_delivery.id,
        )
    return _insert_delivery(conn, event.id, event.merchant_id, as_utc(clock.now()))


def list_deliveries(
    conn: Connection,
    *,
    merchant_id: str | None = None,
    status: DeliveryStatus | str | None = None,
    event_id: str | None = None,
    limit: int = 50,
    after_id: int = 0,
) -> list[Delivery]:
    """Deliveries in id order after the cursor `after_id` (pass the last id for the next page)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValueError(f"limit: must be 1 to {LIST_LIMIT_MAX}")
    d, e = webhook_deliveries.c, webhook_events.c
    stmt = (
        select(webhook_deliveries, e.event_id, e.type.label("event_type"))
        .join(webhook_events, e.id == d.event_row_id)
        .where(d.id > after_id)
        .order_by(d.id)
        .limit(limit)
    )
    if merchant_id is not None:
        stmt = stmt.where(d.merchant_id == merchant_id)
    if status is not None:
        stmt = stmt.where(d.status == DeliveryStatus(status).value)
    if event_id is not None:
        stmt = stmt.where(e.event_id == event_id)
    return [_delivery_from_row(row) for row in conn.execute(stmt)]


def _delivery_from_row(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        merchant_id=row.merchant_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at),
        locked_until=_opt_utc(row.locked_until),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=_opt_utc(row.delivered_at),
        created_at=as_utc(row.created_at),
    )


def purge_finished(
    conn: Connection, *, created_before: datetime, include_dead: bool = False, limit: int = 1000
) -> int:
    """Delete up to `limit` events created before `created_before` whose deliveries are all
    delivered (or dead too, with `include_dead`), with their deliveries; returns how many.

    Why: the outbox would otherwise grow without bound. Dead letters are kept by default
    because they await an operator's replay. Call it repeatedly until it returns 0.
    """
    if not 1 <= limit <= PURGE_BATCH_MAX:
        raise ValueError(f"limit: must be 1 to {PURGE_BATCH_MAX}")
    d, e = webhook_deliveries.c, webhook_events.c
    finished = [DeliveryStatus.DELIVERED.value]
    if include_dead:
        finished.append(DeliveryStatus.DEAD.value)
    unfinished = exists().where(d.event_row_id == e.id, d.status.not_in(finished))
    # Lock the chosen events (PostgreSQL) so a concurrent replay waits, then finds nothing,
    # instead of adding a delivery this purge would delete.
    ids = list(
        conn.execute(
            select(e.id)
            .where(e.created_at < as_utc(created_before), ~unfinished)
            .order_by(e.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return 0
    conn.execute(delete(webhook_deliveries).where(d.event_row_id.in_(ids)))
    conn.execute(delete(webhook_events).where(e.id.in_(ids)))
    return len(ids)
