"""compliance: credit-report disputes, data-subject requests

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bureau_disputes",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("record_as_of", sa.Date(), nullable=False),
        sa.Column("item", sa.String(length=24), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("correction_sent", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bureau_disputes")),
    )
    op.create_index(
        "ix_bureau_disputes_account", "bureau_disputes", ["credit_account_id", "status"]
    )
    op.create_index("ix_bureau_disputes_customer", "bureau_disputes", ["customer_id"])
    op.create_table(
        "privacy_requests",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erase_on", sa.Date(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index("ix_privacy_requests_customer", "privacy_requests", ["customer_id"])
    op.create_index("ix_privacy_requests_status", "privacy_requests", ["status", "due_on"])


def downgrade() -> None:
    op.drop_table("privacy_requests")
    op.drop_table("bureau_disputes")
