"""Bureau tables on fenqi's side: the reports fenqi obtained (encrypted, with a retention date),
the account records it reported each month (the source of the 24-month history and of the
reconciliation), and the notices sent before a first negative record."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from fenqi.store.schema import BigId, metadata

bureau_reports = Table(
    "bureau_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("consent_id", BigInteger, nullable=True),  # the authorization it was made under
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("status", String(12), nullable=False),  # ok | unavailable | refused
    Column("error_code", String(48), nullable=False, default=""),
    Column("key_id", String(32), nullable=True),
    Column("report_enc", Text, nullable=True),  # AES-GCM, context bureau_reports.report
    Column("attributes", Text, nullable=False, default="{}"),  # JSON, no personal data
    Column("retention_until", Date, nullable=False),
)
Index("ix_bureau_reports_customer", bureau_reports.c.customer_id)

bureau_records = Table(
    "bureau_records",
    metadata,
    Column("credit_account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("as_of", Date, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(12), nullable=False),
    Column("dpd", Integer, nullable=False),
    Column("limit_fen", BigInteger, nullable=False),
    Column("balance_fen", BigInteger, nullable=False),
    Column("past_due_fen", BigInteger, nullable=False),
    Column("charge_off_fen", BigInteger, nullable=False),
    Column("special", String(12), nullable=False, default=""),
    Column("correction", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

bureau_notices = Table(
    "bureau_notices",
    metadata,
    Column("credit_account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("notified_at", DateTime(timezone=True), nullable=False),
    Column("month", String(7), nullable=False),  # the month of the first negative record
)

# Post-loan monitoring runs (migration 0018): one row per credit account and run date, so a run
# is idempotent per account per date and a rerun picks up what the bureau did not answer.
bureau_monitoring = Table(
    "bureau_monitoring",
    metadata,
    Column("credit_account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("run_date", Date, primary_key=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),  # ok | unavailable | refused | error
    Column("error_code", String(48), nullable=False, default=""),
    Column("bureau_report_id", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_bureau_monitoring_status", bureau_monitoring.c.status, bureau_monitoring.c.run_date)

# Account events reported between monthly files (migration 0018): opened, closed, charged_off,
# paid_off, one row per account, date and event; sent_at once the bureau accepted its record,
# so a rerun of the day does not send it twice.
bureau_events = Table(
    "bureau_events",
    metadata,
    Column("credit_account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("event_date", Date, primary_key=True),
    Column("event", String(12), primary_key=True),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("submission_id", String(64), nullable=True),
)
