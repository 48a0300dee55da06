"""Privacy tables: staff users, consent records, the access audit log.

Audit rows are append-only: no code updates or deletes them (fenqi/privacy/audit.py offers no
such function). Personal data never appears here in plain text: staff rows hold an argon2 hash,
consents refer to a customer id, audit reason and detail are redacted before they are written.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from fenqi.store.schema import BigId, metadata

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),  # lower case
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("role", String(24), nullable=False),  # fenqi.privacy.staff.Role
    Column("display_name", String(128), nullable=False, default=""),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),  # bureau_inquiry | shopping_data | marketing
    Column("text_version", String(32), nullable=False),  # which consent wording was shown
    Column("scope", String(255), nullable=False, default=""),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("channel", String(48), nullable=False),  # app | web | merchant:<shop id> | ops
    CheckConstraint("revoked_at IS NULL OR revoked_at >= granted_at", name="revoked_after"),
)
Index("ix_consents_customer_kind", consents.c.customer_id, consents.c.kind)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_kind", String(16), nullable=False),  # staff | merchant | customer | system
    Column("actor_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. account.freeze, customer.reveal_pii
    Column("target_kind", String(32), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),  # JSON object
)
Index("ix_audit_log_target", audit_log.c.target_kind, audit_log.c.target_id, audit_log.c.id)
Index("ix_audit_log_actor", audit_log.c.actor_id, audit_log.c.id)

login_throttle = Table(
    "login_throttle",  # failed sign-ins per account ("user:<name>") and per address ("addr:<ip>")
    metadata,
    Column("subject", String(120), primary_key=True),
    Column("failures", Integer, nullable=False),  # within the window that began at window_start
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)
