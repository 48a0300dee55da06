"""shops manage their own API keys and webhook endpoint: key expiry and last use, endpoint ids,
secret rotation with an overlap, event subscriptions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchant_api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("endpoint_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_key_id", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "event_type", name=op.f("pk_webhook_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("webhook_subscriptions")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_expires_at")
        batch.drop_column("previous_key_id")
        batch.drop_column("previous_secret")
        batch.drop_column("endpoint_id")
    with op.batch_alter_table("merchant_api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
