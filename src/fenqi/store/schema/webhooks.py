"""Webhook tables: a transactional outbox of events, their deliveries, and shops' endpoints.

Why an outbox: an event is written in the same database transaction as the change it reports
(Fineract's reliable event framework), so a committed change always has its event and a rolled
back one never does. A worker delivers later, at least once; each attempt's outcome is kept on
the delivery row, and a replay is a new delivery row for the same event.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from fenqi.store.schema import BigId, metadata

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),  # public id, "evt_..."
    Column("merchant_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),  # e.g. "order.captured"
    # The exact JSON body sent to the shop (the envelope), fixed at enqueue so that every
    # attempt and every replay sends the same bytes.
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_webhook_events_merchant", webhook_events.c.merchant_id, webhook_events.c.id)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_row_id", BigInteger, ForeignKey("webhook_events.id"), nullable=False),
    Column("merchant_id", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivering | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # A worker's lease while `delivering`: once it passes, another worker may claim the row, so
    # a crashed worker's deliveries come back.
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "status IN ('pending', 'delivering', 'delivered', 'dead')", name="status_known"
    ),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
)
# The worker's two claim queries: due pending rows, and delivering rows whose lease expired.
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.status,
    webhook_deliveries.c.next_attempt_at,
)
Index(
    "ix_webhook_deliveries_lease",
    webhook_deliveries.c.status,
    webhook_deliveries.c.locked_until,
)
Index(
    "ix_webhook_deliveries_merchant",
    webhook_deliveries.c.merchant_id,
    webhook_deliveries.c.id,
)
Index("ix_webhook_deliveries_event", webhook_deliveries.c.event_row_id)

# The default endpoint store: one URL and signing secret per shop. The secret is sealed with the
# platform's data keys (AES-256-GCM, fenqi.privacy.crypto), `key_id` naming the key; a NULL key id
# is a secret stored in plain text before migration 0007, read as it is until `fenqi
# rotate-keys` seals it. The worker reads endpoints through a resolver of (conn, merchant_id).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # public id the shop manages it by ("we_..."); NULL for one set before migration 0014
    Column("endpoint_id", String(40), nullable=True),
    # while a secret is rotated: the previous secret (sealed like `secret`) and until when it
    # signs deliveries too (every delivery then carries one `v1=` per secret)
    Column("previous_secret", Text, nullable=True),
    Column("previous_key_id", String(32), nullable=True),
    Column("previous_expires_at", DateTime(timezone=True), nullable=True),
)

# The event types a shop's endpoint subscribes to. No row for a shop: every event type (the
# default, and what endpoints set before migration 0014 get). Checked when an event is written:
# an event of a type the endpoint does not subscribe to gets no delivery.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("event_type", String(64), primary_key=True),
)
