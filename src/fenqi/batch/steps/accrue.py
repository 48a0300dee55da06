"""Step 3: accrue today's interest and penalties (daily rates, late fees)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    String,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)

from fenqi.batch.sql import OPEN_LINE, Partition, isum, non_negative, smaller
from fenqi.batch.steps.common import (
    Result,
    RunFacts,
    analyze,
    fresh_table,
    ledger_id,
    per_product,
    product_lines,
    temp_table,
)
from fenqi.batch.steps.snapshot import snapshot, take_snapshot
from fenqi.credit.billing import daily_ppm, round_charge
from fenqi.ledger.bulk import post_journal
from fenqi.ledger.chart import AccountCode
from fenqi.money import BP_PER_UNIT
from fenqi.products.model import Product
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.upsert import conflict_insert

# ---------------------------------------------------------------- 3. accrue

charges = temp_table(
    "fenqi_eod_charges",
    Column("credit_account_id", BigInteger, primary_key=True),
    Column("kind", String(12), primary_key=True),  # interest | penalty
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)
late_fees = temp_table(
    "fenqi_eod_late_fees",
    Column("credit_account_id", BigInteger, nullable=False),  # one row per plan charged
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)


def accrue(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Today's revolving interest and penalty charges, once per account and day."""
    day = run.business_date
    take_snapshot(conn, run, part)
    fresh_table(conn, charges)
    s = snapshot.c
    interest_ppm = per_product(
        run,
        lambda p: daily_ppm(p.revolving.daily_rate_bp) if p.revolving.allowed else 0,
        s.product,
    )
    interest = round_charge(s.revolving_principal * interest_ppm)
    penalty = round_charge(s.penalty_ppm)  # Σ overdue × rate: one rounding per account
    for kind, day_charge, base in (
        ("interest", interest, s.revolving_principal),
        ("penalty", penalty, s.penalty_ppm),
    ):
        conn.execute(
            insert(charges).from_select(
                ["credit_account_id", "kind", "currency", "amount_fen"],
                select(s.account_id, literal(kind), s.currency, day_charge).where(
                    s.active == 1, base > 0, day_charge > 0
                ),
            )
        )
    late_rows = 0
    for product in run.products.values():
        if product.late_fee.fixed_fen:
            late_rows += _fixed_late_fees(conn, run, part, product)
    # a day already accrued (accrued_through >= today) is never charged again
    conn.execute(
        delete(charges).where(
            exists().where(
                accruals.c.credit_account_id == charges.c.credit_account_id,
                accruals.c.kind == charges.c.kind,
                accruals.c.accrued_through >= day,
            )
        )
    )
    upsert = conflict_insert(conn.dialect.name, accruals).from_select(
        [
            "credit_account_id",
            "kind",
            "accrued_fen",
            "paid_fen",
            "waived_fen",
            "accrued_through",
        ],
        select(
            charges.c.credit_account_id,
            charges.c.kind,
            charges.c.amount_fen,
            literal(0),
            literal(0),
            literal(day),
        ).where(true()),  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    )
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["credit_account_id", "kind"],
            set_={
                "accrued_fen": accruals.c.accrued_fen + upsert.excluded.accrued_fen,
                "accrued_through": upsert.excluded.accrued_through,
            },
        )
    )
    analyze(conn, charges)
    entries, fen = late_rows, 0
    kinds = select(charges.c.kind, charges.c.currency).distinct()
    present = {(kind, currency) for kind, currency in conn.execute(kinds)}
    for kind, receivable, income in (
        ("interest", AccountCode.INTEREST_RECEIVABLE, AccountCode.INTEREST_INCOME),
        ("penalty", AccountCode.PENALTY_RECEIVABLE, AccountCode.PENALTY_INCOME),
    ):
        for currency in run.currencies:
            if (kind, currency) in present:
                n, amount = _post_charges(conn, run, part, kind, receivable, income, currency)
                entries, fen = entries + n, fen + amount
    return entries, fen


