"""Insert-if-absent on both SQLite and PostgreSQL (ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from fenqi.store.prepared import Prepared


def conflict_insert(dialect_name: str, table: Table) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for the two databases fenqi runs on."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database {dialect_name!r}: use sqlite or postgresql")


@lru_cache(maxsize=256)
def _statement(
    dialect_name: str, table: Table, columns: tuple[str, ...], index_elements: tuple[str, ...]
) -> Prepared:
    """Built and compiled once per shape, from bind parameters only, so each call reuses it
    (it runs on idempotency claims and ledger account look-ups of every request)."""
    # RETURNING tells reliably whether a row went in (psycopg reports no rowcount here)
    return Prepared(
        conflict_insert(dialect_name, table)
        .values({c: bindparam(f"v_{c}") for c in columns})
        .on_conflict_do_nothing(index_elements=list(index_elements))
        .returning(table.c[index_elements[0]])
    )


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], index_elements: list[str]
) -> int:
    """Insert a row unless one with the same key exists; returns rows inserted (0 or 1)."""
    stmt = _statement(conn.dialect.name, table, tuple(values), tuple(index_elements))
    params = {f"v_{c}": v for c, v in values.items()}
    return 0 if stmt.run(conn, params).first() is None else 1
