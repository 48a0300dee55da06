"""index of the plan lines whose fee or interest is still to be earned

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNBILLED = sa.text("billed_on IS NULL AND fee_fen + interest_fen > 0")


def upgrade() -> None:
    op.create_index(
        "ix_plan_lines_unbilled",
        "plan_lines",
        ["due_date", "credit_account_id"],
        unique=False,
        sqlite_where=UNBILLED,
        postgresql_where=UNBILLED,
    )


def downgrade() -> None:
    op.drop_index("ix_plan_lines_unbilled", table_name="plan_lines")
