"""The outbox on SQLite and PostgreSQL: enqueue joins the caller's transaction, list pages by
cursor, replay makes a new delivery for a finished event only."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, func, select, update

from fenqi.clock import FixedClock
from fenqi.store.schema.webhooks import webhook_deliveries, webhook_events
from fenqi.webhooks.errors import EventNotFound, InvalidEvent, ReplayConflict
from fenqi.webhooks.outbox import (
    DeliveryStatus,
    EventType,
    enqueue,
    get_event,
    list_deliveries,
    purge_finished,
    replay,
)


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(webhook_events)).scalar_one()
        deliveries = conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()
    return events, deliveries


def test_enqueue_writes_event_and_pending_delivery(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        event_id = enqueue(
            conn, clock, "m1", EventType.ORDER_CAPTURED, {"order_id": "o1", "amount_fen": 1200}
        )
    assert event_id.startswith("evt_")
    with db_engine.connect() as conn:
        event = get_event(conn, event_id)
        [delivery] = list_deliveries(conn)
    assert event.merchant_id == "m1" and event.type == "order.captured"
    assert event.envelope() == {
        "id": event_id,
        "type": "order.captured",
        "created_at": "2026-03-01T08:00:00.000Z",
        "livemode": True,  # an event of the live book (test mode's say false)
        "data": {"order_id": "o1", "amount_fen": 1200},
    }
    assert json.loads(event.body) == event.envelope()
    assert delivery.event_id == event_id and delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 0 and delivery.next_attempt_at == clock.now()


def test_rolled_back_transaction_leaves_no_event(db_engine: Engine, clock: FixedClock) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db_engine.begin() as conn:
        enqueue(conn, clock, "m1", "order.refunded", {"order_id": "o1"})
        assert counts_in(conn) == (1, 1)  # visible inside the transaction ...
        raise Boom  # ... and gone when the caller's change is rolled back
    assert counts(db_engine) == (0, 0)


def counts_in(conn: Connection) -> tuple[int, int]:
    return (
        conn.execute(select(func.count()).select_from(webhook_events)).scalar_one(),
        conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one(),
    )


@pytest.mark.parametrize(
    ("merchant", "event_type", "data", "field"),
    [
        ("", "order.captured", {}, "merchant_id"),
        ("m1", "Order Captured", {}, "type"),
        ("m1", "order.", {}, "type"),
        ("m1", "x" * 65, {}, "type"),
        ("m1", "order.captured", {"amount": Decimal("1.5")}, "data"),
        ("m1", "order.captured", {"x": float("nan")}, "data"),
        ("m1", "order.captured", {"blob": "x" * 300_000}, "data"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    db_engine: Engine,
    clock: FixedClock,
    merchant: str,
    event_type: str,
    data: dict[str, object],
    field: str,
) -> None:
    with db_engine.begin() as conn, pytest.raises(InvalidEvent) as info:
        enqueue(conn, clock, merchant, event_type, data)
    assert info.value.detail["field"] == field and info.value.message.startswith(field)
    assert counts(db_engine) == (0, 0)


def test_list_pages_by_cursor_and_filters(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        for i in range(7):
            enqueue(conn, clock, "m1" if i % 2 else "m2", "order.captured", {"i": i})
    with db_engine.connect() as conn:
        seen: list[int] = []
        after = 0
        while page := list_deliveries(conn, limit=3, after_id=after):
            seen += [d.id for d in page]
            after = page[-1].id
        assert len(seen) == 7 and seen == sorted(seen)
        assert len(list_deliveries(conn, merchant_id="m1")) == 3
        assert list_deliveries(conn, status="dead") == []
        assert len(list_deliveries(conn, status=DeliveryStatus.PENDING)) == 7
        with pytest.raises(ValueError):
            list_deliveries(conn, limit=0)
        with pytest.raises(ValueError):
            list_deliveries(conn, status="lost")


def test_replay_only_when_no_delivery_is_open(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        event_id = enqueue(conn, clock, "m1", "plan.paid_off", {"plan_id": "p1"})
    with db_engine.begin() as conn, pytest.raises(ReplayConflict) as info:
        replay(conn, clock, event_id)
    assert info.value.http_status == 409
    with db_engine.begin() as conn:
        conn.execute(update(webhook_deliveries).values(status="dead", attempts=8))
    with db_engine.begin() as conn:
        delivery_id = replay(conn, clock, event_id)
    with db_engine.connect() as conn:
        rows = list_deliveries(conn, event_id=event_id)
    assert [(d.id, d.status) for d in rows][-1] == (delivery_id, DeliveryStatus.PENDING)
    assert rows[0].status is DeliveryStatus.DEAD and len(rows) == 2


def test_unknown_and_other_merchants_events_are_not_found(
    db_engine: Engine, clock: FixedClock
) -> None:
    with db_engine.begin() as conn:
        event_id = enqueue(conn, clock, "m1", "order.voided", {})
    with db_engine.begin() as conn:
        conn.execute(update(webhook_deliveries).values(status="delivered"))
    with db_engine.begin() as conn:
        with pytest.raises(EventNotFound):
            get_event(conn, "evt_nope")
        with pytest.raises(EventNotFound):
            get_event(conn, event_id, merchant_id="m2")
        with pytest.raises(EventNotFound):
            replay(conn, clock, event_id, merchant_id="m2")
        assert replay(conn, clock, event_id, merchant_id="m1") > 0


def test_purge_keeps_recent_open_and_dead_events(db_engine: Engine, clock: FixedClock) -> None:
    old_clock = FixedClock(clock.now() - timedelta(days=40))
    with db_engine.begin() as conn:
        delivered = enqueue(conn, old_clock, "m1", "order.captured", {})
        dead = enqueue(conn, old_clock, "m1", "order.captured", {})
        pending = enqueue(conn, old_clock, "m1", "order.captured", {})
        recent = enqueue(conn, clock, "m1", "order.captured", {})
    with db_engine.begin() as conn:
        for event_id, status in [(delivered, "delivered"), (dead, "dead"), (recent, "delivered")]:
            [d] = list_deliveries(conn, event_id=event_id)
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == d.id)
                .values(status=status)
            )
    cutoff = clock.now() - timedelta(days=30)
    with db_engine.begin() as conn:
        assert purge_finished(conn, created_before=cutoff) == 1
        assert purge_finished(conn, created_before=cutoff) == 0
    with db_engine.connect() as conn:
        with pytest.raises(EventNotFound):
            get_event(conn, delivered)
        for kept in (dead, pending, recent):
            assert get_event(conn, kept).event_id == kept
    with db_engine.begin() as conn:
        assert purge_finished(conn, created_before=cutoff, include_dead=True) == 1
    assert counts(db_engine) == (2, 2)
