"""the index of open holds keeps pending entries only

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_ledger_entries_open_pending", table_name="ledger_entries")
    op.create_index(
        "ix_ledger_entries_open_pending",
        "ledger_entries",
        ["timeout_at"],
        unique=False,
        sqlite_where=OPEN_PENDING,
        postgresql_where=OPEN_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_open_pending", table_name="ledger_entries")
    op.create_index(
        "ix_ledger_entries_open_pending",
        "ledger_entries",
        ["status", "timeout_at"],
        unique=False,
    )
