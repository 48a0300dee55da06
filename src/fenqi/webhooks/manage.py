"""A shop manages its own webhook endpoint: create it, read it, delete it, choose the event types
it receives, and rotate its signing secret with an overlap.

One endpoint per shop (the worker resolves one per shop, `fenqi.webhooks.endpoints`). The
secret is shown once, when the endpoint is created or its secret rotated, and stored sealed.
A rotation keeps the previous secret for an overlap the shop chooses (at most
`ROTATION_OVERLAP_HOURS_MAX`): while it lasts every delivery's `Fenqi-Signature` carries one
`v1=` per secret (`t=...,v1=<new>,v1=<old>`), so a receiver that still holds the old secret
keeps accepting deliveries until it is updated.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from fenqi.clock import Clock
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.webhooks import webhook_endpoints, webhook_subscriptions
from fenqi.store.times import iso
from fenqi.webhooks.endpoints import (
    PREVIOUS_SECRET_CONTEXT,
    SECRET_CONTEXT,
    new_secret,
    set_endpoint,
)
from fenqi.webhooks.errors import InvalidEndpoint, WebhookError
from fenqi.webhooks.outbox import EventType

ROTATION_OVERLAP_HOURS_MAX = 7 * 24
ENDPOINT_ID_PREFIX = "we_"
ALL_EVENTS = "*"


class EndpointExists(WebhookError):
    code = "webhook_endpoint_exists"
    http_status = 409


class EndpointNotFound(WebhookError):
    code = "not_found"
    http_status = 404


def new_endpoint_id() -> str:
    return ENDPOINT_ID_PREFIX + secrets.token_hex(12)


def check_events(events: list[str]) -> list[str]:
    """The event types to subscribe to, checked: known types, or `["*"]` for every type."""
    known = {t.value for t in EventType}
    if not events:
        raise InvalidEndpoint(
            'events: list at least one event type, or ["*"] for every type', field="events"
        )
    if events == [ALL_EVENTS]:
        return events
    for event in events:
        if event not in known:
            raise InvalidEndpoint(
                f"events: {event[:64]!r} is not an event type (known: "
                f'{", ".join(sorted(known))}, or "*" alone for every type)',
                field="events",
            )
    if len(set(events)) != len(events):
        raise InvalidEndpoint("events: lists an event type twice", field="events")
    return sorted(events)


def create_endpoint(
    conn: Connection,
    clock: Clock,
    merchant_id: str,
    url: str,
    events: list[str],
    keys: KeyRing,
    *,
    allow_private: bool = False,
) -> dict[str, Any]:
    """The shop's endpoint, created with a fresh secret (returned, shown this once); 409 if the
    shop has one already (delete it first, or rotate its secret)."""
    events = check_events(events)
    if _row(conn, merchant_id) is not None:
        raise EndpointExists(
            "this shop has a webhook endpoint already (one per shop): delete it first, or "
            "rotate its secret",
        )
    secret = new_secret()
    set_endpoint(conn, clock, merchant_id, url, secret, keys, allow_private=allow_private)
    endpoint_id = new_endpoint_id()
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.merchant_id == merchant_id)
        .values(endpoint_id=endpoint_id)
    )
    _subscribe(conn, merchant_id, events)
    view = get_endpoint(conn, clock, merchant_id)
    assert view is not None
    return {**view, "secret": secret}


def _subscribe(conn: Connection, merchant_id: str, events: list[str]) -> None:
    conn.execute(
        delete(webhook_subscriptions).where(webhook_subscriptions.c.merchant_id == merchant_id)
    )
    if events != [ALL_EVENTS]:
        conn.execute(
            insert(webhook_subscriptions),
            [{"merchant_id": merchant_id, "event_type": event} for event in events],
        )


def _row(conn: Connection, merchant_id: str) -> Any:
    return conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.merchant_id == merchant_id)
    ).first()


def get_endpoint(conn: Connection, clock: Clock, merchant_id: str) -> dict[str, Any] | None:
    """The shop's endpoint (never its secret), or None. An endpoint set at onboarding, before
    endpoints had ids, gets its id here."""
    row = _row(conn, merchant_id)
    if row is None:
        return None
    endpoint_id = row.endpoint_id
    if endpoint_id is None:
        conn.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.merchant_id == merchant_id,
                webhook_endpoints.c.endpoint_id.is_(None),
            )
            .values(endpoint_id=new_endpoint_id())
        )
        endpoint_id = _row(conn, merchant_id).endpoint_id
    s = webhook_subscriptions.c
    events = list(
        conn.execute(
            select(s.event_type).where(s.merchant_id == merchant_id).order_by(s.event_type)
        ).scalars()
    )
    previous_until = row.previous_expires_at if row.previous_secret is not None else None
    if previous_until is not None and _utc(previous_until) <= _utc(clock.now()):
        previous_until = None  # the overlap is over
    return {
        "id": endpoint_id,
        "url": row.url,
        "events": events or [ALL_EVENTS],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "previous_secret_expires_at": iso(previous_until) if previous_until else None,
    }


def _owned(conn: Connection, merchant_id: str, endpoint_id: str) -> Any:
    row = _row(conn, merchant_id)
    if row is None or row.endpoint_id != endpoint_id:
        raise EndpointNotFound(f"webhook endpoint {endpoint_id[:64]!r} not found")
    return row


def delete_endpoint(conn: Connection, merchant_id: str, endpoint_id: str) -> None:
    """Delete the shop's endpoint and its subscriptions. Events keep being written; their
    deliveries go to the dead letters (no endpoint) until the shop sets one and replays them."""
    _owned(conn, merchant_id, endpoint_id)
    conn.execute(
        delete(webhook_subscriptions).where(webhook_subscriptions.c.merchant_id == merchant_id)
    )
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.merchant_id == merchant_id))


def update_events(
    conn: Connection, clock: Clock, merchant_id: str, endpoint_id: str, events: list[str]
) -> dict[str, Any]:
    events = check_events(events)
    _owned(conn, merchant_id, endpoint_id)
    _subscribe(conn, merchant_id, events)
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.merchant_id == merchant_id)
        .values(updated_at=clock.now())
    )
    view = get_endpoint(conn, clock, merchant_id)
    assert view is not None
    return view


def rotate_secret(
    conn: Connection,
    clock: Clock,
    merchant_id: str,
    endpoint_id: str,
    overlap_hours: int,
    keys: KeyRing,
) -> dict[str, Any]:
    """A new secret (returned, shown this once); the current one keeps signing deliveries too
    for `overlap_hours` (0: it stops now). A rotation during an overlap ends the earlier
    previous secret: only the current and the newest secret sign."""
    if not 0 <= overlap_hours <= ROTATION_OVERLAP_HOURS_MAX:
        raise InvalidEndpoint(
            f"overlap_hours: must be 0 to {ROTATION_OVERLAP_HOURS_MAX}", field="overlap_hours"
        )
    row = _owned(conn, merchant_id, endpoint_id)
    current = (
        row.secret
        if row.key_id is None
        else keys.decrypt(row.key_id, row.secret, context=SECRET_CONTEXT)
    )
    now = clock.now()
    secret = new_secret()
    sealed = keys.encrypt(secret, context=SECRET_CONTEXT)
    values: dict[str, Any] = {
        "secret": sealed.ciphertext,
        "key_id": sealed.key_id,
        "updated_at": now,
        "previous_secret": None,
        "previous_key_id": None,
        "previous_expires_at": None,
    }
    if overlap_hours:
        old = keys.encrypt(current, context=PREVIOUS_SECRET_CONTEXT)
        values.update(
            previous_secret=old.ciphertext,
            previous_key_id=old.key_id,
            previous_expires_at=now + timedelta(hours=overlap_hours),
        )
    # only if the secret is still the one read: two rotations at once, one wins, one is a 409
    changed = conn.execute(
        update(webhook_endpoints)
        .where(
            webhook_endpoints.c.merchant_id == merchant_id,
            webhook_endpoints.c.secret == row.secret,
        )
        .values(**values)
    ).rowcount
    if changed != 1:
        raise WebhookError(
            "the secret was rotated at the same time; read the endpoint and try again",
            code="conflict",
            http_status=409,
        )
    view = get_endpoint(conn, clock, merchant_id)
    assert view is not None
    return {**view, "secret": secret}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = [
    "ALL_EVENTS",
    "EndpointExists",
    "EndpointNotFound",
    "create_endpoint",
    "delete_endpoint",
    "get_endpoint",
    "rotate_secret",
    "update_events",
]
