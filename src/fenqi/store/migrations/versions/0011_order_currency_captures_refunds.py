"""shops state their currency; captures and refunds of an order are records of their own

`merchants.currency` (existing shops: CNY, what every shop sold in before). `order_captures`
is filled from the plans each capture booked (`order_ref` "order:<id>:<n>"); refunds made before
this revision show only in their order's `refunded_fen` (when and how much each one was is not
kept anywhere to rebuild it from).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(
            sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False)
        )
    op.create_table(
        "order_captures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_captures_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["installment_plans.id"],
            name=op.f("fk_order_captures_plan_id_installment_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_captures")),
        sa.UniqueConstraint("order_id", "number", name="uq_order_captures_number"),
    )
    op.create_table(
        "order_refunds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_back_to_shopper_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_refunds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
    )
    op.create_index("ix_order_refunds_order", "order_refunds", ["order_id"])
    _fill_captures()


def _fill_captures() -> None:
    conn = op.get_bind()
    plans = conn.execute(
        sa.text(
            "SELECT id, order_ref, principal_fen, created_at FROM installment_plans "
            "WHERE order_ref LIKE 'order:%'"
        )
    ).all()
    rows = []
    for plan_id, ref, principal, created_at in plans:
        parts = str(ref).split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            rows.append(
                {
                    "order_id": int(parts[1]),
                    "number": int(parts[2]),
                    "amount_fen": int(principal),
                    "plan_id": int(plan_id),
                    "created_at": created_at,
                }
            )
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO order_captures (order_id, number, amount_fen, plan_id, created_at) "
                "VALUES (:order_id, :number, :amount_fen, :plan_id, :created_at)"
            ),
            rows,
        )


def downgrade() -> None:
    op.drop_index("ix_order_refunds_order", table_name="order_refunds")
    op.drop_table("order_refunds")
    op.drop_table("order_captures")
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("currency")
