"""The demo's shops receive their webhooks on the demo's own server (issue 24, demo friction:
17,359 dead letters because no shop had an endpoint): connected, delivered, listed, and the
receiver refuses a request it cannot verify."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from fenqi.store.schema.webhooks import webhook_deliveries
from fenqi.web.demo_webhooks import connect_shops, receiver_url, replay_unsent
from fenqi.webhooks.endpoints import endpoint_resolver
from fenqi.webhooks.worker import deliver_due
from support.api_server import id_number, running_api


def test_demo_shops_get_a_receiver_and_deliveries_arrive(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_demo")
        api.merchant("m_other")
        assert api.apply(key, id_number(), "13812341234").status_code == 201  # one event
        port = urlsplit(api.base).port
        assert port
        with api.ctx.engine.begin() as conn:
            assert connect_shops(conn, api.ctx, "0.0.0.0", port) == 2
        with api.ctx.engine.begin() as conn:
            assert connect_shops(conn, api.ctx, "0.0.0.0", port) == 0  # each shop once
        with httpx.Client(timeout=10) as client:
            stats = deliver_due(
                api.ctx.engine, api.clock, endpoint_resolver(api.ctx.keys), client,
                settings=api.ctx.settings,
            )  # fmt: skip
        assert stats.delivered == 1 and stats.dead == 0, stats
        with api.ctx.engine.connect() as conn:
            statuses = conn.execute(select(webhook_deliveries.c.status)).scalars().all()
        assert statuses == ["delivered"]
        listed = httpx.get(f"{api.base}/shop/webhooks")
        assert listed.status_code == 200
        assert "application.decided" in listed.text and "m_demo" in listed.text
        forged = httpx.post(
            receiver_url("127.0.0.1", port, "m_demo"),
            content=b'{"id": "evt_x"}',
            headers={"Fenqi-Signature": "t=1,v1=00"},
        )
        assert forged.status_code == 400
        unknown = httpx.post(f"{api.base}/shop/webhooks/nobody", content=b"{}")
        assert unknown.status_code == 400


def test_dead_letters_for_want_of_an_endpoint_are_sent_again(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """A demo served before this change: its events died because no shop had an endpoint."""
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_demo")
        assert api.apply(key, id_number(), "13812341234").status_code == 201
        resolver = endpoint_resolver(api.ctx.keys)
        with httpx.Client(timeout=10) as client:
            first = deliver_due(
                api.ctx.engine, api.clock, resolver, client, settings=api.ctx.settings
            )
            assert first.no_endpoint == 1  # a dead letter
            port = urlsplit(api.base).port
            assert port
            with api.ctx.engine.begin() as conn:
                assert connect_shops(conn, api.ctx, "127.0.0.1", port) == 1
                assert replay_unsent(conn, api.ctx) == 1
            with api.ctx.engine.begin() as conn:
                assert replay_unsent(conn, api.ctx) == 0  # once
            again = deliver_due(
                api.ctx.engine, api.clock, resolver, client, settings=api.ctx.settings
            )
        assert again.delivered == 1, again
        with api.ctx.engine.connect() as conn:
            statuses = sorted(conn.execute(select(webhook_deliveries.c.status)).scalars())
        assert statuses == ["dead", "delivered"]


def test_receiver_url_names_an_address_the_worker_can_reach() -> None:
    assert receiver_url("0.0.0.0", 8000, "s1") == "http://127.0.0.1:8000/shop/webhooks/s1"
    assert receiver_url("::1", 8001, "s1") == "http://[::1]:8001/shop/webhooks/s1"
