"""End-of-day tables: runs and their steps per account partition, statements, charges accrued.

A run is one business date. Each step runs per account partition and records itself when done,
in the transaction that did its work, so a killed run resumes at the first step and partition
not recorded, and a second run of a date finds everything recorded and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from fenqi.store.schema import BigId, metadata

batch_runs = Table(
    "batch_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("business_date", Date, nullable=False, unique=True),
    Column("status", String(12), nullable=False),  # running | done | failed
    Column("executor", String(16), nullable=False),  # local | dask
    Column("partitions", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("figures", JSON, nullable=False),  # per step totals, filled as steps finish
)

batch_steps = Table(
    "batch_steps",
    metadata,
    Column("run_id", BigInteger, ForeignKey("batch_runs.id"), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

statements = Table(
    "statements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("statement_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    Column("penalty_fen", BigInteger, nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("minimum_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("credit_account_id", "statement_date", name="uq_statements_account_date"),
)
Index("ix_statements_due", statements.c.due_date)

# Revolving interest and penalty interest, accrued day by day into one row per account and
# kind; `accrued_through` makes a day's accrual happen once however often the run repeats.
accruals = Table(
    "accruals",
    metadata,
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), primary_key=True),
    Column("kind", String(12), primary_key=True),  # penalty | interest
    Column("accrued_fen", BigInteger, nullable=False),  # total ever accrued
    Column("paid_fen", BigInteger, nullable=False),
    Column("waived_fen", BigInteger, nullable=False),
    Column("accrued_through", Date, nullable=False),
)
