"""Step 2: decide revolving on today's due dates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, func, select, update

from fenqi.batch.sql import UNPAID, UNPAID_PRINCIPAL, Partition, isum
from fenqi.batch.steps.common import Result, RunFacts, accounts_of_product
from fenqi.products.model import ProductKind
from fenqi.store.schema.batch import accruals, statements
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines


def revolve(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """On a statement's due date, if at least the minimum was paid, the cycle principal still
    unpaid revolves from tomorrow (daily interest) instead of falling overdue."""
    day, rows = run.business_date, 0
    revolving = [
        p for p in run.products.values() if p.kind is ProductKind.REVOLVING and p.revolving.allowed
    ]
    if (
        not revolving
        or not conn.execute(
            select(statements.c.id)
            .where(
                statements.c.due_date == day,
                statements.c.credit_account_id.between(part.lo, part.hi),
            )
            .limit(1)
        ).first()
    ):
        return 0, 0  # no statement of this partition falls due today
    for product in revolving:
        unpaid_now = (
            select(func.coalesce(isum(UNPAID), 0))
            .where(
                lines.c.credit_account_id == statements.c.credit_account_id,
                lines.c.due_date <= day,
                lines.c.revolving_since.is_(None),
            )
            .scalar_subquery()
            + select(
                func.coalesce(
                    isum(accruals.c.accrued_fen - accruals.c.paid_fen - accruals.c.waived_fen),
                    0,
                )
            )
            .where(accruals.c.credit_account_id == statements.c.credit_account_id)
            .scalar_subquery()
        )
        met_minimum = select(statements.c.credit_account_id).where(
            statements.c.due_date == day,
            statements.c.credit_account_id.in_(
                select(ca.c.id).where(accounts_of_product(part, product))
            ),
            unpaid_now <= statements.c.total_fen - statements.c.minimum_fen,
        )
        rows += (
            conn.execute(
                update(lines)
                .where(
                    lines.c.credit_account_id.in_(met_minimum),
                    lines.c.plan_id.in_(select(plans.c.id).where(plans.c.kind == "cycle")),
                    lines.c.due_date <= day,
                    lines.c.revolving_since.is_(None),
                    UNPAID_PRINCIPAL > 0,
                )
                .values(revolving_since=day + timedelta(days=1))
            ).rowcount
            or 0
        )
    return rows, 0
