"""The worker against a real local HTTP receiver, on SQLite and PostgreSQL. Time moves only by
the FixedClock, so no test depends on timing."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Connection, Engine

from fenqi.clock import FixedClock
from fenqi.privacy.crypto import KeyRing
from fenqi.settings import Settings
from fenqi.webhooks.endpoints import Endpoint, endpoint_resolver, set_endpoint
from fenqi.webhooks.outbox import Delivery, DeliveryStatus, enqueue, list_deliveries, replay
from fenqi.webhooks.signing import verify
from fenqi.webhooks.worker import (
    NO_ENDPOINT_ERROR,
    DeliveryStats,
    claim_due,
    deliver_due,
    lease_for,
    record_outcome,
    run_worker,
)
from fenqi.webhooks.worker import Outcome as WorkerOutcome
from webhooks.webhook_receiver import SECRET, Receiver

KEYS = KeyRing.generate()
resolve_endpoint = endpoint_resolver(KEYS)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def setup_shop(engine: Engine, clock: FixedClock, url: str, merchant: str = "m1") -> None:
    with engine.begin() as conn:
        set_endpoint(conn, clock, merchant, url, SECRET, KEYS, allow_private=True)


def emit(engine: Engine, clock: FixedClock, merchant: str = "m1", **data: object) -> str:
    with engine.begin() as conn:
        return enqueue(conn, clock, merchant, "order.captured", {"order_id": "o1", **data})


def run(
    engine: Engine, clock: FixedClock, client: httpx.Client, settings: Settings
) -> DeliveryStats:
    return deliver_due(engine, clock, resolve_endpoint, client, settings=settings)


def only_delivery(engine: Engine, event_id: str) -> Delivery:
    with engine.connect() as conn:
        [delivery] = list_deliveries(conn, event_id=event_id)
    return delivery


def test_delivered_once_signed_with_headers(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    event_id = emit(db_engine, clock, amount_fen=1200)
    stats = run(db_engine, clock, client, settings)
    assert (stats.claimed, stats.delivered) == (1, 1)
    assert run(db_engine, clock, client, settings).claimed == 0  # nothing left: once only
    [req] = receiver.requests
    assert req.path == "/hooks"
    assert req.headers["Fenqi-Event-Id"] == event_id
    assert req.headers["Fenqi-Event-Type"] == "order.captured"
    assert req.headers["Content-Type"] == "application/json"
    now = int(clock.now().timestamp())
    signature = req.headers["Fenqi-Signature"]
    assert signature.startswith(f"t={now},v1=")
    assert verify(SECRET.encode(), signature, req.body, now=now)
    assert not verify(b"another-secret-entirely", signature, req.body, now=now)
    assert not verify(SECRET.encode(), signature, req.body, now=now + 301)
    envelope = json.loads(req.body)
    assert envelope["id"] == event_id and envelope["data"] == {"order_id": "o1", "amount_fen": 1200}
    delivery = only_delivery(db_engine, event_id)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert delivery.delivered_at == clock.now() and delivery.last_status_code == 200
    assert delivery.locked_until is None


def test_500_twice_then_200_takes_three_attempts_with_backoff(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    event_id = emit(db_engine, clock)
    receiver.fail_times = 2
    retry_at = []
    for _ in range(2):
        assert run(db_engine, clock, client, settings).retried == 1
        d = only_delivery(db_engine, event_id)
        assert d.status is DeliveryStatus.PENDING and d.last_status_code == 500
        assert d.last_error == "HTTP 500" and d.next_attempt_at > clock.now()
        retry_at.append(d.next_attempt_at - clock.now())
        # not due yet: a second before the retry nothing is sent
        clock.set(d.next_attempt_at - timedelta(seconds=1))
        assert run(db_engine, clock, client, settings).claimed == 0
        clock.advance(timedelta(seconds=1))
    assert retry_at[0] < retry_at[1]
    assert timedelta(seconds=30) <= retry_at[0] < timedelta(seconds=46)
    assert run(db_engine, clock, client, settings).delivered == 1
    d = only_delivery(db_engine, event_id)
    assert d.status is DeliveryStatus.DELIVERED and d.attempts == 3 and d.last_error is None
    assert len(receiver.requests) == 3
    assert len({r.headers["Fenqi-Signature"] for r in receiver.requests}) == 3  # fresh t= each
    assert len({r.body for r in receiver.requests}) == 1  # same bytes every attempt


def test_always_failing_goes_dead_then_replay_delivers(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    event_id = emit(db_engine, clock)
    receiver.always_fail = True
    receiver.fail_status = 503
    for _ in range(settings.webhook_max_attempts):
        assert run(db_engine, clock, client, settings).claimed == 1
        clock.advance(timedelta(hours=7))  # past any backoff (cap 6 h)
    d = only_delivery(db_engine, event_id)
    assert d.status is DeliveryStatus.DEAD and d.attempts == settings.webhook_max_attempts
    assert d.last_status_code == 503
    assert run(db_engine, clock, client, settings).claimed == 0  # dead letters stay put
    assert len(receiver.requests) == settings.webhook_max_attempts
    with db_engine.connect() as conn:
        assert [x.event_id for x in list_deliveries(conn, status="dead")] == [event_id]

    receiver.always_fail = False
    with db_engine.begin() as conn:
        new_id = replay(conn, clock, event_id)
    stats = run(db_engine, clock, client, settings)
    assert stats.delivered == 1
    with db_engine.connect() as conn:
        rows = list_deliveries(conn, event_id=event_id)
    assert [(r.id, r.status) for r in rows] == [
        (d.id, DeliveryStatus.DEAD),
        (new_id, DeliveryStatus.DELIVERED),
    ]
    assert receiver.requests[-1].headers["Fenqi-Event-Id"] == event_id


def test_connection_refused_is_retried_with_the_error(
    db_engine: Engine,
    clock: FixedClock,
    closed_port_url: str,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, closed_port_url)
    event_id = emit(db_engine, clock)
    assert run(db_engine, clock, client, settings).retried == 1
    d = only_delivery(db_engine, event_id)
    assert d.status is DeliveryStatus.PENDING and d.attempts == 1
    assert d.last_status_code is None and d.last_error and "ConnectError" in d.last_error


def test_no_endpoint_is_dead_letter_and_replayable(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    event_id = emit(db_engine, clock, merchant="m9")
    stats = run(db_engine, clock, client, settings)
    assert (stats.dead, stats.no_endpoint) == (1, 1)
    d = only_delivery(db_engine, event_id)
    assert d.status is DeliveryStatus.DEAD and d.last_error == NO_ENDPOINT_ERROR
    assert d.attempts == 0 and receiver.requests == []
    setup_shop(db_engine, clock, receiver.url, merchant="m9")
    with db_engine.begin() as conn:
        replay(conn, clock, event_id)
    assert run(db_engine, clock, client, settings).delivered == 1
    assert len(receiver.requests) == 1


def test_a_crashed_workers_lease_expires_and_its_late_outcome_is_ignored(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    event_id = emit(db_engine, clock)
    lease = lease_for(settings, 1)
    [crashed] = claim_due(db_engine, clock, resolve_endpoint, batch=1, lease=lease)
    assert only_delivery(db_engine, event_id).status is DeliveryStatus.DELIVERING
    assert run(db_engine, clock, client, settings).claimed == 0  # leased: not due
    clock.advance(lease)
    assert run(db_engine, clock, client, settings).delivered == 1
    # the first worker wakes up and reports: its lease is gone, nothing changes
    assert record_outcome(db_engine, clock, crashed, WorkerOutcome(500, None), settings) is None
    d = only_delivery(db_engine, event_id)
    assert d.status is DeliveryStatus.DELIVERED and d.attempts == 1


def test_run_worker_delivers_until_stopped(
    db_engine: Engine, clock: FixedClock, receiver: Receiver, settings: Settings
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    emit(db_engine, clock)
    delivered = threading.Event()
    stop = threading.Event()

    def resolve_and_watch(conn: Connection, merchant_id: str) -> Endpoint | None:
        endpoint = resolve_endpoint(conn, merchant_id)
        delivered.set()
        return endpoint

    totals: list[DeliveryStats] = []
    thread = threading.Thread(
        target=lambda: totals.append(
            run_worker(db_engine, clock, resolve_and_watch, settings, stop, poll_seconds=0.05)
        )
    )
    thread.start()
    try:
        assert delivered.wait(30)  # a bound for a hung worker, not a timing assumption
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert totals[0].delivered == 1 and len(receiver.requests) == 1


def test_concurrent_workers_never_deliver_a_delivery_twice(
    db_engine: Engine, clock: FixedClock, receiver: Receiver, settings: Settings
) -> None:
    setup_shop(db_engine, clock, receiver.url)
    with db_engine.begin() as conn:
        event_ids = [enqueue(conn, clock, "m1", "order.captured", {"i": i}) for i in range(60)]
    workers = 4
    start = threading.Barrier(workers)
    results: list[DeliveryStats] = []
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client() as client:
            start.wait()
            stats = deliver_due(db_engine, clock, resolve_endpoint, client, settings=settings)
        with lock:
            results.append(stats)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    received = Counter(r.headers["Fenqi-Event-Id"] for r in receiver.requests)
    assert received == Counter(event_ids)  # each exactly once
    assert sum(s.delivered for s in results) == sum(s.claimed for s in results) == 60
    assert all(s.lost_lease == 0 for s in results)
    with db_engine.connect() as conn:
        rows = list_deliveries(conn, limit=100)
    assert {r.status for r in rows} == {DeliveryStatus.DELIVERED}


def test_a_failing_resolver_fails_only_its_shops_deliveries(
    db_engine: Engine,
    clock: FixedClock,
    receiver: Receiver,
    client: httpx.Client,
    settings: Settings,
) -> None:
    setup_shop(db_engine, clock, receiver.url, merchant="good")
    broken = emit(db_engine, clock, merchant="broken")
    good = emit(db_engine, clock, merchant="good")

    def resolver(conn: Connection, merchant_id: str) -> Endpoint | None:
        if merchant_id == "broken":
            conn.exec_driver_sql("SELECT * FROM no_such_table")  # aborts a PG transaction
        return resolve_endpoint(conn, merchant_id)

    stats = deliver_due(db_engine, clock, resolver, client, settings=settings)
    assert (stats.claimed, stats.delivered, stats.retried) == (2, 1, 1)
    assert only_delivery(db_engine, good).status is DeliveryStatus.DELIVERED
    d = only_delivery(db_engine, broken)
    assert d.status is DeliveryStatus.PENDING and d.attempts == 1
    assert d.last_error and d.last_error.startswith("endpoint lookup failed: ")
    assert "no_such_table" in d.last_error
