"""The end-of-day steps, each a few set-based statements over one account partition.

Order (fixed): expire holds, decide revolving on today's due dates, accrue today's interest and
penalties, bill (earn fees and cut statements), age arrears, charge off. Each step is a
function of (connection, run facts, partition) that returns (rows, amount_fen) for the run's
figures. Rules that vary by product are read from the product files, never branched on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.schema import CreateTable

from fenqi.batch.sql import (
    UNPAID,
    UNPAID_PRINCIPAL,
    Partition,
    customer_join,
    days_between,
    isum,
    non_negative,
    smaller,
)
from fenqi.clock import Clock
from fenqi.credit.arrears import bucket_bounds
from fenqi.credit.billing import PPM_PER_BP, daily_ppm
from fenqi.ledger.bulk import post_rows
from fenqi.ledger.chart import AccountCode
from fenqi.money import BP_PER_UNIT
from fenqi.pricing.due_dates import roll, statement_due_date
from fenqi.products.model import Product, ProductKind
from fenqi.store.schema.batch import accruals, statements
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
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

    def platform_id(self, code: AccountCode, currency: str) -> int:
        return self.platform[(code, currency)]


_TEMP = MetaData()
amounts = Table(
    "fenqi_eod_amounts",
    _TEMP,
    Column("credit_account_id", BigInteger, nullable=False),
    Column("kind", String(12), nullable=False),  # several rows per account and kind add up
    Column("amount_fen", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


def _reset_amounts(conn: Connection) -> None:
    conn.execute(CreateTable(amounts, if_not_exists=True))
    conn.execute(delete(amounts))


def _accounts(part: Partition, product: Product) -> ColumnElement[bool]:
    return and_(
        ca.c.id.between(part.lo, part.hi),
        ca.c.product == product.name,
        ca.c.charged_off_on.is_(None),
    )


def _line_in(part: Partition, product: Product) -> ColumnElement[bool]:
    # the range lets the index on (credit_account_id, due_date) do the work
    return and_(
        lines.c.credit_account_id.between(part.lo, part.hi),
        lines.c.credit_account_id.in_(select(ca.c.id).where(_accounts(part, product))),
    )


# ---------------------------------------------------------------- 1. holds


def expire_holds(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Authorizations past their expiry release their hold (done once, in partition 0)."""
    if part.number != 0:
        return 0, 0
    from fenqi.credit.checkout import expire_orders

    return expire_orders(conn, run.clock), 0


# ---------------------------------------------------------------- 2. revolve


