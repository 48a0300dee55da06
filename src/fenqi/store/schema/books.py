"""Which book a database is: `live` (real credit, real money) or `test` (test mode).

Test mode is a separate database with the same schema (docs/architecture.md, "Test mode"):
one row here says which of the two a database is, so a database can never serve as the
other's book (`fenqi.store.books.claim_book`).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, String, Table

from fenqi.store.schema import metadata

fenqi_book = Table(
    "fenqi_book",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("mode", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="one_row"),
    CheckConstraint("mode IN ('live', 'test')", name="mode"),
)
