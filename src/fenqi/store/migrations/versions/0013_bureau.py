"""bureau: reports obtained (encrypted), account records reported, negative-record notices

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bureau_reports",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("consent_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error_code", sa.String(length=48), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("report_enc", sa.Text(), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("retention_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bureau_reports")),
    )
    op.create_index("ix_bureau_reports_customer", "bureau_reports", ["customer_id"], unique=False)
    op.create_table(
        "bureau_records",
        sa.Column("credit_account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("past_due_fen", sa.BigInteger(), nullable=False),
        sa.Column("charge_off_fen", sa.BigInteger(), nullable=False),
        sa.Column("special", sa.String(length=12), nullable=False),
        sa.Column("correction", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("credit_account_id", "as_of", name=op.f("pk_bureau_records")),
    )
    op.create_table(
        "bureau_notices",
        sa.Column("credit_account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("credit_account_id", name=op.f("pk_bureau_notices")),
    )


def downgrade() -> None:
    op.drop_table("bureau_notices")
    op.drop_table("bureau_records")
    op.drop_index("ix_bureau_reports_customer", table_name="bureau_reports")
    op.drop_table("bureau_reports")
