"""The delivery worker: claim due deliveries, POST them signed, record each outcome.

Control and data plane apart: claiming is one short transaction (which rows, and a lease on
them); the HTTP requests happen outside any transaction; each outcome is one short update.
Several workers may run at once. On PostgreSQL the claim is `SELECT ... FOR UPDATE SKIP
LOCKED` and then an update to `delivering` with a lease (`locked_until`); on SQLite every
transaction starts with BEGIN IMMEDIATE (see store/engine.py), so the same select-then-update
is already serialized. A worker that dies mid-batch leaves its rows `delivering`; once the lease
passes they are due again. Delivery is therefore at least once: shops dedupe on the event id.

A shop with no endpoint configured: the delivery goes straight to the dead letters with a
last_error saying so, instead of retrying against nothing; once the shop sets an endpoint, a
replay delivers it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from fenqi.clock import Clock
from fenqi.settings import Settings
from fenqi.store.schema.webhooks import webhook_deliveries, webhook_events
from fenqi.webhooks.backoff import is_exhausted, next_delay
from fenqi.webhooks.destinations import Resolver, Target, UnsafeDestination, pin, system_resolver
from fenqi.webhooks.endpoints import Endpoint
from fenqi.webhooks.outbox import DeliveryStatus, as_utc
from fenqi.webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    sign_all,
)

__all__ = [
    "DeliveryStats",
    "Endpoint",
    "EndpointResolver",
    "deliver_due",
    "run_worker",
]

log = logging.getLogger(__name__)

EndpointResolver = Callable[[Connection, str], Endpoint | None]

# Rows claimed per transaction. Small, so a lease (which must outlast the slowest batch) stays
# short and a crashed worker's rows come back in minutes, not hours.
CLAIM_BATCH = 10
LEASE_MARGIN_SECONDS = 60
DELIVER_LIMIT_MAX = 10_000
ERROR_LENGTH_MAX = 500
USER_AGENT = "fenqi-webhooks/1"
NO_ENDPOINT_ERROR = "no webhook endpoint configured for this merchant; set one, then replay"


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0  # failed, another attempt scheduled
    dead: int = 0  # failed for the last time, or no endpoint
    no_endpoint: int = 0  # of `dead`: the shop has no endpoint
    lost_lease: int = 0  # outcome not recorded: another worker took the row over

    def add(self, other: DeliveryStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    event_type: str
    merchant_id: str
    attempts: int
    payload: str
    locked_until: datetime  # our lease; also the token that says we still own the row
    endpoint: Endpoint | None = field(repr=False)
    resolve_error: str | None = None  # the resolver raised: a failed attempt, retried


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    # no connection could be made (refused, no route): the next address of the host may be
    # tried; a connection that timed out is not, which keeps an attempt within its timeout
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def lease_for(settings: Settings, batch: int) -> timedelta:
    """A lease long enough for `batch` requests that all time out, plus a margin."""
    return timedelta(seconds=batch * settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)


def _due(now: datetime) -> ColumnElement[bool]:
    d = webhook_deliveries.c
    return or_(
        and_(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now),
        and_(d.status == DeliveryStatus.DELIVERING.value, d.locked_until <= now),
    )


def claim_due(
    engine: Engine,
    clock: Clock,
    resolve_endpoint: EndpointResolver,
    *,
    batch: int,
    lease: timedelta,
) -> list[Claimed]:
    """Mark up to `batch` due deliveries `delivering` under a lease; return what to send."""
    now = as_utc(clock.now())
    locked_until = now + lease
    d, e = webhook_deliveries.c, webhook_events.c
    with engine.begin() as conn:
        candidates = (
            select(d.id)
            .where(_due(now))
            .order_by(d.next_attempt_at, d.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(candidates).scalars())
        if not ids:
            return []
        # The due condition again: on SQLite it is a no-op (the transaction holds the write
        # lock); anywhere else it keeps a row another worker claimed meanwhile out of ours.
        claimed_ids = list(
            conn.execute(
                update(webhook_deliveries)
                .where(d.id.in_(ids), _due(now))
                .values(status=DeliveryStatus.DELIVERING.value, locked_until=locked_until)
                .returning(d.id)
            ).scalars()
        )
        rows = conn.execute(
            select(d.id, d.merchant_id, d.attempts, e.event_id, e.type, e.payload)
            .join(webhook_events, e.id == d.event_row_id)
            .where(d.id.in_(claimed_ids))
            .order_by(d.next_attempt_at, d.id)
        ).all()
        endpoints: dict[str, Endpoint | Exception | None] = {}
        for row in rows:
            if row.merchant_id not in endpoints:
                endpoints[row.merchant_id] = _resolve(conn, resolve_endpoint, row.merchant_id)
    return [
        Claimed(
            delivery_id=row.id,
            event_id=row.event_id,
            event_type=row.type,
            merchant_id=row.merchant_id,
            attempts=row.attempts,
            payload=row.payload,
            locked_until=locked_until,
            endpoint=_endpoint_or_none(endpoints[row.merchant_id]),
            resolve_error=_error_or_none(endpoints[row.merchant_id]),
        )
        for row in rows
    ]


def _resolve(
    conn: Connection, resolve_endpoint: EndpointResolver, merchant_id: str
) -> Endpoint | Exception | None:
    """The resolver's answer, or the exception it raised: one shop's broken endpoint record
    (say, a secret that no longer decrypts) must not stop every other shop's deliveries. The
    savepoint keeps the claim transaction usable after a failed query."""
    try:
        with conn.begin_nested():
            return resolve_endpoint(conn, merchant_id)
    except Exception as exc:
        log.exception("webhook endpoint lookup failed for merchant %s", merchant_id)
        return exc


def _endpoint_or_none(value: Endpoint | Exception | None) -> Endpoint | None:
    return None if isinstance(value, Exception) else value


def _error_or_none(value: Endpoint | Exception | None) -> str | None:
    if not isinstance(value, Exception):
        return None
    return f"endpoint lookup failed: {type(value).__name__}: {value}"[:ERROR_LENGTH_MAX]


def post_signed(
    client: httpx.Client,
    clock: Clock,
    claimed: Claimed,
    endpoint: Endpoint,
    timeout: float,
    *,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
) -> Outcome:
    """One signed POST to the endpoint's checked address (fenqi.webhooks.destinations); never
    raises for an unsafe destination, a name that does not resolve, or a network or HTTP
    failure (the outcome says)."""
    try:
        targets = pin(endpoint.url, allow_private, resolve)
    except UnsafeDestination as exc:
        return Outcome(None, f"refused: {exc}"[:ERROR_LENGTH_MAX])
    except (OSError, UnicodeError) as exc:
        return Outcome(None, f"cannot resolve the host: {exc}"[:ERROR_LENGTH_MAX])
    body = claimed.payload.encode("utf-8")
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign_all(endpoint.secrets_at(clock.now()), timestamp, body),
        EVENT_ID_HEADER: claimed.event_id,
        EVENT_TYPE_HEADER: claimed.event_type,
    }
    outcome = Outcome(None, "no address to try")
    for target in targets:  # the next address only if this one could not be connected to
        outcome = _post(client, claimed, target, body, headers, timeout)
        if not outcome.unreachable:
            break
    return outcome


def _post(
    client: httpx.Client,
    claimed: Claimed,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Outcome:
    try:
        # Stream and do not read the response body: only its status counts, and a shop's
        # huge or slow response body must not cost us memory or time.
        with client.stream(
            "POST",
            target.url,
            content=body,
            headers={**headers, **target.headers},
            timeout=timeout,
            extensions=target.extensions,
        ) as response:
            return Outcome(response.status_code, None)
    except httpx.ConnectError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH_MAX], unreachable=True)
    except httpx.TimeoutException as exc:
        return Outcome(None, f"timeout after {timeout:g}s ({type(exc).__name__})")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH_MAX])
    except Exception as exc:  # a bug must not stall the other deliveries of the batch
        log.exception("webhook delivery %s: unexpected error", claimed.delivery_id)
        return Outcome(None, f"internal error: {type(exc).__name__}"[:ERROR_LENGTH_MAX])


def record_outcome(
    engine: Engine, clock: Clock, claimed: Claimed, outcome: Outcome, settings: Settings
) -> DeliveryStatus | None:
    """Store one attempt's outcome; None if the lease was lost to another worker."""
    now = as_utc(clock.now())
    attempts = claimed.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "locked_until": None,
        "last_status_code": outcome.status_code,
    }
    if outcome.ok:
        status = DeliveryStatus.DELIVERED
        values.update(delivered_at=now, last_error=None)
    else:
        error = outcome.error or f"HTTP {outcome.status_code}"
        values["last_error"] = error[:ERROR_LENGTH_MAX]
        if is_exhausted(attempts, settings.webhook_max_attempts):
            status = DeliveryStatus.DEAD
        else:
            status = DeliveryStatus.PENDING
            values["next_attempt_at"] = now + next_delay(
                attempts, settings.webhook_backoff_base_seconds, delivery_id=claimed.delivery_id
            )
    return _finish(engine, claimed, status, values)


