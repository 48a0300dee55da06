"""A shop's endpoint managed in the database (both databases): a rotation keeps the previous
secret sealed beside the new one, `fenqi rotate-keys` (seal_secrets) re-seals both, and the
worker signs with both only during the overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from fenqi.clock import FixedClock
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.webhooks import webhook_endpoints
from fenqi.webhooks.endpoints import resolve_endpoint, seal_secrets
from fenqi.webhooks.manage import create_endpoint, rotate_secret

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_rotation_survives_a_data_key_rotation(db_engine: Engine) -> None:
    clock = FixedClock(START)
    ring = KeyRing.generate("k1")
    with db_engine.begin() as conn:
        made = create_endpoint(conn, clock, "m_a", "https://shop.example.com/hooks", ["*"], ring)
        rotated = rotate_secret(conn, clock, "m_a", made["id"], 2, ring)
    new_ring = ring.with_new_active_key("k2")
    with db_engine.begin() as conn:
        assert seal_secrets(conn, new_ring) == 2  # the current and the previous secret
        row = conn.execute(select(webhook_endpoints)).one()
        assert row.key_id == "k2" and row.previous_key_id == "k2"
        endpoint = resolve_endpoint(conn, "m_a", new_ring)
    assert endpoint is not None
    both = [rotated["secret"].encode(), made["secret"].encode()]
    assert endpoint.secrets_at(START + timedelta(hours=2) - timedelta(seconds=1)) == both
    assert endpoint.secrets_at(START + timedelta(hours=2)) == both[:1]
