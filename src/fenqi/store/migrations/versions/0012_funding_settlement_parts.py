"""funding settlement per end-of-day partition

`funding_settlement_parts`: one row per funder, business date and partition, written by the
end of day's funding step (`fenqi.funding.eod.settle_partition`); the day's totals stay in
`funding_settlements`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funding_settlement_parts",
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("part_lo", sa.BigInteger(), nullable=False),
        sa.Column("part_hi", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("disbursed_fen", sa.BigInteger(), nullable=False),
        sa.Column("principal_collected_fen", sa.BigInteger(), nullable=False),
        sa.Column("income_collected_fen", sa.BigInteger(), nullable=False),
        sa.Column("losses_fen", sa.BigInteger(), nullable=False),
        sa.Column("recoveries_fen", sa.BigInteger(), nullable=False),
        sa.Column("due_to_funder_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "funder_id", "business_date", "part_lo", name=op.f("pk_funding_settlement_parts")
        ),
    )


def downgrade() -> None:
    op.drop_table("funding_settlement_parts")
