"""Set-based posting for batch work: one balanced single-posting entry per row of a query.

The end-of-day run posts millions of small entries; doing them one call at a time would be
a round trip per account. Here a query's rows are staged in a temporary table and given their
entry ids there, then entries, postings and the balance columns of every touched account are
written with a statement each, none of them joining back to the entries just written.
Balance rules are not re-checked row by row: batch steps post only amounts computed from what
is owed, which cannot break them (and reconciliation proves the balances afterwards).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Select,
    String,
    Table,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.schema import CreateTable

from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst

_TEMP = MetaData()
staging = Table(
    "fenqi_ledger_staging",
    _TEMP,
    Column("client_id", String(128), nullable=False),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("code", String(40), nullable=False),
    Column("ref_id", String(64), nullable=False),
    Column("entry_id", BigInteger, nullable=False),  # a fresh id, given as the row is staged
    prefixes=["TEMPORARY"],
)
COLUMNS = ["client_id", "debit_account_id", "credit_account_id", "amount_fen", "code", "ref_id"]


def post_rows(
    conn: Connection,
    rows: Select[Any] | Any,
    *,
    business_date: date,
    now: datetime,
    description: str,
    ref_kind: str,
) -> tuple[int, int]:
    """Post one entry per row of `rows` (columns as COLUMNS; amounts > 0).

    Returns (entries, total fen). Runs in the caller's transaction.
    """
    conn.execute(CreateTable(staging, if_not_exists=True))
    conn.execute(delete(staging))
    source = rows.subquery("rows")
    conn.execute(
        insert(staging).from_select(
            [*COLUMNS, "entry_id"], select(*source.c, _next_entry_ids(conn.dialect.name))
        )
    )
    if conn.dialect.name == "postgresql":
        # a temporary table has no statistics until analyzed: without them PostgreSQL may plan
        # the balance updates below as a scan of every ledger account
        conn.exec_driver_sql(f"ANALYZE {staging.name}")
    count, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(staging.c.amount_fen), 0))
    ).one()
    if not count:
        return 0, 0
    conn.execute(
        insert(ent).from_select(
            [
                "id",
                "client_id",
                "content_hash",
                "kind",
                "status",
                "business_date",
                "created_at",
                "description",
                "ref_kind",
                "ref_id",
            ],
            select(
                staging.c.entry_id,
                staging.c.client_id,
                literal("batch"),
                literal("single"),
                literal("posted"),
                literal(business_date),
                literal(now),
                literal(description),
                literal(ref_kind),
                staging.c.ref_id,
            ),
        )
    )
    conn.execute(
        insert(pst).from_select(
            [
                "entry_id",
                "seq",
                "debit_account_id",
                "credit_account_id",
                "amount_fen",
                "phase",
                "pending_remaining_fen",
                "code",
            ],
            select(
                staging.c.entry_id,
                literal(0),
                staging.c.debit_account_id,
                staging.c.credit_account_id,
                staging.c.amount_fen,
                literal("posted"),
                literal(0),
                staging.c.code,
            ),
        )
    )
    for column, side in (
        ("debits_posted", staging.c.debit_account_id),
        ("credits_posted", staging.c.credit_account_id),
    ):
        sums = (
            select(side.label("account_id"), func.sum(staging.c.amount_fen).label("amount"))
            .group_by(side)
            .subquery()
        )
        conn.execute(
            update(acc)
            .where(acc.c.id == sums.c.account_id)
            .values({column: acc.c[column] + sums.c.amount})
        )
    return int(count), int(total)


def _next_entry_ids(dialect_name: str) -> Any:
    """A fresh entry id per row being staged: the entries' own sequence on PostgreSQL; on SQLite,
    counting on past the largest id (the transaction holds the database's write lock, so nobody
    else can take one meanwhile; entries are never deleted, so ids are never reused)."""
    if dialect_name == "postgresql":
        return func.nextval(func.pg_get_serial_sequence(ent.name, "id"))
    largest = select(func.coalesce(func.max(ent.c.id), 0)).scalar_subquery()
    return largest + func.row_number().over()
