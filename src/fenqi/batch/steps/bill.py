"""Step 4: bill: earn fees period by period and cut statements."""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    FromClause,
    and_,
    func,
    insert,
    literal,
    select,
    true,
    update,
)

from fenqi.batch.sql import Partition, isum, larger, non_negative, smaller
from fenqi.batch.steps.common import Result, RunFacts, fresh_table, product_lines, temp_table
from fenqi.batch.steps.snapshot import in_product, snapshot, take_snapshot
from fenqi.credit.billing import minimum_payment_rule
from fenqi.ledger.bulk import post_rows
from fenqi.ledger.chart import AccountCode
from fenqi.products.model import Product, ProductKind
from fenqi.store.schema.batch import accruals, statements
from fenqi.store.schema.credit import UNBILLED_WITH_CHARGES, plan_income
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.upsert import conflict_insert


def bill(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Bill what falls due: on a revolving product's statement day cut the statement (lines
    due on its due date, overdue and revolving amounts, charges; the minimum payment); on other
    products bill each line on its due date. Fees and scheduled interest of billed lines are
    earned (moved from unearned to income)."""
    rows, fen = 0, 0
    for product in run.products.values():
        due = run.bill_due(product)
        if due is None:
            continue
        if product.kind is ProductKind.REVOLVING:
            take_snapshot(conn, run, part)
            rows += _cut_statements(conn, run, product, due)
        n, amount = _earn(conn, run, part, product, due)
        rows, fen = rows + n, fen + amount
    return rows, fen


earned = temp_table(
    "fenqi_eod_earned",
    Column("plan_id", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
)


def _earn(conn: Connection, run: RunFacts, part: Partition, product: Product, due: date) -> Result:
    """Fees and scheduled interest of the lines billed now move from unearned to income; a
    plan never earns more than it has left (refunds and payoffs may have removed some)."""
    billed = and_(
        lines.c.due_date == due,
        lines.c.credit_account_id.between(part.lo, part.hi),
        # the terms of ix_plan_lines_unbilled, verbatim, so that SQLite uses that index: a line
        # without fee or interest has nothing to earn and is never marked
        UNBILLED_WITH_CHARGES,
        product_lines(run, part, product),
    )
    per_plan = (
        select(
            lines.c.plan_id.label("plan_id"),
            isum(lines.c.fee_fen - lines.c.waived_fee_fen).label("fee"),
            isum(lines.c.interest_fen - lines.c.waived_interest_fen).label("interest"),
        )
        .where(billed)
        .group_by(lines.c.plan_id)
        .subquery("billed")
    )

    def left(kind: str) -> ColumnElement[int]:
        so_far = func.coalesce(plan_income.c[f"{kind}_earned_fen"], 0)
        return non_negative(plans.c[f"{kind}_fen"] - so_far - plans.c[f"{kind}_removed_fen"])

    fee_now = smaller(per_plan.c.fee, left("fee"))
    interest_now = smaller(per_plan.c.interest, left("interest"))
    fresh_table(conn, earned)
    conn.execute(
        insert(earned).from_select(
            ["plan_id", "fee_fen", "interest_fen"],
            select(per_plan.c.plan_id, fee_now, interest_now)
            .join(plans, plans.c.id == per_plan.c.plan_id)
            .outerjoin(plan_income, plan_income.c.plan_id == per_plan.c.plan_id)
            .where(fee_now + interest_now > 0),
        )
    )
    fee, interest = (
        int(x)
        for x in conn.execute(
            select(
                func.coalesce(isum(earned.c.fee_fen), 0),
                func.coalesce(isum(earned.c.interest_fen), 0),
            )
        ).one()
    )
    if fee or interest:
        upsert = conflict_insert(conn.dialect.name, plan_income).from_select(
            ["plan_id", "fee_earned_fen", "interest_earned_fen"],
            # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
            select(earned.c.plan_id, earned.c.fee_fen, earned.c.interest_fen).where(true()),
        )
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["plan_id"],
                set_={
                    "fee_earned_fen": plan_income.c.fee_earned_fen + upsert.excluded.fee_earned_fen,
                    "interest_earned_fen": plan_income.c.interest_earned_fen
                    + upsert.excluded.interest_earned_fen,
                },
            )
        )
    for kind, amount, unearned, income in (
        ("fee", fee, AccountCode.UNEARNED_FEE_INCOME, AccountCode.FEE_INCOME),
        ("interest", interest, AccountCode.UNEARNED_INTEREST_INCOME, AccountCode.INTEREST_INCOME),
    ):
        if amount > 0:
            client = f"eod:{run.business_date}:earn:{kind}:{product.name}:{part.number}"
            post_rows(
                conn,
                select(
                    literal(client),
                    literal(run.platform_id(unearned, product.currency)),
                    literal(run.platform_id(income, product.currency)),
                    literal(amount),
                    literal(f"earn_{kind}"),
                    literal(product.name),
                ),
                business_date=run.business_date,
                now=run.now,
                description=f"{kind} earned on billing",
                ref_kind="product",
            )
    rows = conn.execute(update(lines).where(billed).values(billed_on=run.business_date)).rowcount
    return int(rows or 0), fee + interest


def _cut_statements(conn: Connection, run: RunFacts, product: Product, due: date) -> int:
    """One statement per account with lines on it, from the snapshot and the charges owed.

    Each account's figures are worked out once, in a materialized CTE, and the minimum payment
    from them: neither database eliminates the common subexpressions of one SELECT, and the
    total appears more than once in the minimum's rule (`credit.billing.minimum_payment_rule`,
    the same function the Python uses)."""
    s = snapshot.c
    owed = {
        kind: accruals.alias(f"owed_{kind}") for kind in ("interest", "penalty")
    }  # one row per account and kind

    def charge(kind: str) -> ColumnElement[int]:
        a = owed[kind]
        return func.coalesce(a.c.accrued_fen - a.c.paid_fen - a.c.waived_fen, 0)

    interest, penalty = charge("interest"), charge("penalty")
    source: FromClause = snapshot
    for kind, a in owed.items():
        source = source.outerjoin(a, and_(a.c.credit_account_id == s.account_id, a.c.kind == kind))
    figures = (
        select(
            s.account_id.label("account_id"),
            s.stmt_principal.label("principal"),
            s.stmt_fee.label("fee"),
            (s.stmt_owed - s.stmt_principal - s.stmt_fee + interest).label("interest"),
            penalty.label("penalty"),
            (s.stmt_owed + interest + penalty).label("total"),
            s.stmt_revolvable.label("revolvable"),
        )
        .select_from(source)
        .where(in_product(product), s.stmt_owed > 0)
        .cte("figures")
        .prefix_with("MATERIALIZED")
    )
    f = figures.c
    minimum = minimum_payment_rule(
        f.total,
        f.revolvable,
        product.minimum_payment.principal_bp,
        product.minimum_payment.floor_fen,
        smaller=smaller,
        larger=larger,
    )
    inserted = conn.execute(
        insert(statements).from_select(
            [
                "credit_account_id",
                "statement_date",
                "due_date",
                "principal_fen",
                "fee_fen",
                "interest_fen",
                "penalty_fen",
                "total_fen",
                "minimum_fen",
                "created_at",
            ],
            select(
                f.account_id,
                literal(run.business_date),
                literal(due),
                f.principal,
                f.fee,
                f.interest,
                f.penalty,
                f.total,
                minimum,
                literal(run.now),
            ).where(f.total > 0),
        )
    )
    if inserted.rowcount >= 0:
        return int(inserted.rowcount)
    if conn.dialect.name == "sqlite":  # Python's sqlite3 gives no rowcount after a WITH
        return int(conn.execute(select(func.changes())).scalar_one())
    # nor psycopg for INSERT … SELECT: count the statements just cut
    return int(
        conn.execute(
            select(func.count()).where(
                statements.c.statement_date == run.business_date,
                statements.c.credit_account_id.in_(select(s.account_id).where(in_product(product))),
            )
        ).scalar_one()
    )
