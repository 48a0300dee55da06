"""Set-based posting for batch work: the postings of a query's rows, in one statement each.

The end-of-day run posts hundreds of thousands of amounts; doing them one call at a time would be
a round trip per account. Here a query's rows are staged in a temporary table and given their
entry ids there, then entries, postings and the balance columns of every touched account are
written with a statement each, none of them joining back to the entries just written. Two shapes:
- `post_rows`: one balanced single-posting entry per row, for events of an account that are
  looked up by it (a charge-off);
- `post_journal`: one entry whose postings are the rows, for routine amounts such as a day's
  accrued interest, as a bank books a daily accrual journal: each posting still names the
  customer's own ledger account, but the day writes one entry row instead of one per account.
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

from fenqi.store.schema.ledger import ledger_balances as bal
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
    source = rows.subquery("rows")
    count, total = _stage(conn, select(*source.c, _next_entry_ids(conn.dialect.name)))
    if not count:
        return 0, 0
    _insert_entries(
        conn,
        select(staging.c.entry_id, staging.c.client_id, staging.c.ref_id),
        business_date=business_date,
        now=now,
        description=description,
        ref_kind=ref_kind,
    )
    _post_staged(conn, literal(0))
    return count, total


def post_journal(
    conn: Connection,
    rows: Select[Any] | Any,
    *,
    client_id: str,
    business_date: date,
    now: datetime,
    description: str,
    ref_kind: str,
    ref_id: str,
) -> tuple[int, int]:
    """Post one entry, `client_id`, whose postings are the rows of `rows` (columns
    debit_account_id, credit_account_id, amount_fen, code; amounts > 0); nothing if there are
    no rows.

    Returns (postings, total fen). Runs in the caller's transaction.
    """
    source = rows.subquery("rows")
    entry_id = _one_entry_id(conn)
    count, total = _stage(
        conn,
        select(literal(client_id), *source.c, literal(ref_id), literal(entry_id)),
    )
    if not count:
        return 0, 0
    _insert_entries(
        conn,
        select(literal(entry_id), literal(client_id), literal(ref_id)),
        business_date=business_date,
        now=now,
        description=description,
        ref_kind=ref_kind,
    )
    _post_staged(conn, func.row_number().over() - 1)
    return count, total


def _stage(conn: Connection, rows: Select[Any]) -> tuple[int, int]:
    """Fill the staging table with `rows` (columns as COLUMNS, then entry_id): (rows, fen)."""
    conn.execute(CreateTable(staging, if_not_exists=True))
    conn.execute(delete(staging))
    conn.execute(insert(staging).from_select([*COLUMNS, "entry_id"], rows))
    if conn.dialect.name == "postgresql":
        # a temporary table has no statistics until analyzed: without them PostgreSQL may plan
        # the balance updates below as a scan of every ledger account
        conn.exec_driver_sql(f"ANALYZE {staging.name}")
    count, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(staging.c.amount_fen), 0))
    ).one()
    return int(count), int(total)


def _insert_entries(
    conn: Connection,
    ids: Select[Any, Any, Any],
    *,
    business_date: date,
    now: datetime,
    description: str,
    ref_kind: str,
) -> None:
    """Posted entries from `ids` (entry id, client id, ref id per row)."""
    source = ids.subquery("ids")
    entry_id, client_id, ref_id = source.c
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
                entry_id,
                client_id,
                literal("batch"),
                literal("single"),
                literal("posted"),
                literal(business_date),
                literal(now),
                literal(description),
                literal(ref_kind),
                ref_id,
            ),
        )
    )


def _post_staged(conn: Connection, seq: Any) -> None:
    """The staged rows' postings (numbered by `seq`) and the balances they move."""
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
                seq,
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
            update(bal)
            .where(bal.c.account_id == sums.c.account_id)
            .values({column: bal.c[column] + sums.c.amount})
        )


def _one_entry_id(conn: Connection) -> int:
    return int(conn.execute(select(_next_entry_ids(conn.dialect.name))).scalar_one())


def _next_entry_ids(dialect_name: str) -> Any:
    """A fresh entry id per row being staged: the entries' own sequence on PostgreSQL; on SQLite,
    counting on past the largest id (the transaction holds the database's write lock, so nobody
    else can take one meanwhile; entries are never deleted, so ids are never reused)."""
    if dialect_name == "postgresql":
        return func.nextval(func.pg_get_serial_sequence(ent.name, "id"))
    largest = select(func.coalesce(func.max(ent.c.id), 0)).scalar_subquery()
    return largest + func.row_number().over()
