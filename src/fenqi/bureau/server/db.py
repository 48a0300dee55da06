"""The bureau service's tables: its own MetaData, created by the service itself (not fenqi's
Alembic chain). They can live in their own SQLite file or their own PostgreSQL schema.

Subjects are keyed by the identity number a lender reports or asks about (the resident ID
number for CNY files, the SSN for Metro 2): this is a test double of a bureau, which holds
identity numbers by nature.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

bureau_metadata = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")

cb_accounts = Table(
    "cb_accounts",
    bureau_metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), nullable=False),
    Column("lender", String(32), nullable=False),
    Column("account_ref", String(64), nullable=False),
    Column("portfolio", String(12), nullable=False),  # revolving | installment
    Column("currency", String(3), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=True),
    Column("limit_minor", BigInteger, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("past_due_minor", BigInteger, nullable=False),
    Column("charge_off_minor", BigInteger, nullable=False, default=0),
    Column("status", String(12), nullable=False),  # current | delinquent | charged_off | closed
    Column("dpd", Integer, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("special", String(12), nullable=False, default=""),  # hardship | dispute | ""
    UniqueConstraint("lender", "account_ref", name="uq_cb_accounts_lender_ref"),
)
Index("ix_cb_accounts_subject", cb_accounts.c.subject_id)

# one row per account and month: the status history a report shows (a correction replaces it)
cb_history = Table(
    "cb_history",
    bureau_metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("month", String(7), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("dpd", Integer, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("corrected", Boolean, nullable=False, default=False),
)

cb_inquiries = Table(
    "cb_inquiries",
    bureau_metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), nullable=False),
    Column("lender", String(32), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("authorization_ref", String(64), nullable=False),
    Column("authorized_at", DateTime(timezone=True), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_cb_inquiries_subject", cb_inquiries.c.subject_id)

cb_submissions = Table(
    "cb_submissions",
    bureau_metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("lender", String(32), nullable=False),
    Column("format", String(8), nullable=False),
    Column("records", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status", String(12), nullable=False),  # accepted | rejected
    Column("error", Text, nullable=False, default=""),
)


def create_bureau_tables(engine: Engine) -> None:
    bureau_metadata.create_all(engine)


def upsert(engine_or_dialect: str, table: Table, keys: list[str]) -> Any:
    """An INSERT ... ON CONFLICT (keys) DO UPDATE for the dialect (values given at execute)."""
    stmt: Insert
    if engine_or_dialect == "postgresql":
        pg = postgresql.insert(table)
        cols = {c.name: pg.excluded[c.name] for c in table.c if c.name not in [*keys, "id"]}
        return pg.on_conflict_do_update(index_elements=keys, set_=cols)
    lite = sqlite.insert(table)
    cols = {c.name: lite.excluded[c.name] for c in table.c if c.name not in [*keys, "id"]}
    stmt = lite.on_conflict_do_update(index_elements=keys, set_=cols)
    return stmt
