"""Risk engine tables (decisions, transaction-risk state). Owned by the risk area.

Decision records keep what decided and why (inputs fingerprint, model and flow versions, score,
PD, outcome, limit, reason codes); live and shadow (champion/challenger) decisions share an
`application_ref`. Transaction-risk state is counters that the checkout path increments with one
conditional upsert per key: the database row lock, not a Python lock, serializes two checkouts
on the same account or device. Hot rows are keyed by account id or device/phone key.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    String,
    Table,
)

from fenqi.store.schema import BigId, metadata

risk_decisions = Table(
    "risk_decisions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("application_ref", String(128), nullable=False),  # live + shadow share it
    Column("applicant_id", String(128), nullable=False),
    Column("variant", String(16), nullable=False),  # champion | challenger
    Column("is_live", Boolean, nullable=False),  # the decision that was acted on
    Column("experiment_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),  # approve | decline | refer
    Column("limit_fen", BigInteger, nullable=False),
    Column("pricing_tier", String(16), nullable=False),
    Column("score", Integer, nullable=False),
    Column("pd", Double, nullable=False),
    Column("reason_codes", JSON, nullable=False),
    Column("model_reasons", JSON, nullable=False),
    Column("model_id", String(64), nullable=False),
    Column("flow_version", String(128), nullable=False),
    Column("inputs_fingerprint", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("limit_fen >= 0", name="limit_not_negative"),
    CheckConstraint("pd >= 0 AND pd <= 1", name="pd_is_probability"),
)
Index("ix_risk_decisions_applicant", risk_decisions.c.applicant_id, risk_decisions.c.decided_at)
Index("ix_risk_decisions_application", risk_decisions.c.application_ref)

# Velocity counters in tumbling windows; the rules blend the previous window in by overlap
# (sliding-window estimate), so a burst across a window boundary is still seen.
risk_velocity_counters = Table(
    "risk_velocity_counters",
    metadata,
    Column("subject_kind", String(16), primary_key=True),  # account | device
    Column("subject_key", String(128), primary_key=True),
    Column("window_seconds", Integer, primary_key=True),
    Column("window_start", BigInteger, primary_key=True),  # epoch seconds, multiple of window
    Column("txn_count", Integer, nullable=False),  # every attempt, declined ones too
    Column("amount_fen", BigInteger, nullable=False),  # only attempts not declined
)

# Which accounts were seen on a device or phone: many accounts on one device is a fraud ring sign.
risk_identity_links = Table(
    "risk_identity_links",
    metadata,
    Column("link_kind", String(16), primary_key=True),  # device | phone
    Column("link_key", String(128), primary_key=True),
    Column("account_id", String(64), primary_key=True),
    Column("first_seen_s", BigInteger, nullable=False),  # epoch seconds
    Column("last_seen_s", BigInteger, nullable=False),  # rules count links seen recently
)

# Lifetime exposure per account, for first-purchase and new-account limits.
risk_account_exposure = Table(
    "risk_account_exposure",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("accepted_count", Integer, nullable=False),
    Column("accepted_amount_fen", BigInteger, nullable=False),
)

# One row per assessed checkout; `transaction_ref` makes a retried assessment idempotent.
risk_transaction_assessments = Table(
    "risk_transaction_assessments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_ref", String(128), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False),
    Column("device_id", String(128), nullable=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("merchant_category", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # approve | decline | step_up
    Column("reason_code", String(64), nullable=False),
    Column("reason_codes", JSON, nullable=False),
    Column("assessed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
)
Index(
    "ix_risk_txn_account",
    risk_transaction_assessments.c.account_id,
    risk_transaction_assessments.c.assessed_at,
)
