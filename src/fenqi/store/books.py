"""The live book and the test book: two databases with one schema.

Test mode (docs/api.md, "Test mode") keeps everything a test key makes in a database of its
own, the test book: customers, credit accounts, orders, captures, refunds, repayments, ledger
entries, webhook events. A query on the live database cannot see test data, whatever filter
it forgets, and the end of day, reports, funding and bureau files of the live book never meet
it. Each database says which book it is in `fenqi_book` (`claim_book`), so one can never serve
as the other. An engine on the test book is registered here (`mark_test_book`) so that code
holding only a connection can tell (`is_test_book`: token prefixes, the webhook envelope's
`livemode`) without a query.
"""

from __future__ import annotations

from typing import Literal
from weakref import WeakSet

from sqlalchemy import Connection, Engine, select

from fenqi.clock import Clock
from fenqi.errors import FenqiError
from fenqi.store.schema.books import fenqi_book
from fenqi.store.upsert import insert_ignore

Mode = Literal["live", "test"]

# Bearer tokens of test mode: a shop's test API key and the shopper sessions it opens. The
# prefix is part of the secret (its hash is what is stored), so it cannot be forged onto a
# live key; it only says which book to look the token up in.
TEST_KEY_PREFIX = "sk_test_"
TEST_SESSION_PREFIX = "st_test_"
TEST_TOKEN_PREFIXES = (TEST_KEY_PREFIX, TEST_SESSION_PREFIX)

_TEST_ENGINES: WeakSet[Engine] = WeakSet()


class BookMismatch(FenqiError):
    code = "book_mismatch"
    http_status = 500


def mark_test_book(engine: Engine) -> Engine:
    """Register `engine` as one on the test book; returns it."""
    _TEST_ENGINES.add(engine)
    return engine


def is_test_book(conn: Connection) -> bool:
    """True if `conn` is on the test book (no query: the engine was marked)."""
    return conn.engine in _TEST_ENGINES


def wants_test_book(authorization: str | None) -> bool:
    """True if an `Authorization: Bearer …` header carries a test-mode token."""
    return (
        authorization is not None
        and len(authorization) > 7
        and authorization[7:].lstrip().startswith(TEST_TOKEN_PREFIXES)
    )


def claim_book(engine: Engine, mode: Mode, clock: Clock) -> None:
    """Record that this (migrated) database is the `mode` book, or check that it already is;
    `BookMismatch` if it is the other book (FENQI_DATABASE_URL and FENQI_TEST_DATABASE_URL
    naming one database, or a test book named as the live one)."""
    with engine.begin() as conn:
        insert_ignore(conn, fenqi_book, {"id": 1, "mode": mode, "created_at": clock.now()}, ["id"])
        found = conn.execute(select(fenqi_book.c.mode)).scalar_one()
    if found != mode:
        raise BookMismatch(
            f"this database is fenqi's {found} book and cannot serve as the {mode} book: "
            "FENQI_DATABASE_URL (live) and FENQI_TEST_DATABASE_URL (test mode) must name "
            "two different databases"
        )


def book_of(conn: Connection) -> str | None:
    """The book this database says it is ('live', 'test'), or None if not yet claimed."""
    found = conn.execute(select(fenqi_book.c.mode)).scalar_one_or_none()
    return None if found is None else str(found)
