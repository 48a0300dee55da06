"""Credit tables: credit accounts, installment plans and their lines, repayments.

Every row that moves with a customer is keyed by credit_account_id, so the schema can later be
distributed by that key. Money columns are integer fen.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from fenqi.store.schema import BigId, metadata

credit_accounts = Table(
    "credit_accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_ref", String(64), nullable=False),  # the customer (issue 4: customers table)
    Column("product", String(64), nullable=False),
    Column("tier", String(32), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("limit_fen", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),  # active | frozen | closed
    Column("principal_account_id", BigInteger, ForeignKey("ledger_accounts.id"), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    # arrears, kept by the end-of-day run: the due date of the oldest amount due, unpaid and not
    # revolving (NULL when current). Days past due and the bucket follow from it and the date
    # asked about (credit.arrears.arrears_on), so an account that stays late is written when
    # this date moves (it falls late, pays its oldest amount, is cured), not every day.
    Column("past_due_since", Date, nullable=True),
    Column("charged_off_on", Date, nullable=True),
    # what funders' eligibility and region limits look at (funding, migration 0017), kept from
    # the validated resident ID at opening: its first six digits (province, city, county) and
    # the birth date; NULL when unknown (a rule that needs them refuses: docs/funding.md)
    Column("id_region", String(6), nullable=True),
    Column("birth_date", Date, nullable=True),
    CheckConstraint("limit_fen >= 0", name="limit_non_negative"),
    UniqueConstraint("customer_ref", "product", name="uq_credit_accounts_customer_product"),
)

installment_plans = Table(
    "installment_plans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("order_ref", String(64), nullable=False),
    Column("kind", String(12), nullable=False),  # cycle (pay in the free period) | installments
    Column("terms", Integer, nullable=False),
    Column("method", String(32), nullable=False),
    Column("purchase_date", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    Column("nominal_rate_bp", Integer, nullable=False),  # disclosed annualized rate (IRR)
    Column("effective_rate_bp", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # open | paid_off | refunded | converted
    Column("refunded_fen", BigInteger, nullable=False, default=0),  # principal refunded
    # fee and interest taken off the plan by refunds and early payoff (waived or paid back)
    Column("fee_removed_fen", BigInteger, nullable=False, default=0),
    Column("interest_removed_fen", BigInteger, nullable=False, default=0),
    Column("late_fees_fen", BigInteger, nullable=False, default=0),  # fixed late fees charged
    Column("ledger_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("credit_account_id", "order_ref", name="uq_plans_account_order"),
)
Index("ix_installment_plans_account", installment_plans.c.credit_account_id)

# Income recognized so far on a plan (by the end-of-day run as its periods are billed), kept
# apart from the plan's terms: billing adds to it for most installment plans every month, and a
# row here is a few bytes where a plan row is a hundred, so a statement day rewrites a few pages
# instead of every page of the plans. A plan with nothing earned yet has no row.
plan_income = Table(
    "plan_income",
    metadata,
    Column(
        "plan_id",
        BigInteger,
        ForeignKey("installment_plans.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("fee_earned_fen", BigInteger, nullable=False),
    Column("interest_earned_fen", BigInteger, nullable=False),
    CheckConstraint("fee_earned_fen >= 0 AND interest_earned_fen >= 0", name="earned_non_negative"),
    sqlite_with_rowid=False,
)

plan_lines = Table(
    "plan_lines",
    metadata,
    Column("plan_id", BigInteger, ForeignKey("installment_plans.id"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("interest_fen", BigInteger, nullable=False),
    Column("paid_principal_fen", BigInteger, nullable=False, default=0),
    Column("paid_fee_fen", BigInteger, nullable=False, default=0),
    Column("paid_interest_fen", BigInteger, nullable=False, default=0),
    # the day the line's fee and interest were earned on billing (statement day or due date);
    # stays NULL on a line without fee or interest, where billing has nothing to earn
    Column("billed_on", Date, nullable=True),
    # after a minimum payment, unpaid cycle principal revolves (daily interest, not overdue)
    Column("revolving_since", Date, nullable=True),
    # fee and interest no longer owed (early payoff, refund): booked back in the ledger
    Column("waived_principal_fen", BigInteger, nullable=False, default=0),  # refunds
    Column("waived_fee_fen", BigInteger, nullable=False, default=0),
    Column("waived_interest_fen", BigInteger, nullable=False, default=0),
    CheckConstraint(
        "paid_principal_fen + waived_principal_fen <= principal_fen "
        "AND paid_fee_fen + waived_fee_fen <= fee_fen "
        "AND paid_interest_fen + waived_interest_fen <= interest_fen",
        name="paid_within_due",
    ),
)
Index("ix_plan_lines_account_due", plan_lines.c.credit_account_id, plan_lines.c.due_date)
# the lines whose fee or interest is still to be earned, by due date: billing seeks straight to
# the lines falling due instead of reading every line of a partition's accounts
UNBILLED_WITH_CHARGES = text("billed_on IS NULL AND fee_fen + interest_fen > 0")
Index(
    "ix_plan_lines_unbilled",
    plan_lines.c.due_date,
    plan_lines.c.credit_account_id,
    sqlite_where=UNBILLED_WITH_CHARGES,
    postgresql_where=UNBILLED_WITH_CHARGES,
)

repayments = Table(
    "repayments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("client_id", String(128), nullable=False, unique=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("to_principal_fen", BigInteger, nullable=False),
    Column("to_fee_fen", BigInteger, nullable=False),
    Column("to_interest_fen", BigInteger, nullable=False),
    Column("to_penalty_fen", BigInteger, nullable=False),
    Column("to_credit_balance_fen", BigInteger, nullable=False),
    Column("ledger_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("reversed_at", DateTime(timezone=True), nullable=True),  # a bounced payment
    CheckConstraint("amount_fen > 0", name="positive"),
)
Index("ix_repayments_account", repayments.c.credit_account_id)

# Where each fen of a repayment went (plan line or accrued charge, and kind), so a payment that
# bounces can be taken back exactly.
repayment_parts = Table(
    "repayment_parts",
    metadata,
    Column("repayment_id", BigInteger, ForeignKey("repayments.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("plan_id", BigInteger, nullable=True),
    Column("period", Integer, nullable=True),
    Column("accrual_kind", String(12), nullable=True),
    Column("kind", String(12), nullable=False),  # principal | fee | interest | penalty
    Column("amount_fen", BigInteger, nullable=False),
)
