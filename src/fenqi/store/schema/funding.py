"""Funding tables: funders' running state, plan tranches, per-borrower exposure, movements and
daily settlement figures.

A tranche is one funder's part of one plan's principal; tranches and per-borrower exposure move
with a customer and are keyed by credit_account_id first. A funder's state row holds the
counters its limits are checked against, in the same conditional UPDATE that moves them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
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

# One row per funder: its principal outstanding and its new lending on `lent_on`.
funder_state = Table(
    "funder_state",
    metadata,
    Column("funder_id", String(32), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("lent_on", Date, nullable=True),
    Column("lent_on_day_fen", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the caps last applied (from the funder's file; NULL: none), checked by the same statement
    Column("total_cap_fen", BigInteger, nullable=True),
    Column("day_cap_fen", BigInteger, nullable=True),
    CheckConstraint("outstanding_fen >= 0 AND lent_on_day_fen >= 0", name="non_negative"),
)

# A funder's principal outstanding with one borrower (credit account), for its per-borrower cap.
funder_exposure = Table(
    "funder_exposure",
    metadata,
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), primary_key=True),
    Column("funder_id", String(32), primary_key=True),
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("cap_fen", BigInteger, nullable=True),  # the per-borrower cap last applied
    CheckConstraint("outstanding_fen >= 0", name="non_negative"),
)

# A funder's principal outstanding in one province (the first two digits of the borrowers'
# resident ID numbers; "00": unknown), for its concentration limit per region (migration 0017).
funder_region_exposure = Table(
    "funder_region_exposure",
    metadata,
    Column("funder_id", String(32), primary_key=True),
    Column("region", String(2), primary_key=True),
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("cap_fen", BigInteger, nullable=True),  # the per-region cap last applied
    CheckConstraint("outstanding_fen >= 0", name="non_negative"),
)

funding_tranches = Table(
    "funding_tranches",
    metadata,
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("plan_id", BigInteger, ForeignKey("installment_plans.id"), primary_key=True),
    Column("funder_id", String(32), primary_key=True),
    Column("program_id", String(32), nullable=False),
    Column("share_bp", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("principal_fen", BigInteger, nullable=False),  # funded at allocation
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("charged_off_fen", BigInteger, nullable=False),  # charged off or waived
    Column("recovered_fen", BigInteger, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("ledger_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the borrower's province at allocation ("00": unknown): region exposure and concentration
    Column("region", String(2), nullable=False, server_default="00"),
    CheckConstraint(
        "outstanding_fen >= 0 AND outstanding_fen <= principal_fen "
        "AND recovered_fen >= 0 AND recovered_fen <= charged_off_fen",
        name="within_principal",
    ),
)
Index("ix_funding_tranches_account", funding_tranches.c.credit_account_id)
Index("ix_funding_tranches_date", funding_tranches.c.business_date, funding_tranches.c.funder_id)

# Every change of a tranche (the allocation and each later event), one row per funder: what
# the end of day's settlement adds up by date, and what makes an event idempotent.
funding_movements = Table(
    "funding_movements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("client_id", String(128), nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("plan_id", BigInteger, nullable=False),
    Column("funder_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # allocation | repayment | refund | ...
    Column("business_date", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("income_fen", BigInteger, nullable=False),  # the funder's share of income collected
    # cash the funder is owed because of the event (credited to its funder_cash_due)
    Column("due_fen", BigInteger, nullable=False),
    Column("ledger_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("client_id", "funder_id", name="uq_funding_movements_client_funder"),
)
Index("ix_funding_movements_date", funding_movements.c.business_date, funding_movements.c.funder_id)

# A funder's settlement figures for one business date (the end of day writes them; wiring).
funding_settlements = Table(
    "funding_settlements",
    metadata,
    Column("funder_id", String(32), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("disbursed_fen", BigInteger, nullable=False),
    Column("principal_collected_fen", BigInteger, nullable=False),
    Column("income_collected_fen", BigInteger, nullable=False),
    Column("losses_fen", BigInteger, nullable=False),
    Column("recoveries_fen", BigInteger, nullable=False),
    # what the platform owes the funder for the day (negative: what the funder owes)
    Column("due_to_funder_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One end-of-day partition's share of a funder's settlement figures for a date (the step
# `funding.eod.settle_partition`): rerunning a partition replaces its row and moves the day's
# totals in funding_settlements by the difference, so partitions may run in any order, at once.
funding_settlement_parts = Table(
    "funding_settlement_parts",
    metadata,
    Column("funder_id", String(32), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("part_lo", BigInteger, primary_key=True),  # the partition's first credit account id
    Column("part_hi", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("disbursed_fen", BigInteger, nullable=False),
    Column("principal_collected_fen", BigInteger, nullable=False),
    Column("income_collected_fen", BigInteger, nullable=False),
    Column("losses_fen", BigInteger, nullable=False),
    Column("recoveries_fen", BigInteger, nullable=False),
    Column("due_to_funder_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
