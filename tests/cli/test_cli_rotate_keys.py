"""Key rotation through the CLI: customers and webhook signing secrets re-encrypted under the
new active key, readable; a secret an older version stored in plain text is sealed."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select

from fenqi.clock import FixedClock
from fenqi.credit import customers
from fenqi.privacy.crypto import KeyRing
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.parties import customers as customers_t
from fenqi.store.schema.webhooks import webhook_endpoints
from fenqi.webhooks.endpoints import resolve_endpoint, set_endpoint

SEALED = "whsec_" + "s" * 40
PLAIN = "whsec_" + "p" * 40


def test_rotate_keys(db_url: str, tmp_path: Path) -> None:
    old, new, blind = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3))
    engine = make_engine(db_url)
    create_all(engine)
    ring = KeyRing.parse(f"k1:{old}", "k1", blind)
    clock = FixedClock.on(date(2026, 1, 2))
    ident = customers.check_identity("李四", "11010519491231002X", "13912345678", clock.today())
    with engine.begin() as conn:
        from fenqi.store.schema.parties import merchants

        conn.execute(
            merchants.insert().values(
                id="m_x", name="x", category="general", status="active", created_at=clock.now()
            )
        )
        cid, _ = customers.register(conn, clock, ring, ident, "3k_6k", "m_x")
        set_endpoint(conn, clock, "m_x", "https://shop.example/hooks", SEALED, ring)
        conn.execute(  # as stored before secrets were sealed
            webhook_endpoints.insert().values(
                merchant_id="m_old",
                url="https://old.example/hooks",
                secret=PLAIN,
                key_id=None,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        stored = conn.execute(
            select(webhook_endpoints.c.secret).where(webhook_endpoints.c.merchant_id == "m_x")
        ).scalar_one()
        assert SEALED not in stored  # never in plain text
    env = {
        **os.environ,
        "FENQI_DATABASE_URL": db_url,
        "FENQI_DATA_KEYS": f"k1:{old},k2:{new}",
        "FENQI_DATA_KEY_ACTIVE": "k2",
        "FENQI_BLIND_INDEX_KEY": blind,
    }
    out = subprocess.run(
        [sys.executable, "-m", "fenqi.cli", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "re-encrypted 1 customers and 2 webhook secrets under key k2" in out.stdout
    rotated = KeyRing.parse(f"k1:{old},k2:{new}", "k2", blind)
    with engine.connect() as conn:
        assert conn.execute(select(customers_t.c.key_id)).scalar_one() == "k2"
        assert customers.reveal(conn, rotated, cid)["phone"] == "13912345678"
        # lookups by keyed hash still find the shopper (the blind-index key did not change)
        assert customers.find(conn, rotated, phone="13912345678") == [cid]
        key_ids = conn.execute(select(webhook_endpoints.c.key_id)).scalars().all()
        assert key_ids == ["k2", "k2"]
        for merchant, secret in (("m_x", SEALED), ("m_old", PLAIN)):
            endpoint = resolve_endpoint(conn, merchant, rotated)
            assert endpoint is not None and endpoint.secret == secret.encode()
    engine.dispose()