def _post_charges(
    conn: Connection,
    run: RunFacts,
    part: Partition,
    kind: str,
    receivable: AccountCode,
    income: AccountCode,
    currency: str,
) -> Result:
    """The day's charges of one kind as one journal entry of the partition: a posting per
    account, from its own receivable to the platform's income."""
    day = run.business_date.isoformat()
    account = charges.c.credit_account_id
    rows = select(
        ledger_id(receivable, account, charges.c.currency),
        literal(run.platform_id(income, currency)),
        charges.c.amount_fen,
        literal(kind),
    ).where(charges.c.kind == kind, charges.c.currency == currency)
    return post_journal(
        conn,
        rows,
        client_id=f"eod:{day}:{kind}:{currency}:{part.number}",
        business_date=run.business_date,
        now=run.now,
        description=f"daily {kind}",
        ref_kind="partition",
        ref_id=str(part.number),
    )


def _fixed_late_fees(conn: Connection, run: RunFacts, part: Partition, product: Product) -> int:
    """A fixed fee per missed payment (the day after due date + grace), within the product's
    caps per payment and per purchase (e.g. Afterpay: 25% of the order)."""
    fee = product.late_fee.fixed_fen
    if product.late_fee.cap_fen is not None:
        fee = min(fee, product.late_fee.cap_fen)
    missed_on = run.business_date - timedelta(days=product.billing.grace_days + 1)
    missed = (
        select(lines.c.plan_id, func.count().label("n"))
        .where(
            lines.c.credit_account_id.between(part.lo, part.hi),
            product_lines(run, part, product),
            lines.c.due_date == missed_on,
            OPEN_LINE,
            lines.c.revolving_since.is_(None),
        )
        .group_by(lines.c.plan_id)
        .subquery()
    )
    cap_bp = product.late_fee.cap_bp_of_purchase
    plan_cap = (
        plans.c.principal_fen * cap_bp // BP_PER_UNIT if cap_bp is not None else literal(10**15)
    )
    charge = smaller(missed.c.n * fee, non_negative(plan_cap - plans.c.late_fees_fen))
    fresh_table(conn, late_fees)
    conn.execute(
        insert(late_fees).from_select(
            ["credit_account_id", "currency", "amount_fen"],
            select(plans.c.credit_account_id, literal(product.currency), charge)
            .join(missed, missed.c.plan_id == plans.c.id)
            .where(charge > 0),
        )
    )
    per_plan = (
        select(plans.c.id, charge.label("fee"))
        .join(missed, missed.c.plan_id == plans.c.id)
        .subquery()
    )
    charged = (
        conn.execute(
            update(plans)
            .where(plans.c.id == per_plan.c.id, per_plan.c.fee > 0)
            .values(late_fees_fen=plans.c.late_fees_fen + per_plan.c.fee)
        ).rowcount
        or 0
    )
    if not charged:
        return 0
    per_account = (
        select(
            late_fees.c.credit_account_id,
            late_fees.c.currency,
            isum(late_fees.c.amount_fen).label("amount_fen"),
        )
        .group_by(late_fees.c.credit_account_id, late_fees.c.currency)
        .subquery()
    )
    conn.execute(
        update(charges)
        .where(
            charges.c.kind == "penalty",
            charges.c.credit_account_id == per_account.c.credit_account_id,
        )
        .values(amount_fen=charges.c.amount_fen + per_account.c.amount_fen)
    )
    conn.execute(
        insert(charges).from_select(
            ["credit_account_id", "kind", "currency", "amount_fen"],
            select(
                per_account.c.credit_account_id,
                literal("penalty"),
                per_account.c.currency,
                per_account.c.amount_fen,
            ).where(
                ~exists().where(
                    charges.c.kind == "penalty",
                    charges.c.credit_account_id == per_account.c.credit_account_id,
                )
            ),
        )
    )
    return int(charged)
