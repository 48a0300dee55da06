"""ledger balances and their rules move to a narrow table of their own, ledger_balances

Nearly every entry rewrites the balance of the accounts it touches; with the balances on the
account's row (code, owner, currency, timestamps) a day that moves hundreds of thousands of
receivables rewrote most pages of the accounts. ledger_accounts keeps the identity.

On SQLite the accounts table is rebuilt (a table-level CHECK names the columns that go), by
SQLite's own procedure: `fenqi.store.migrate` turns foreign keys off around the migration and
checks them before it commits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MOVED = (
    "debit_cap_fen",
    "credits_must_not_exceed_debits",
    "debits_must_not_exceed_credits",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
)
NON_NEGATIVE = (
    "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0"
)


def _identity_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ledger_balances",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("debit_cap_fen", sa.BigInteger(), nullable=True),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), nullable=False),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(NON_NEGATIVE, name=op.f("ck_ledger_balances_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_balances_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_ledger_balances")),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO ledger_balances (account_id, {', '.join(MOVED)}) "
        f"SELECT id, {', '.join(MOVED)} FROM ledger_accounts"
    )
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_ledger_accounts_non_negative"), "ledger_accounts", type_="check")
        for name in MOVED:
            op.drop_column("ledger_accounts", name)
        return
    identity = "id, code, owner_kind, owner_id, currency, created_at"
    op.create_table(
        "ledger_accounts_new",
        *_identity_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint(
            "code", "owner_kind", "owner_id", "currency", name="uq_ledger_accounts_key"
        ),
    )
    op.execute(
        f"INSERT INTO ledger_accounts_new ({identity}) SELECT {identity} FROM ledger_accounts"
    )
    op.drop_table("ledger_accounts")
    op.rename_table("ledger_accounts_new", "ledger_accounts")


def _moved_columns(server_default: bool) -> list[sa.Column[object]]:
    zero = {"server_default": sa.text("0")} if server_default else {}
    false = {"server_default": sa.false()} if server_default else {}
    return [
        sa.Column("debit_cap_fen", sa.BigInteger(), nullable=True),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), nullable=False, **false),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), nullable=False, **false),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False, **zero)
            for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
        ],
    ]


def downgrade() -> None:
    moved = ", ".join(MOVED)
    if op.get_bind().dialect.name != "sqlite":
        for column in _moved_columns(server_default=True):
            op.add_column("ledger_accounts", column)
        op.execute(
            f"UPDATE ledger_accounts a SET ({moved}) = "
            f"(SELECT {moved} FROM ledger_balances b WHERE b.account_id = a.id)"
        )
        for column in _moved_columns(server_default=False):
            if column.name != "debit_cap_fen":
                op.alter_column("ledger_accounts", column.name, server_default=None)
        op.create_check_constraint(
            op.f("ck_ledger_accounts_non_negative"), "ledger_accounts", NON_NEGATIVE
        )
        op.drop_table("ledger_balances")
        return
    op.create_table(
        "ledger_accounts_old",
        *_identity_columns()[:5],
        *_moved_columns(server_default=False),
        _identity_columns()[5],
        sa.CheckConstraint(NON_NEGATIVE, name=op.f("ck_ledger_accounts_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint(
            "code", "owner_kind", "owner_id", "currency", name="uq_ledger_accounts_key"
        ),
    )
    identity = "id, code, owner_kind, owner_id, currency, created_at"
    op.execute(
        f"INSERT INTO ledger_accounts_old ({identity}, {moved}) "
        f"SELECT a.id, a.code, a.owner_kind, a.owner_id, a.currency, a.created_at, {moved} "
        "FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id"
    )
    op.drop_table("ledger_balances")
    op.drop_table("ledger_accounts")
    op.rename_table("ledger_accounts_old", "ledger_accounts")
