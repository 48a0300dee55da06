"""The snapshot of a partition's plan lines that accrue, bill and age read (see the package doc)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Date,
    Integer,
    String,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)

from fenqi.batch.sql import (
    OPEN_LINE,
    UNPAID,
    UNPAID_INTEREST,
    UNPAID_PRINCIPAL,
    Partition,
    isum,
    larger,
    smaller,
)
from fenqi.batch.steps.common import RunFacts, analyze, ensure_table, per_product, temp_table
from fenqi.credit.billing import capped_penalty_rule, daily_ppm
from fenqi.products.model import Product
from fenqi.store.schema import BigId
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines

snapshot = temp_table(
    "fenqi_eod_snapshot",
    Column("account_id", BigId, primary_key=True, autoincrement=False),
    Column("revolving_principal", BigInteger, nullable=False),  # revolving since today or before
    Column("penalty_ppm", BigInteger, nullable=False),  # Σ overdue × the line's daily ppm
    # the due date of the oldest amount due, unpaid, not revolving and out of its grace period
    # (NULL if none)
    Column("past_due_since", Date, nullable=True),
    # the lines on the statement cut today (zero on other days)
    Column("stmt_owed", BigInteger, nullable=False),
    Column("stmt_principal", BigInteger, nullable=False),
    Column("stmt_fee", BigInteger, nullable=False),
    Column("stmt_revolvable", BigInteger, nullable=False),
    Column("product", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("active", Integer, nullable=False),  # 1 unless charged off
)
snapshot_key = temp_table("fenqi_eod_snapshot_key", Column("key", String(120), primary_key=True))


def take_snapshot(conn: Connection, run: RunFacts, part: Partition) -> None:
    """The partition's per-account line facts, unless this connection holds them already.

    One pass over the lines due by the horizon (today, or the latest statement due date cut
    today) that are not fully paid, grouped by account. SQLite evaluates every aggregate for
    every line, so there are as few as the steps need, and the statement sums are taken
    unconditionally when every statement cut today is due on the horizon (the usual case)."""
    ensure_table(conn, snapshot_key)
    ensure_table(conn, snapshot)
    if conn.execute(select(snapshot_key.c.key)).scalar() == run.snapshot_key:
        return
    conn.execute(delete(snapshot_key))
    conn.execute(delete(snapshot))
    day = run.business_date
    product = ca.c.product  # joined per line only when the partition holds several products
    stmt_dues = [d for d in (run.statement_due(p) for p in run.products.values()) if d]
    horizon = max([day, *stmt_dues])

    def total(value: ColumnElement[int], when: ColumnElement[bool] | None = None) -> Any:
        if when is not None:
            value = case((when, value), else_=0)
        return func.coalesce(isum(value), 0)

    not_revolving = lines.c.revolving_since.is_(None)
    penalty_ppm = per_product(run, lambda p: daily_ppm(p.late_fee.daily_rate_bp), product)
    rate = capped_penalty_rule(
        penalty_ppm, plans.c.nominal_rate_bp, literal(run.cap_bp), smaller=smaller, larger=larger
    )
    overdue_before = per_product(run, lambda p: day - timedelta(days=p.billing.grace_days), product)
    stmt: list[Any] = [literal(0)] * 4
    if stmt_dues:
        stmt_due = per_product(run, run.statement_due, product)
        on_stmt = None if all(d == horizon for d in stmt_dues) else lines.c.due_date <= stmt_due
        revolvable = and_(
            plans.c.kind == "cycle",
            or_(lines.c.due_date == stmt_due, lines.c.revolving_since.is_not(None)),
        )
        # the statement's interest here; what it owes in all is worked out once per account below
        stmt = [
            total(UNPAID_INTEREST, on_stmt),
            total(UNPAID_PRINCIPAL, on_stmt),
            total(lines.c.fee_fen - lines.c.paid_fee_fen - lines.c.waived_fee_fen, on_stmt),
            total(UNPAID_PRINCIPAL, revolvable if on_stmt is None else and_(on_stmt, revolvable)),
        ]
    per_account = (
        select(
            lines.c.credit_account_id.label("account_id"),
            # (unpaid amounts are never negative: the lines' check constraint)
            total(UNPAID_PRINCIPAL, lines.c.revolving_since <= day).label("revolving_principal"),
            total(UNPAID * rate, and_(lines.c.due_date < overdue_before, not_revolving)).label(
                "penalty_ppm"
            ),
            # late only once out of the product's grace period (issue 24 item 11)
            func.min(
                case((and_(lines.c.due_date < overdue_before, not_revolving), lines.c.due_date))
            ).label("past_due_since"),
            *[value.label(f"s{i}") for i, value in enumerate(stmt)],
        )
        .select_from(lines)
        .join(plans, plans.c.id == lines.c.plan_id)
        .where(
            lines.c.credit_account_id.between(part.lo, part.hi),
            lines.c.due_date <= horizon,
            OPEN_LINE,
        )
        .group_by(lines.c.credit_account_id)
    )
    if len(run.products) > 1:
        per_account = per_account.join(ca, ca.c.id == lines.c.credit_account_id)
    facts = per_account.subquery("per_account")
    conn.execute(
        insert(snapshot).from_select(
            [c.name for c in snapshot.c],
            select(
                facts.c.account_id,
                facts.c.revolving_principal,
                facts.c.penalty_ppm,
                facts.c.past_due_since,
                facts.c.s0 + facts.c.s1 + facts.c.s2,
                facts.c.s1,
                facts.c.s2,
                facts.c.s3,
                ca.c.product,
                ca.c.currency,
                case((ca.c.charged_off_on.is_(None), 1), else_=0),
            ).join(ca, ca.c.id == facts.c.account_id),
        )
    )
    conn.execute(insert(snapshot_key).values(key=run.snapshot_key))
    analyze(conn, snapshot)


def in_product(product: Product) -> ColumnElement[bool]:
    return and_(snapshot.c.product == product.name, snapshot.c.active == 1)