def revolve(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """On a statement's due date, if at least the minimum was paid, the cycle principal still
    unpaid revolves from tomorrow (daily interest) instead of falling overdue."""
    day, rows = run.business_date, 0
    for product in run.products.values():
        if product.kind is not ProductKind.REVOLVING or not product.revolving.allowed:
            continue
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
            statements.c.credit_account_id.in_(select(ca.c.id).where(_accounts(part, product))),
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


# ---------------------------------------------------------------- 3. accrue


def accrue(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Today's revolving interest and penalty charges, once per account and day."""
    day = run.business_date
    _reset_amounts(conn)
    late_rows = 0
    for product in run.products.values():
        grace = timedelta(days=product.billing.grace_days)
        in_part = _line_in(part, product)
        interest_ppm = daily_ppm(product.revolving.daily_rate_bp)
        if product.revolving.allowed and interest_ppm:
            conn.execute(
                insert(amounts).from_select(
                    ["credit_account_id", "kind", "amount_fen"],
                    select(
                        lines.c.credit_account_id,
                        literal("interest"),
                        (isum(UNPAID_PRINCIPAL) * interest_ppm + 500_000) // 1_000_000,
                    )
                    .where(in_part, lines.c.revolving_since <= day, UNPAID_PRINCIPAL > 0)
                    .group_by(lines.c.credit_account_id),
                )
            )
        penalty_ppm = daily_ppm(product.late_fee.daily_rate_bp)
        if penalty_ppm:
            # penalty plus the plan's own annualized rate stays within the cap
            room = (literal(run.cap_bp) - plans.c.nominal_rate_bp) * PPM_PER_BP // 365
            rate = smaller(literal(penalty_ppm), non_negative(room))
            conn.execute(
                insert(amounts).from_select(
                    ["credit_account_id", "kind", "amount_fen"],
                    select(
                        lines.c.credit_account_id,
                        literal("penalty"),
                        (isum(UNPAID * rate) + 500_000) // 1_000_000,
                    )
                    .join(plans, plans.c.id == lines.c.plan_id)
                    .where(
                        in_part,
                        lines.c.due_date < day - grace,
                        lines.c.revolving_since.is_(None),
                        UNPAID > 0,
                    )
                    .group_by(lines.c.credit_account_id),
                )
            )
        if product.late_fee.fixed_fen:
            late_rows += _fixed_late_fees(conn, run, part, product)
    conn.execute(delete(amounts).where(amounts.c.amount_fen <= 0))
    # a day already accrued (accrued_through >= today) is never charged again
    conn.execute(
        delete(amounts).where(
            exists().where(
                accruals.c.credit_account_id == amounts.c.credit_account_id,
                accruals.c.kind == amounts.c.kind,
                accruals.c.accrued_through >= day,
            )
        )
    )
    total = (
        select(
            amounts.c.credit_account_id,
            amounts.c.kind,
            isum(amounts.c.amount_fen).label("amount_fen"),
        )
        .group_by(amounts.c.credit_account_id, amounts.c.kind)
        .subquery("day_total")
    )
    conn.execute(
        insert(accruals).from_select(
            [
                "credit_account_id",
                "kind",
                "accrued_fen",
                "paid_fen",
                "waived_fen",
                "accrued_through",
            ],
            select(
                total.c.credit_account_id,
                total.c.kind,
                literal(0),
                literal(0),
                literal(0),
                literal(day - timedelta(days=1)),
            ).where(
                ~exists().where(
                    accruals.c.credit_account_id == total.c.credit_account_id,
                    accruals.c.kind == total.c.kind,
                )
            ),
        )
    )
    conn.execute(
        update(accruals)
        .where(
            accruals.c.credit_account_id == total.c.credit_account_id,
            accruals.c.kind == total.c.kind,
        )
        .values(accrued_fen=accruals.c.accrued_fen + total.c.amount_fen, accrued_through=day)
    )
    entries, fen = late_rows, 0
    for kind, receivable, income in (
        ("interest", AccountCode.INTEREST_RECEIVABLE, AccountCode.INTEREST_INCOME),
        ("penalty", AccountCode.PENALTY_RECEIVABLE, AccountCode.PENALTY_INCOME),
    ):
        for currency in sorted({p.currency for p in run.products.values()}):
            n, amount = _post_charges(conn, run, total, kind, receivable, income, currency)
            entries, fen = entries + n, fen + amount
    return entries, fen


def _post_charges(
    conn: Connection,
    run: RunFacts,
    total: Any,
    kind: str,
    receivable: AccountCode,
    income: AccountCode,
    currency: str,
) -> Result:
    recv = ledger_accounts.alias("recv")
    day = run.business_date.isoformat()
    rows = (
        select(
            (literal(f"eod:{day}:{kind}:") + cast(total.c.credit_account_id, String)).label(
                "client_id"
            ),
            recv.c.id,
            literal(run.platform_id(income, currency)),
            total.c.amount_fen,
            literal(kind),
            cast(total.c.credit_account_id, String),
        )
        .join(ca, ca.c.id == total.c.credit_account_id)
        .join(recv, customer_join(recv, receivable.value, ca.c.id))
        .where(total.c.kind == kind, ca.c.currency == currency)
    )
    return post_rows(
        conn,
        rows,
        business_date=run.business_date,
        now=run.now,
        description=f"daily {kind}",
        ref_kind="credit_account",
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
            _line_in(part, product),
            lines.c.due_date == missed_on,
            UNPAID > 0,
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
    per_plan = (
        select(plans.c.id, plans.c.credit_account_id, charge.label("fee"))
        .join(missed, missed.c.plan_id == plans.c.id)
        .subquery()
    )
    conn.execute(
        update(plans)
        .where(plans.c.id == per_plan.c.id, per_plan.c.fee > 0)
        .values(late_fees_fen=plans.c.late_fees_fen + per_plan.c.fee)
    )
    conn.execute(
        insert(amounts).from_select(
            ["credit_account_id", "kind", "amount_fen"],
            select(per_plan.c.credit_account_id, literal("penalty"), per_plan.c.fee).where(
                per_plan.c.fee > 0
            ),
        )
    )
    return int(
        conn.execute(
            select(func.count()).select_from(per_plan).where(per_plan.c.fee > 0)
        ).scalar_one()
    )


# ---------------------------------------------------------------- 4. bill


def bill(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Bill what falls due: on a revolving product's statement day cut the statement (lines
    due on its due date, overdue and revolving amounts, charges; the minimum payment); on other
    products bill each line on its due date. Fees and scheduled interest of billed lines are
    earned (moved from unearned to income)."""
    day, rows, fen = run.business_date, 0, 0
    for product in run.products.values():
        if product.kind is ProductKind.REVOLVING:
            assert product.billing.statement_day is not None
            if day.day != product.billing.statement_day:
                continue
            due = roll(product, statement_due_date(product, day))
            rows += _cut_statements(conn, run, part, product, due)
        else:
            due = day
        n, amount = _earn(conn, run, part, product, due)
        rows, fen = rows + n, fen + amount
    return rows, fen


earned = Table(
    "fenqi_eod_earned",
    _TEMP,
    Column("plan_id", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


def _earn(conn: Connection, run: RunFacts, part: Partition, product: Product, due: date) -> Result:
    """Fees and scheduled interest of the lines billed now move from unearned to income; a
    plan never earns more than it has left (refunds and payoffs may have removed some)."""
    billed = and_(_line_in(part, product), lines.c.due_date == due, lines.c.billed_on.is_(None))
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
        return non_negative(
            plans.c[f"{kind}_fen"] - plans.c[f"{kind}_earned_fen"] - plans.c[f"{kind}_removed_fen"]
        )

    conn.execute(CreateTable(earned, if_not_exists=True))
    conn.execute(delete(earned))
    conn.execute(
        insert(earned).from_select(
            ["plan_id", "fee_fen", "interest_fen"],
            select(
                per_plan.c.plan_id,
                smaller(per_plan.c.fee, left("fee")),
                smaller(per_plan.c.interest, left("interest")),
            ).join(plans, plans.c.id == per_plan.c.plan_id),
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
        conn.execute(
            update(plans)
            .where(plans.c.id == earned.c.plan_id)
            .values(
                fee_earned_fen=plans.c.fee_earned_fen + earned.c.fee_fen,
                interest_earned_fen=plans.c.interest_earned_fen + earned.c.interest_fen,
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


def _cut_statements(
    conn: Connection, run: RunFacts, part: Partition, product: Product, due: date
) -> int:
    from sqlalchemy import case

    cycle = plans.c.kind == "cycle"
    revolvable = case(
        (
            and_(cycle, or_(lines.c.due_date == due, lines.c.revolving_since.is_not(None))),
            UNPAID_PRINCIPAL,
        ),
        else_=0,
    )
    line_sums = (
        select(
            lines.c.credit_account_id.label("account_id"),
            isum(UNPAID_PRINCIPAL).label("principal"),
            isum(UNPAID - UNPAID_PRINCIPAL).label("fee_interest"),
            isum(revolvable).label("revolvable"),
            isum(lines.c.fee_fen - lines.c.paid_fee_fen - lines.c.waived_fee_fen).label("fee"),
        )
        .join(plans, plans.c.id == lines.c.plan_id)
        .where(_line_in(part, product), lines.c.due_date <= due, UNPAID > 0)
        .group_by(lines.c.credit_account_id)
        .subquery("line_sums")
    )
    owed_charge = accruals.c.accrued_fen - accruals.c.paid_fen - accruals.c.waived_fen
    charge_sums = (
        select(
            accruals.c.credit_account_id.label("account_id"),
            isum(case((accruals.c.kind == "interest", owed_charge), else_=0)).label("interest"),
            isum(case((accruals.c.kind == "penalty", owed_charge), else_=0)).label("penalty"),
        )
        .where(accruals.c.credit_account_id.between(part.lo, part.hi))
        .group_by(accruals.c.credit_account_id)
        .subquery("charge_sums")
    )
    interest = func.coalesce(charge_sums.c.interest, 0)
    penalty = func.coalesce(charge_sums.c.penalty, 0)
    total = line_sums.c.principal + line_sums.c.fee_interest + interest + penalty
    keep_bp = BP_PER_UNIT - product.minimum_payment.principal_bp
    minimum = total - line_sums.c.revolvable * keep_bp // BP_PER_UNIT
    floor = product.minimum_payment.floor_fen
    minimum = case((minimum < floor, smaller(literal(floor), total)), else_=minimum)
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
                line_sums.c.account_id,
                literal(run.business_date),
                literal(due),
                line_sums.c.principal,
                line_sums.c.fee,
                line_sums.c.fee_interest - line_sums.c.fee + interest,
                penalty,
                total,
                minimum,
                literal(run.now),
            )
            .select_from(
                line_sums.outerjoin(charge_sums, charge_sums.c.account_id == line_sums.c.account_id)
            )
            .where(total > 0),
        )
    )
    del inserted  # psycopg reports no rowcount for INSERT … SELECT: count what is there
    return int(
        conn.execute(
            select(func.count())
            .select_from(statements)
            .where(
                statements.c.statement_date == run.business_date,
                statements.c.credit_account_id.between(part.lo, part.hi),
                statements.c.credit_account_id.in_(select(ca.c.id).where(_accounts(part, product))),
            )
        ).scalar_one()
    )


# ---------------------------------------------------------------- 5. age


def age(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Days past due of the oldest unpaid amount that is due and not revolving, and its bucket."""
    from sqlalchemy import case

    day = run.business_date
    oldest = (
        select(func.min(lines.c.due_date))
        .where(
            lines.c.credit_account_id == ca.c.id,
            lines.c.due_date < day,
            lines.c.revolving_since.is_(None),
            UNPAID > 0,
        )
        .scalar_subquery()
    )
    in_part = ca.c.id.between(part.lo, part.hi)
    conn.execute(
        update(ca)
        .where(in_part)
        .values(days_past_due=func.coalesce(days_between(conn, day, oldest), 0))
    )
    bucket = case(
        *[(ca.c.days_past_due <= hi, name) for name, _lo, hi in bucket_bounds()], else_="M7+"
    )
    conn.execute(
        update(ca)
        .where(in_part)
        .values(arrears_bucket=case((ca.c.days_past_due == 0, "M0"), else_=bucket))
    )
    late = conn.execute(
        select(func.count(), func.coalesce(isum(ca.c.days_past_due), 0)).where(
            in_part, ca.c.days_past_due > 0
        )
    ).one()
    return int(late[0]), 0


# ---------------------------------------------------------------- 6. charge off


RECEIVABLES = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.FEE_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
)


def charge_off(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Accounts at the charge-off threshold: fees and interest not yet billed are dropped, what
    is still receivable moves to written-off receivables, the loss is recognized against the
    allowance, and the account stops (status charged_off, limit 0 in the ledger)."""
    victims = select(ca.c.id).where(
        ca.c.id.between(part.lo, part.hi),
        ca.c.charged_off_on.is_(None),
        ca.c.days_past_due >= run.charge_off_days,
    )
    if conn.execute(select(func.count()).select_from(victims.subquery())).scalar_one() == 0:
        return 0, 0
    day = run.business_date.isoformat()
    for currency in sorted({p.currency for p in run.products.values()}):
        _drop_unbilled(conn, run, victims, currency)
    moved = 0
    written_off = ledger_accounts.alias("wo")
    for code in RECEIVABLES:
        recv = ledger_accounts.alias("recv")
        net = recv.c.debits_posted - recv.c.credits_posted
        _n, fen = post_rows(
            conn,
            select(
                (literal(f"eod:{day}:chargeoff:{code.value}:") + cast(ca.c.id, String)),
                written_off.c.id,
                recv.c.id,
                net,
                literal("charge_off"),
                cast(ca.c.id, String),
            )
            .join(recv, customer_join(recv, code.value, ca.c.id))
            .join(
                written_off,
                customer_join(written_off, AccountCode.WRITTEN_OFF_RECEIVABLE.value, ca.c.id),
            )
            .where(ca.c.id.in_(victims), net > 0),
            business_date=run.business_date,
            now=run.now,
            description="charge-off",
            ref_kind="credit_account",
        )
        moved += fen
    if moved:
        for currency in sorted({p.currency for p in run.products.values()}):
            wo = ledger_accounts.alias("wo2")
            amount = int(
                conn.execute(
                    select(func.coalesce(isum(wo.c.debits_posted - wo.c.credits_posted), 0))
                    .join(ca, customer_join(wo, AccountCode.WRITTEN_OFF_RECEIVABLE.value, ca.c.id))
                    .where(ca.c.id.in_(victims), ca.c.currency == currency)
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
    principal = ledger_accounts.alias("p")
    conn.execute(
        update(ledger_accounts)
        .where(
            ledger_accounts.c.id.in_(
                select(principal.c.id)
                .join(ca, customer_join(principal, AccountCode.PRINCIPAL_RECEIVABLE.value, ca.c.id))
                .where(ca.c.id.in_(victims))
            )
        )
        .values(debit_cap_fen=0)
    )
    count = conn.execute(
        update(ca)
        .where(ca.c.id.in_(victims))
        .values(charged_off_on=run.business_date, status="charged_off")
    ).rowcount
    return int(count or 0), moved


def _drop_unbilled(conn: Connection, run: RunFacts, victims: Any, currency: str) -> None:
    day = run.business_date.isoformat()
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
        recv = ledger_accounts.alias("recv")
        per_account = (
            select(lines.c.credit_account_id.label("account_id"), isum(owed).label("amount"))
            .where(unbilled)
            .group_by(lines.c.credit_account_id)
            .subquery()
        )
        post_rows(
            conn,
            select(
                (literal(f"eod:{day}:drop_{kind}:") + cast(per_account.c.account_id, String)),
                literal(run.platform_id(unearned, currency)),
                recv.c.id,
                per_account.c.amount,
                literal(f"charge_off_{kind}"),
                cast(per_account.c.account_id, String),
            )
            .join(ca, ca.c.id == per_account.c.account_id)
            .join(recv, customer_join(recv, receivable.value, ca.c.id))
            .where(per_account.c.amount > 0, ca.c.currency == currency),
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


STEPS = (
    ("expire_holds", expire_holds),
    ("revolve", revolve),
    ("accrue", accrue),
    ("bill", bill),
    ("age", age),
    ("charge_off", charge_off),
)
