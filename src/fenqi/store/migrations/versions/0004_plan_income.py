"""income recognized on a plan moves to its own narrow table, plan_income

Billing adds the fee and interest it earns to most installment plans every month; on the plan row
that rewrote every page of the plans on a statement day.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_income",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("fee_earned_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_earned_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "fee_earned_fen >= 0 AND interest_earned_fen >= 0",
            name=op.f("ck_plan_income_earned_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["installment_plans.id"],
            name=op.f("fk_plan_income_plan_id_installment_plans"),
        ),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_plan_income")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO plan_income (plan_id, fee_earned_fen, interest_earned_fen) "
        "SELECT id, fee_earned_fen, interest_earned_fen FROM installment_plans "
        "WHERE fee_earned_fen <> 0 OR interest_earned_fen <> 0"
    )
    # a plain DROP COLUMN (SQLite 3.35 and later have it): the columns carry no constraint or
    # index, so neither database has to copy the table
    op.drop_column("installment_plans", "fee_earned_fen")
    op.drop_column("installment_plans", "interest_earned_fen")


def downgrade() -> None:
    for name in ("fee_earned_fen", "interest_earned_fen"):
        op.add_column(
            "installment_plans",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"),
        )
    op.execute(
        "UPDATE installment_plans SET "
        "fee_earned_fen = (SELECT fee_earned_fen FROM plan_income WHERE plan_id = id), "
        "interest_earned_fen = (SELECT interest_earned_fen FROM plan_income WHERE plan_id = id) "
        "WHERE id IN (SELECT plan_id FROM plan_income)"
    )
    op.drop_table("plan_income")