def _finish(
    engine: Engine, claimed: Claimed, status: DeliveryStatus, values: dict[str, object]
) -> DeliveryStatus | None:
    d = webhook_deliveries.c
    with engine.begin() as conn:
        updated = conn.execute(
            update(webhook_deliveries)
            .where(
                d.id == claimed.delivery_id,
                d.status == DeliveryStatus.DELIVERING.value,
                d.locked_until == claimed.locked_until,
            )
            .values(status=status.value, **values)
        ).rowcount
    if updated != 1:
        log.warning("webhook delivery %s: lease lost, outcome not recorded", claimed.delivery_id)
        return None
    return status


def deliver_due(
    engine: Engine,
    clock: Clock,
    resolve_endpoint: EndpointResolver,
    client: httpx.Client,
    *,
    limit: int = 100,
    settings: Settings,
) -> DeliveryStats:
    """Deliver up to `limit` due deliveries, one claimed batch at a time."""
    assert 1 <= limit <= DELIVER_LIMIT_MAX
    stats = DeliveryStats()
    while stats.claimed < limit:
        batch = min(CLAIM_BATCH, limit - stats.claimed)
        claimed = claim_due(
            engine, clock, resolve_endpoint, batch=batch, lease=lease_for(settings, batch)
        )
        if not claimed:
            break
        stats.claimed += len(claimed)
        for item in claimed:
            _deliver_one(engine, clock, client, item, settings, stats)
    return stats


