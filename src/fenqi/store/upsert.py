"""Insert-if-absent on both SQLite and PostgreSQL (ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(
    conn: Connection, table: Table, values: dict[str, Any], index_elements: list[str]
) -> int:
    """Insert a row unless one with the same key exists; returns rows inserted (0 or 1)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING tells reliably whether a row went in (psycopg reports no rowcount here)
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=index_elements)
        .returning(table.c[index_elements[0]])
    )
    return 0 if conn.execute(stmt).first() is None else 1
