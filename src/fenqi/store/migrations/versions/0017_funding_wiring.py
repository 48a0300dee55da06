"""funding wired into the money flows: borrower facts for funders' rules, region exposure

`credit_accounts.id_region` (the resident ID's first six digits) and `birth_date`, kept at
opening for funders' eligibility (region, age); `funding_tranches.region` (the province at
allocation) and `funder_region_exposure` (a funder's outstanding per province, for its
concentration limit `[limits] per_region_fen`). See docs/funding.md.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_accounts") as batch:
        batch.add_column(sa.Column("id_region", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
    with op.batch_alter_table("funding_tranches") as batch:
        batch.add_column(
            sa.Column("region", sa.String(length=2), nullable=False, server_default="00")
        )
    op.create_table(
        "funder_region_exposure",
        sa.Column("funder_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("cap_fen", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "outstanding_fen >= 0", name=op.f("ck_funder_region_exposure_non_negative")
        ),
        sa.PrimaryKeyConstraint("funder_id", "region", name=op.f("pk_funder_region_exposure")),
    )
    # tranches written before: their borrowers' provinces are unknown ("00"), and the region
    # exposure starts from them so that later repayments find their rows
    op.execute(
        "INSERT INTO funder_region_exposure (funder_id, region, outstanding_fen, cap_fen) "
        "SELECT funder_id, '00', SUM(outstanding_fen), NULL FROM funding_tranches "
        "GROUP BY funder_id"
    )


def downgrade() -> None:
    op.drop_table("funder_region_exposure")
    with op.batch_alter_table("funding_tranches") as batch:
        batch.drop_column("region")
    with op.batch_alter_table("credit_accounts") as batch:
        batch.drop_column("birth_date")
        batch.drop_column("id_region")
