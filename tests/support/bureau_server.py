"""fenqi's bureau service over real HTTP for tests: uvicorn in a thread on a free port, its
own database (a SQLite file or a PostgreSQL schema), a fixed clock, lender tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from sqlalchemy import Engine

from fenqi.bureau.server.app import create_bureau_app
from fenqi.clock import FixedClock
from fenqi.store.engine import make_engine
from support.api_server import free_port

TOKENS = {"fenqi-token-0001": "fenqi", "bank-a-token-0001": "bank_a", "jiebei-token-001": "jiebei"}
TOKEN_OF = {lender: token for token, lender in TOKENS.items()}


@dataclass
class Bureau:
    url: str
    engine: Engine
    clock: FixedClock


@contextmanager
def running_bureau(db_url: str, clock: FixedClock) -> Iterator[Bureau]:
    engine = make_engine(db_url)
    app = create_bureau_app(engine, clock, TOKENS)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "bureau did not start"
    try:
        yield Bureau(f"http://127.0.0.1:{port}", engine, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
