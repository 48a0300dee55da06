"""webhook signing secrets are sealed with the platform's data keys: the key id beside each

Secrets stored before this stay readable (a NULL key id) until `fenqi rotate-keys` seals them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # a sealed secret cannot be turned back into plain text here (the keys are the
    # application's, not the migration's): refuse rather than leave ciphertext as a secret
    sealed = op.get_bind().execute(
        sa.text("SELECT count(*) FROM webhook_endpoints WHERE key_id IS NOT NULL")
    ).scalar()
    if sealed:
        raise RuntimeError(
            f"{sealed} webhook secrets are sealed: set those endpoints again after downgrading "
            "from a backup, or delete them first"
        )
    op.drop_column("webhook_endpoints", "key_id")
