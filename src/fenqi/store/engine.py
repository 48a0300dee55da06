"""Engine set-up for SQLite (embedded default, WAL) and PostgreSQL (production).

SQLite: WAL journal, a busy timeout, and BEGIN IMMEDIATE for every transaction so that two
writers queue on the database lock instead of failing on a read-to-write upgrade. PostgreSQL:
READ COMMITTED; safety comes from conditional updates and row locks in the SQL itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from fenqi.store.prepared import lean_savepoints

SQLITE_CACHE_KIB = 64 * 1024
# PostgreSQL connections per process (FENQI_DB_POOL_SIZE, FENQI_DB_MAX_OVERFLOW override them):
# each API worker holds up to pool + overflow, so workers × (pool + overflow) must fit in the
# server's max_connections with room for the webhook worker, the end of day and psql.
POOL_SIZE = 10
POOL_OVERFLOW = 5


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(parsed, **kwargs)
        lean_savepoints(engine.dialect)
        return engine
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:  # an in-memory database lives in one connection: no pool to size
        for name in ("pool_size", "max_overflow", "pool_timeout"):
            kwargs.pop(name, None)
    engine = create_engine(
        parsed, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # a page cache of up to 64 MB per connection instead of SQLite's 2 MB, taken only as
        # pages are read: a database of millions of accounts (a long simulation) otherwise
        # reads the same index pages back from the OS again and again
        cur.execute(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    lean_savepoints(engine.dialect)
    return engine


def pool_capacity(engine: Engine) -> int:
    """The most connections this engine opens at once (pool + overflow)."""
    size = getattr(engine.pool, "size", None)
    overflow = getattr(engine.pool, "_max_overflow", 0)
    if not callable(size):
        return 1
    return int(size()) + max(int(overflow), 0)


def connection_budget(engine: Engine, processes: int) -> tuple[int, int] | None:
    """(connections `processes` such engines may open, connections the server allows for
    ordinary users), or None when the database has no such limit (SQLite)."""
    if is_sqlite(engine):
        return None
    with engine.connect() as conn:
        allowed = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
        reserved = int(conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
    return processes * pool_capacity(engine), allowed - reserved


def create_all(engine: Engine) -> None:
    """Create every table (tests and fresh demos); production uses `fenqi db upgrade`."""
    from fenqi.store.schema import load_all

    load_all().create_all(engine)
