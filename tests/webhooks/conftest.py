"""Fixtures for webhook tests: a live local receiver, a fixed clock, small retry settings."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fenqi.clock import FixedClock
from fenqi.settings import Settings
from webhooks.webhook_receiver import START, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        webhook_max_attempts=4,
        webhook_backoff_base_seconds=30,
        webhook_timeout_seconds=5.0,
        webhook_allow_private_networks=True,  # the receivers listen on 127.0.0.1
    )


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a local port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"
