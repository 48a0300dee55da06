"""What every end-of-day step shares: the run's facts, temporary tables, per-product filters."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    literal,
    null,
    select,
)
from sqlalchemy.schema import CreateTable

from fenqi.batch.sql import Partition
from fenqi.clock import Clock
from fenqi.ledger.chart import AccountCode
from fenqi.pricing.due_dates import roll, statement_due_date
from fenqi.products.model import Product, ProductKind
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.ledger import ledger_accounts

Result = tuple[int, int]


@dataclass(frozen=True)
class RunFacts:
    business_date: date
    now: datetime
    clock: Clock
    products: dict[str, Product]
    cap_bp: int
    charge_off_days: int
    platform: dict[tuple[AccountCode, str], int]  # (code, currency) -> platform account id
    # names the snapshot of one partition in one run_partition call (see take_snapshot)
    snapshot_key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def platform_id(self, code: AccountCode, currency: str) -> int:
        return self.platform[(code, currency)]

    def statement_due(self, product: Product) -> date | None:
        """The due date of the statement cut today, if today is the product's statement day."""
        if product.kind is not ProductKind.REVOLVING:
            return None
        assert product.billing.statement_day is not None
        if self.business_date.day != product.billing.statement_day:
            return None
        return roll(product, statement_due_date(product, self.business_date))

    def bill_due(self, product: Product) -> date | None:
        """Lines due on this date are billed today (None: nothing is billed today)."""
        if product.kind is ProductKind.REVOLVING:
            return self.statement_due(product)
        return self.business_date

    @property
    def currencies(self) -> list[str]:
        return sorted({p.currency for p in self.products.values()})


TEMP_METADATA = MetaData()


def temp_table(name: str, *columns: Column[Any]) -> Table:
    return Table(name, TEMP_METADATA, *columns, prefixes=["TEMPORARY"])


_DDL: dict[tuple[str, str], str] = {}


def ensure_table(conn: Connection, table: Table) -> None:
    """CREATE TEMPORARY TABLE IF NOT EXISTS, compiled once per dialect (DDL is not cached)."""
    key = (conn.dialect.name, table.name)
    ddl = _DDL.get(key)
    if ddl is None:
        ddl = _DDL[key] = str(CreateTable(table, if_not_exists=True).compile(dialect=conn.dialect))
    conn.exec_driver_sql(ddl)


def fresh_table(conn: Connection, table: Table) -> None:
    ensure_table(conn, table)
    conn.execute(delete(table))


def product_lines(run: RunFacts, part: Partition, product: Product) -> ColumnElement[bool]:
    """Plan lines of the partition's accounts of a product that are not charged off."""
    if len(run.products) == 1:  # every account of the partition has this product
        return lines.c.credit_account_id.not_in(
            select(ca.c.id).where(
                ca.c.id.between(part.lo, part.hi), ca.c.charged_off_on.is_not(None)
            )
        )
    return lines.c.credit_account_id.in_(select(ca.c.id).where(accounts_of_product(part, product)))


def per_product(
    run: RunFacts, value: Callable[[Product], Any], product: ColumnElement[str]
) -> ColumnElement[Any]:
    """A value that depends on the account's product: a literal when the partition holds one
    product, else a CASE on the product column (NULL for None)."""

    def as_sql(v: Any) -> ColumnElement[Any]:
        return null() if v is None else literal(v)

    items = list(run.products.values())
    if not items:  # a partition without accounts (a fresh book): a CASE needs a WHEN
        return literal(None)
    if len(items) == 1:
        return as_sql(value(items[0]))
    return case(*[(product == p.name, as_sql(value(p))) for p in items], else_=null())


def ledger_id(code: AccountCode, account_id: Any, currency: Any) -> Any:
    """The id of a customer's ledger account: one lookup in its unique key per row, whatever
    the planner knows of the tables around it (temporary tables have no statistics)."""
    la = ledger_accounts
    return (
        select(la.c.id)
        .where(
            la.c.code == code.value,
            la.c.owner_kind == "customer",
            la.c.owner_id == cast(account_id, String),
            la.c.currency == currency,
        )
        .scalar_subquery()
    )


def analyze(conn: Connection, table: Table) -> None:
    """Statistics for a freshly filled temporary table (PostgreSQL never analyzes them)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {table.name}")


def accounts_of_product(part: Partition, product: Product) -> ColumnElement[bool]:
    return and_(
        ca.c.id.between(part.lo, part.hi),
        ca.c.product == product.name,
        ca.c.charged_off_on.is_(None),
    )
