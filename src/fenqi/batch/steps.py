"""The end-of-day steps, each a few set-based statements over one account partition.

Order (fixed): expire holds, decide revolving on today's due dates, accrue today's interest and
penalties, bill (earn fees and cut statements), age arrears, charge off. Each step is a
function of (connection, run facts, partition) that returns (rows, amount_fen) for the run's
figures. Rules that vary by product are read from the product files, never branched on names.

Accrue, bill and age read the partition's plan lines through one snapshot: a single pass over
the lines that matter today (due by today, or by the statement's due date on a statement day,
and not fully paid) that leaves one row per account in a temporary table, with everything the
three steps aggregate (revolving principal, penalty base, statement sums, the due date of the
oldest amount overdue). The snapshot is taken after revolve, once per partition and
connection, and is rebuilt whenever a step finds none for its partition (a resumed run), so
every step reads the same figures as if it had scanned the lines itself: the steps that run
after it change no column it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Date,
    FromClause,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.schema import CreateTable

from fenqi.batch.sql import (
    OPEN_LINE,
    UNPAID,
    UNPAID_INTEREST,
    UNPAID_PRINCIPAL,
    Partition,
    isum,
    non_negative,
    smaller,
)
from fenqi.clock import Clock
from fenqi.credit.billing import PPM_PER_BP, daily_ppm
from fenqi.ledger.bulk import post_journal, post_rows
from fenqi.ledger.chart import AccountCode
from fenqi.money import BP_PER_UNIT
from fenqi.pricing.due_dates import roll, statement_due_date
from fenqi.products.model import Product, ProductKind
from fenqi.store.schema import BigId
from fenqi.store.schema.batch import accruals, statements
from fenqi.store.schema.credit import UNBILLED_WITH_CHARGES, plan_income
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.ledger import ledger_accounts, ledger_balances
from fenqi.store.upsert import conflict_insert

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


_TEMP = MetaData()


def _temp(name: str, *columns: Column[Any]) -> Table:
    return Table(name, _TEMP, *columns, prefixes=["TEMPORARY"])


_DDL: dict[tuple[str, str], str] = {}


def _ensure(conn: Connection, table: Table) -> None:
    """CREATE TEMPORARY TABLE IF NOT EXISTS, compiled once per dialect (DDL is not cached)."""
    key = (conn.dialect.name, table.name)
    ddl = _DDL.get(key)
    if ddl is None:
        ddl = _DDL[key] = str(CreateTable(table, if_not_exists=True).compile(dialect=conn.dialect))
    conn.exec_driver_sql(ddl)


def _fresh(conn: Connection, table: Table) -> None:
    _ensure(conn, table)
    conn.execute(delete(table))


def _product_lines(run: RunFacts, part: Partition, product: Product) -> ColumnElement[bool]:
    """Plan lines of the partition's accounts of a product that are not charged off."""
    if len(run.products) == 1:  # every account of the partition has this product
        return lines.c.credit_account_id.not_in(
            select(ca.c.id).where(
                ca.c.id.between(part.lo, part.hi), ca.c.charged_off_on.is_not(None)
            )
        )
    return lines.c.credit_account_id.in_(select(ca.c.id).where(_accounts(part, product)))


