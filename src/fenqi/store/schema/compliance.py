"""Compliance tables (issue 18): credit-report disputes (异议) and data-subject requests (PIPL).

Neither holds personal data in clear: a dispute refers to a credit account and a reported
record's date; a data-subject request to a customer id, with what was asked and what was done
(field names, counts, dates), never the values themselves.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, String, Table, Text

from fenqi.store.schema import BigId, metadata

bureau_disputes = Table(
    "bureau_disputes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("record_as_of", Date, nullable=False),  # the reported record disputed
    Column("item", String(24), nullable=False),  # balance | status | past_due | history | ...
    Column("claim", Text, nullable=False),  # the subject's words (redacted)
    Column("status", String(12), nullable=False),  # open | corrected | confirmed
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(64), nullable=False),  # customer:<id> | staff:<id>
    Column("channel", String(16), nullable=False),  # api | wallet | console | cli
    Column("due_on", Date, nullable=False),  # statutory answer date (20 days in China)
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("outcome_note", Text, nullable=False, default=""),
    Column("evidence", Text, nullable=False, default="{}"),  # JSON: ledger figures at resolution
    Column("correction_sent", String(24), nullable=False, default=""),  # bureau answer, or ""
)
Index("ix_bureau_disputes_account", bureau_disputes.c.credit_account_id, bureau_disputes.c.status)
Index("ix_bureau_disputes_customer", bureau_disputes.c.customer_id)

privacy_requests = Table(
    "privacy_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # access | correction | deletion | withdrawal
    Column("status", String(12), nullable=False),  # open | completed | scheduled | refused
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(64), nullable=False),  # customer:<id> | staff:<id> | cli
    Column("channel", String(16), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("erase_on", Date, nullable=True),  # deletion: when the kept records may go too
    Column("detail", Text, nullable=False, default="{}"),  # JSON: what was asked (no values)
    Column("outcome", Text, nullable=False, default="{}"),  # JSON: what was done, kept and why
)
Index("ix_privacy_requests_customer", privacy_requests.c.customer_id)
Index("ix_privacy_requests_status", privacy_requests.c.status, privacy_requests.c.due_on)

# The complaints register (migration 0018): a complaint a staff member took (phone, letter,
# e-mail, app, a regulator's referral...), its answer date and outcome. The text is kept
# redacted (privacy.masking.redact_text), like a dispute's claim.
complaints = Table(
    "complaints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("category", String(24), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(12), nullable=False),  # open | closed
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(64), nullable=False),  # staff:<id> | cli
    Column("due_on", Date, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("outcome", String(16), nullable=True),  # upheld | partly_upheld | rejected | withdrawn
    Column("outcome_note", Text, nullable=False, default=""),
)
Index("ix_complaints_status", complaints.c.status, complaints.c.due_on)
Index("ix_complaints_customer", complaints.c.customer_id)
