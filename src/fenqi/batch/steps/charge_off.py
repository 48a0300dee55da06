"""Step 6: charge off accounts past the product's charge-off days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)

from fenqi.batch.sql import Partition, isum
from fenqi.batch.steps.common import Result, RunFacts, analyze, fresh_table, ledger_id, temp_table
from fenqi.ledger.bulk import post_rows
from fenqi.ledger.chart import AccountCode
from fenqi.store.schema import BigId
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.ledger import ledger_balances

RECEIVABLES = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.FEE_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
)

victims_table = temp_table(
    "fenqi_eod_victims",
    Column("account_id", BigId, primary_key=True, autoincrement=False),
    Column("currency", String(3), nullable=False),
    Column("written_off_id", BigInteger, nullable=False),
    *[Column(f"{code.value}_id", BigInteger, nullable=False) for code in RECEIVABLES],
)


def charge_off(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Accounts at the charge-off threshold: fees and interest not yet billed are dropped, what
    is still receivable moves to written-off receivables, the loss is recognized against the
    allowance, and the account stops (status charged_off, limit 0 in the ledger)."""
    due = (
        ca.c.id.between(part.lo, part.hi),
        ca.c.charged_off_on.is_(None),
        ca.c.past_due_since <= run.business_date - timedelta(days=run.charge_off_days),
    )
    if conn.execute(select(ca.c.id).where(*due).limit(1)).first() is None:
        return 0, 0
    # the victims with their ledger accounts, looked up once (then every join is by id)
    fresh_table(conn, victims_table)
    codes = (AccountCode.WRITTEN_OFF_RECEIVABLE, *RECEIVABLES)
    conn.execute(
        insert(victims_table).from_select(
            ["account_id", "currency", *[c.name for c in victims_table.c][2:]],
            select(
                ca.c.id,
                ca.c.currency,
                *[ledger_id(code, ca.c.id, ca.c.currency) for code in codes],
            ).where(*due),
        )
    )
    analyze(conn, victims_table)
    v = victims_table.c
    victims = select(v.account_id)
    day = run.business_date.isoformat()
    _drop_unbilled(conn, run, victims)
    moves = []
    for code in RECEIVABLES:
        recv = ledger_balances.alias(f"recv_{code.value}")
        net = recv.c.debits_posted - recv.c.credits_posted
        moves.append(
            select(
                (literal(f"eod:{day}:chargeoff:{code.value}:") + cast(v.account_id, String)),
                v.written_off_id,
                recv.c.account_id,
                net,
                literal("charge_off"),
                cast(v.account_id, String),
            )
            .select_from(victims_table)
            .join(recv, recv.c.account_id == v[f"{code.value}_id"])
            .where(net > 0)
        )
    _n, moved = post_rows(
        conn,
        union_all(*moves),
        business_date=run.business_date,
        now=run.now,
        description="charge-off",
        ref_kind="credit_account",
    )
    if moved:
        for currency in run.currencies:
            wo = ledger_balances.alias("wo")
            amount = int(
                conn.execute(
                    select(func.coalesce(isum(wo.c.debits_posted - wo.c.credits_posted), 0))
                    .select_from(victims_table)
                    .join(wo, wo.c.account_id == v.written_off_id)
                    .where(v.currency == currency)
                ).scalar_one()
            )
            if amount > 0:
                post_rows(
                    conn,
                    select(
                        literal(f"eod:{day}:loss:{currency}:{part.number}"),
                        literal(run.platform_id(AccountCode.CREDIT_LOSS_EXPENSE, currency)),
                        literal(run.platform_id(AccountCode.LOSS_ALLOWANCE, currency)),
                        literal(amount),
                        literal("credit_loss"),
                        literal(str(part.number)),
                    ),
                    business_date=run.business_date,
                    now=run.now,
                    description="credit loss on charge-off",
                    ref_kind="partition",
                )
    conn.execute(
        update(ledger_balances)
        .where(
            ledger_balances.c.account_id.in_(
                select(v[f"{AccountCode.PRINCIPAL_RECEIVABLE.value}_id"])
            )
        )
        .values(debit_cap_fen=0)
    )
    stopped = conn.execute(
        update(ca)
        .where(ca.c.id.in_(victims))
        .values(charged_off_on=run.business_date, status="charged_off")
    ).rowcount
    return int(stopped or 0), moved


def _drop_unbilled(conn: Connection, run: RunFacts, victims: Any) -> None:
    day = run.business_date.isoformat()
    v = victims_table.c
    unbilled = and_(lines.c.credit_account_id.in_(victims), lines.c.billed_on.is_(None))
    for kind, unearned, receivable in (
        ("fee", AccountCode.UNEARNED_FEE_INCOME, AccountCode.FEE_RECEIVABLE),
        ("interest", AccountCode.UNEARNED_INTEREST_INCOME, AccountCode.INTEREST_RECEIVABLE),
    ):
        owed = lines.c[f"{kind}_fen"] - lines.c[f"paid_{kind}_fen"] - lines.c[f"waived_{kind}_fen"]
        per_plan = (
            select(lines.c.plan_id.label("plan_id"), isum(owed).label("amount"))
            .where(unbilled)
            .group_by(lines.c.plan_id)
            .subquery()
        )
        conn.execute(
            update(plans)
            .where(plans.c.id == per_plan.c.plan_id)
            .values({f"{kind}_removed_fen": plans.c[f"{kind}_removed_fen"] + per_plan.c.amount})
        )
        per_account = (
            select(lines.c.credit_account_id.label("account_id"), isum(owed).label("amount"))
            .where(unbilled)
            .group_by(lines.c.credit_account_id)
            .subquery()
        )
        for currency in run.currencies:
            post_rows(
                conn,
                select(
                    (literal(f"eod:{day}:drop_{kind}:") + cast(per_account.c.account_id, String)),
                    literal(run.platform_id(unearned, currency)),
                    v[f"{receivable.value}_id"],
                    per_account.c.amount,
                    literal(f"charge_off_{kind}"),
                    cast(per_account.c.account_id, String),
                )
                .join(victims_table, v.account_id == per_account.c.account_id)
                .where(per_account.c.amount > 0, v.currency == currency),
                business_date=run.business_date,
                now=run.now,
                description=f"unbilled {kind} dropped at charge-off",
                ref_kind="credit_account",
            )
        conn.execute(
            update(lines)
            .where(unbilled)
            .values({f"waived_{kind}_fen": lines.c[f"{kind}_fen"] - lines.c[f"paid_{kind}_fen"]})
        )
