"""an account keeps the due date it has been past due since, not its days past due and bucket

Days past due grow by one every day an account stays late, so storing them rewrote every late
account every day; the date they count from changes only when the account falls late, pays its
oldest amount or is cured. The days and the bucket follow from it (credit.arrears.arrears_on).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# the stored days past due were as of the last end of day that finished
LAST_RUN = "(SELECT max(business_date) FROM batch_runs WHERE status = 'done')"


def upgrade() -> None:
    op.add_column("credit_accounts", sa.Column("past_due_since", sa.Date(), nullable=True))
    since = (
        f"date({LAST_RUN}, '-' || days_past_due || ' days')"
        if op.get_bind().dialect.name == "sqlite"
        else f"{LAST_RUN} - days_past_due"
    )
    op.execute(
        f"UPDATE credit_accounts SET past_due_since = {since} "
        f"WHERE days_past_due > 0 AND {LAST_RUN} IS NOT NULL"
    )
    op.drop_column("credit_accounts", "days_past_due")
    op.drop_column("credit_accounts", "arrears_bucket")


def downgrade() -> None:
    op.add_column(
        "credit_accounts",
        sa.Column("days_past_due", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "credit_accounts",
        sa.Column("arrears_bucket", sa.String(4), nullable=False, server_default="M0"),
    )
    days = (
        f"CAST(julianday({LAST_RUN}) - julianday(past_due_since) AS INTEGER)"
        if op.get_bind().dialect.name == "sqlite"
        else f"{LAST_RUN} - past_due_since"
    )
    op.execute(
        f"UPDATE credit_accounts SET days_past_due = {days} "
        f"WHERE past_due_since IS NOT NULL AND {LAST_RUN} IS NOT NULL"
    )
    op.execute(
        "UPDATE credit_accounts SET arrears_bucket = CASE "
        + " ".join(f"WHEN days_past_due <= {30 * i} THEN 'M{i}'" for i in range(7))
        + " ELSE 'M7+' END"
    )
    op.drop_column("credit_accounts", "past_due_since")
