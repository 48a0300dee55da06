"""bureau: post-loan monitoring runs, account events reported between monthly files;
compliance: the complaints register

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 14:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bureau_monitoring",
        sa.Column("credit_account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error_code", sa.String(length=48), nullable=False),
        sa.Column("bureau_report_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("credit_account_id", "run_date", name=op.f("pk_bureau_monitoring")),
    )
    op.create_index("ix_bureau_monitoring_status", "bureau_monitoring", ["status", "run_date"])
    op.create_table(
        "bureau_events",
        sa.Column("credit_account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=12), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint(
            "credit_account_id", "event_date", "event", name=op.f("pk_bureau_events")
        ),
    )
    op.create_table(
        "complaints",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    op.create_index("ix_complaints_status", "complaints", ["status", "due_on"])
    op.create_index("ix_complaints_customer", "complaints", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_complaints_customer", table_name="complaints")
    op.drop_index("ix_complaints_status", table_name="complaints")
    op.drop_table("complaints")
    op.drop_table("bureau_events")
    op.drop_index("ix_bureau_monitoring_status", table_name="bureau_monitoring")
    op.drop_table("bureau_monitoring")
