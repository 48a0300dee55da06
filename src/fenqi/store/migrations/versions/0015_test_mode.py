"""test mode: a database says which book it is (live or test), so the test book, a database
of its own, can never be taken for the live one

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fenqi_book",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_fenqi_book_one_row")),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_fenqi_book_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fenqi_book")),
    )


def downgrade() -> None:
    op.drop_table("fenqi_book")