def _deliver_one(
    engine: Engine,
    clock: Clock,
    client: httpx.Client,
    item: Claimed,
    settings: Settings,
    stats: DeliveryStats,
) -> None:
    if item.resolve_error is None and item.endpoint is None:
        no_endpoint = {"locked_until": None, "last_status_code": None}
        status = _finish(
            engine, item, DeliveryStatus.DEAD, {**no_endpoint, "last_error": NO_ENDPOINT_ERROR}
        )
        stats.no_endpoint += status is not None
    else:
        if item.endpoint is None:
            outcome = Outcome(None, item.resolve_error)
        else:
            timeout = settings.webhook_timeout_seconds
            allow = settings.webhook_allow_private_networks
            outcome = post_signed(client, clock, item, item.endpoint, timeout, allow_private=allow)
        status = record_outcome(engine, clock, item, outcome, settings)
    if status is None:
        stats.lost_lease += 1
    elif status is DeliveryStatus.DELIVERED:
        stats.delivered += 1
    elif status is DeliveryStatus.DEAD:
        stats.dead += 1
    else:
        stats.retried += 1


def run_worker(
    engine: Engine,
    clock: Clock,
    resolve_endpoint: EndpointResolver,
    settings: Settings,
    stop: threading.Event,
    poll_seconds: float = 1.0,
    *,
    limit: int = 100,
    client: httpx.Client | None = None,
) -> DeliveryStats:
    """Deliver until `stop` is set; sleep `poll_seconds` whenever a round found less than
    `limit` to do. A database error is logged and the loop carries on after a poll."""
    assert poll_seconds > 0
    totals = DeliveryStats()
    own_client = client is None
    http = client or httpx.Client(follow_redirects=False)
    try:
        while not stop.is_set():
            try:
                stats = deliver_due(
                    engine, clock, resolve_endpoint, http, limit=limit, settings=settings
                )
            except SQLAlchemyError:
                log.exception("webhook worker: database error; retrying after %ss", poll_seconds)
                stats = DeliveryStats()
            totals.add(stats)
            if stats.claimed:
                log.info("webhook worker: %s", stats)
            if stats.claimed < limit:
                stop.wait(poll_seconds)
    finally:
        if own_client:
            http.close()
    return totals
