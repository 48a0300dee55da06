"""Concurrent authorizations against one account never pass its limit (SQLite and PostgreSQL).

Forty threads, each in its own connection and transaction, try to hold 3,000 fen against a
limit of 50,000: exactly 16 fit. The approved total must equal what fits, never more.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine

from fenqi.clock import FixedClock
from fenqi.ledger.entry import EntryRequest, PostingSpec
from fenqi.ledger.service import get_balance, post_entry, reconcile, trial_balance
from support.ledger_world import make_world

WORKERS = 40
AMOUNT = 3_000
LIMIT = 50_000


def test_concurrent_holds_never_exceed_limit(db_engine: Engine) -> None:
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    with db_engine.begin() as conn:
        w = make_world(conn, clock, limit_fen=LIMIT)
    start = threading.Barrier(WORKERS)

    def authorize(i: int) -> bool:
        start.wait()
        req = EntryRequest(
            f"auth-{i}", "CNY", (PostingSpec(w.principal, w.merchant, AMOUNT),), pending=True
        )
        with db_engine.begin() as conn:
            return post_entry(conn, clock, req).ok

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(authorize, range(WORKERS)))
    # replays from other threads of the same ids change nothing
    with ThreadPoolExecutor(8) as pool:
        replays = list(
            pool.map(authorize_replay(db_engine, clock, w.principal, w.merchant), range(WORKERS))
        )
    assert replays == results
    approved = sum(results)
    assert approved == LIMIT // AMOUNT
    with db_engine.connect() as conn:
        bal = get_balance(conn, w.principal)
        assert bal.debits_pending == approved * AMOUNT <= LIMIT
        assert trial_balance(conn).balanced
        assert reconcile(conn) == []


def authorize_replay(engine: Engine, clock: FixedClock, principal: int, merchant: int):  # type: ignore[no-untyped-def]
    def run(i: int) -> bool:
        req = EntryRequest(
            f"auth-{i}", "CNY", (PostingSpec(principal, merchant, AMOUNT),), pending=True
        )
        with engine.begin() as conn:
            return post_entry(conn, clock, req).ok

    return run
