"""funding: funders' state, per-borrower exposure, plan tranches, movements, daily settlement

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funder_state",
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("lent_on", sa.Date(), nullable=True),
        sa.Column("lent_on_day_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_cap_fen", sa.BigInteger(), nullable=True),
        sa.Column("day_cap_fen", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "outstanding_fen >= 0 AND lent_on_day_fen >= 0",
            name=op.f("ck_funder_state_non_negative"),
        ),
        sa.PrimaryKeyConstraint("funder_id", name=op.f("pk_funder_state")),
    )
    op.create_table(
        "funder_exposure",
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("cap_fen", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("outstanding_fen >= 0", name=op.f("ck_funder_exposure_non_negative")),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["credit_accounts.id"],
            name=op.f("fk_funder_exposure_credit_account_id_credit_accounts"),
        ),
        sa.PrimaryKeyConstraint("credit_account_id", "funder_id", name=op.f("pk_funder_exposure")),
    )
    op.create_table(
        "funding_tranches",
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("program_id", sa.String(length=32), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("charged_off_fen", sa.BigInteger(), nullable=False),
        sa.Column("recovered_fen", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outstanding_fen >= 0 AND outstanding_fen <= principal_fen "
            "AND recovered_fen >= 0 AND recovered_fen <= charged_off_fen",
            name=op.f("ck_funding_tranches_within_principal"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["credit_accounts.id"],
            name=op.f("fk_funding_tranches_credit_account_id_credit_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["installment_plans.id"],
            name=op.f("fk_funding_tranches_plan_id_installment_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_funding_tranches_ledger_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("plan_id", "funder_id", name=op.f("pk_funding_tranches")),
    )
    op.create_index(
        "ix_funding_tranches_account", "funding_tranches", ["credit_account_id"], unique=False
    )
    op.create_index(
        "ix_funding_tranches_date",
        "funding_tranches",
        ["business_date", "funder_id"],
        unique=False,
    )
    op.create_table(
        "funding_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("income_fen", sa.BigInteger(), nullable=False),
        sa.Column("due_fen", sa.BigInteger(), nullable=False),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_funding_movements_ledger_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_movements")),
        sa.UniqueConstraint("client_id", "funder_id", name="uq_funding_movements_client_funder"),
    )
    op.create_index(
        "ix_funding_movements_date",
        "funding_movements",
        ["business_date", "funder_id"],
        unique=False,
    )
    op.create_table(
        "funding_settlements",
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("disbursed_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_collected_fen", sa.BigInteger(), nullable=False),
        sa.Column("income_collected_fen", sa.BigInteger(), nullable=False),
        sa.Column("losses_fen", sa.BigInteger(), nullable=False),
        sa.Column("recoveries_fen", sa.BigInteger(), nullable=False),
        sa.Column("due_to_funder_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("funder_id", "business_date", name=op.f("pk_funding_settlements")),
    )


def downgrade() -> None:
    op.drop_table("funding_settlements")
    op.drop_index("ix_funding_movements_date", table_name="funding_movements")
    op.drop_table("funding_movements")
    op.drop_index("ix_funding_tranches_date", table_name="funding_tranches")
    op.drop_index("ix_funding_tranches_account", table_name="funding_tranches")
    op.drop_table("funding_tranches")
    op.drop_table("funder_exposure")
    op.drop_table("funder_state")