def _per_product(
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


def _ledger_id(code: AccountCode, account_id: Any, currency: Any) -> Any:
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


def _analyze(conn: Connection, table: Table) -> None:
    """Statistics for a freshly filled temporary table (PostgreSQL never analyzes them)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {table.name}")


# ---------------------------------------------------------------- the snapshot

snapshot = _temp(
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
snapshot_key = _temp("fenqi_eod_snapshot_key", Column("key", String(120), primary_key=True))


def take_snapshot(conn: Connection, run: RunFacts, part: Partition) -> None:
    """The partition's per-account line facts, unless this connection holds them already.

    One pass over the lines due by the horizon (today, or the latest statement due date cut
    today) that are not fully paid, grouped by account. SQLite evaluates every aggregate for
    every line, so there are as few as the steps need, and the statement sums are taken
    unconditionally when every statement cut today is due on the horizon (the usual case)."""
    _ensure(conn, snapshot_key)
    _ensure(conn, snapshot)
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
    penalty_ppm = _per_product(run, lambda p: daily_ppm(p.late_fee.daily_rate_bp), product)
    room = (literal(run.cap_bp) - plans.c.nominal_rate_bp) * PPM_PER_BP // 365
    rate = smaller(penalty_ppm, non_negative(room))
    overdue_before = _per_product(
        run, lambda p: day - timedelta(days=p.billing.grace_days), product
    )
    stmt: list[Any] = [literal(0)] * 4
    if stmt_dues:
        stmt_due = _per_product(run, run.statement_due, product)
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
    _analyze(conn, snapshot)


def _in_product(product: Product) -> ColumnElement[bool]:
    return and_(snapshot.c.product == product.name, snapshot.c.active == 1)


# ---------------------------------------------------------------- 1. holds


def expire_holds(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Authorizations past their expiry release their hold (done once, in partition 0)."""
    if part.number != 0:
        return 0, 0
    from fenqi.credit.checkout import expire_orders

    return expire_orders(conn, run.clock), 0


# ---------------------------------------------------------------- 2. revolve


def _accounts(part: Partition, product: Product) -> ColumnElement[bool]:
    return and_(
        ca.c.id.between(part.lo, part.hi),
        ca.c.product == product.name,
        ca.c.charged_off_on.is_(None),
    )


def revolve(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """On a statement's due date, if at least the minimum was paid, the cycle principal still
    unpaid revolves from tomorrow (daily interest) instead of falling overdue."""
    day, rows = run.business_date, 0
    revolving = [
        p
        for p in run.products.values()
        if p.kind is ProductKind.REVOLVING and p.revolving.allowed
    ]
    if not revolving or not conn.execute(
        select(statements.c.id)
        .where(
            statements.c.due_date == day,
            statements.c.credit_account_id.between(part.lo, part.hi),
        )
        .limit(1)
    ).first():
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

charges = _temp(
    "fenqi_eod_charges",
    Column("credit_account_id", BigInteger, primary_key=True),
    Column("kind", String(12), primary_key=True),  # interest | penalty
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)
late_fees = _temp(
    "fenqi_eod_late_fees",
    Column("credit_account_id", BigInteger, nullable=False),  # one row per plan charged
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)


def accrue(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """Today's revolving interest and penalty charges, once per account and day."""
    day = run.business_date
    take_snapshot(conn, run, part)
    _fresh(conn, charges)
    s = snapshot.c
    interest_ppm = _per_product(
        run,
        lambda p: daily_ppm(p.revolving.daily_rate_bp) if p.revolving.allowed else 0,
        s.product,
    )
    interest = (s.revolving_principal * interest_ppm + 500_000) // 1_000_000
    penalty = (s.penalty_ppm + 500_000) // 1_000_000
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
    _analyze(conn, charges)
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
        _ledger_id(receivable, account, charges.c.currency),
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
            _product_lines(run, part, product),
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
    _fresh(conn, late_fees)
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


# ---------------------------------------------------------------- 4. bill


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


earned = _temp(
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
        _product_lines(run, part, product),
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
    _fresh(conn, earned)
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
                    "fee_earned_fen": plan_income.c.fee_earned_fen
                    + upsert.excluded.fee_earned_fen,
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
    total appears five times in the minimum's rule."""
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
        .where(_in_product(product), s.stmt_owed > 0)
        .cte("figures")
        .prefix_with("MATERIALIZED")
    )
    f = figures.c
    keep_bp = BP_PER_UNIT - product.minimum_payment.principal_bp
    minimum = f.total - f.revolvable * keep_bp // BP_PER_UNIT
    floor_fen = product.minimum_payment.floor_fen
    minimum = case((minimum < floor_fen, smaller(literal(floor_fen), f.total)), else_=minimum)
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
                statements.c.credit_account_id.in_(
                    select(s.account_id).where(_in_product(product))
                ),
            )
        ).scalar_one()
    )


# ---------------------------------------------------------------- 5. age


def age(conn: Connection, run: RunFacts, part: Partition) -> Result:
    """The due date of each account's oldest amount due, unpaid and not revolving, from which
    its days past due and bucket follow. Only accounts where that date moves are written: one
    that stays late is not rewritten every day."""
    take_snapshot(conn, run, part)
    s = snapshot.c
    conn.execute(
        update(ca)
        .where(
            ca.c.id == s.account_id,
            s.past_due_since.is_not(None),
            or_(ca.c.past_due_since.is_(None), ca.c.past_due_since != s.past_due_since),
        )
        .values(past_due_since=s.past_due_since)
    )
    conn.execute(
        update(ca)
        .where(
            ca.c.id.between(part.lo, part.hi),
            ca.c.past_due_since.is_not(None),
            ~exists().where(s.account_id == ca.c.id, s.past_due_since.is_not(None)),
        )
        .values(past_due_since=None)
    )
    late = conn.execute(
        select(func.count()).select_from(snapshot).where(s.past_due_since.is_not(None))
    ).scalar_one()
    return int(late), 0


# ---------------------------------------------------------------- 6. charge off


RECEIVABLES = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.FEE_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
)

victims_table = _temp(
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
    _fresh(conn, victims_table)
    codes = (AccountCode.WRITTEN_OFF_RECEIVABLE, *RECEIVABLES)
    conn.execute(
        insert(victims_table).from_select(
            ["account_id", "currency", *[c.name for c in victims_table.c][2:]],
            select(
                ca.c.id,
                ca.c.currency,
                *[_ledger_id(code, ca.c.id, ca.c.currency) for code in codes],
            ).where(*due),
        )
    )
    _analyze(conn, victims_table)
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


def _apply_credit(conn: Connection, run: RunFacts, part: Partition) -> Result:
    from fenqi.batch.credit_step import apply_credit

    return apply_credit(conn, run, part)


STEPS = (
    ("expire_holds", expire_holds),
    ("apply_credit", _apply_credit),  # credit balances pay what is due (batch/credit_step.py)
    ("revolve", revolve),
    ("accrue", accrue),
    ("bill", bill),
    ("age", age),
    ("charge_off", charge_off),
)
