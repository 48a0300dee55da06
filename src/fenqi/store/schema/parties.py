"""Who deals with fenqi: shops (merchants) and their API keys, shoppers (customers), sessions,
applications and limit changes. Personal data is stored only encrypted, with a key id beside it,
and found through keyed hashes (blind indexes), never by plaintext.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from fenqi.store.schema import BigId, metadata

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(32), primary_key=True),  # "m_..." chosen by the operator
    Column("name", String(200), nullable=False),
    Column("category", String(40), nullable=False),  # merchant category, used by checkout risk
    # what the shop sells in: its orders, and the products its shoppers apply for, are in it
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("status", String(12), nullable=False),  # active | suspended
    Column("created_at", DateTime(timezone=True), nullable=False),
)

merchant_api_keys = Table(
    "merchant_api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in lists to tell keys apart
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256; the key is shown once
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # a rotated-out key keeps working until this instant (the shop chose it, at most 7 days on)
    Column("expires_at", DateTime(timezone=True), nullable=True),
    # when a request last authenticated with the key, to the granularity in credit/merchants.py
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False),
    Column("name_enc", Text, nullable=False),
    Column("id_number_enc", Text, nullable=False),
    Column("phone_enc", Text, nullable=False),
    Column("id_number_bidx", String(64), nullable=False, unique=True),
    Column("phone_bidx", String(64), nullable=False),
    Column("income_band", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_customers_phone_bidx", customers.c.phone_bidx)

customer_links = Table(
    "customer_links",  # which shops a shopper has dealt with: only they may act for the shopper
    metadata,
    Column("customer_id", BigInteger, ForeignKey("customers.id"), primary_key=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",  # bearer tokens of shoppers and staff, stored hashed
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("subject_kind", String(12), nullable=False),  # customer | staff
    Column("subject_id", String(64), nullable=False),
    Column("merchant_id", String(32), nullable=True),  # the shop whose session obtained it
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, ForeignKey("customers.id"), nullable=False),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("product", String(64), nullable=False),
    Column("outcome", String(12), nullable=False),  # approved | declined | review
    Column("tier", String(32), nullable=True),
    Column("limit_fen", BigInteger, nullable=True),
    Column("reasons", Text, nullable=False),  # JSON list of reason codes
    Column("decision_id", String(64), nullable=True),  # the risk engine's decision record
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_applications_customer", applications.c.customer_id)

limit_changes = Table(
    "limit_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("old_limit_fen", BigInteger, nullable=False),
    Column("new_limit_fen", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_by", String(64), nullable=False),  # staff:<id> | decision:<id> | system
    Column("at", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("merchant_order_ref", String(64), nullable=False),
    Column("credit_account_id", BigInteger, ForeignKey("credit_accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),  # authorized
    Column("terms", Integer, nullable=False),  # 0 = interest-free cycle
    Column("status", String(20), nullable=False),
    Column("hold_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True),
    Column("captured_fen", BigInteger, nullable=False, default=0),
    Column("refunded_fen", BigInteger, nullable=False, default=0),
    Column("captures", Integer, nullable=False, default=0),
    Column("risk_decision", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("merchant_id", "merchant_order_ref", name="uq_orders_merchant_ref"),
)
Index("ix_orders_account", orders.c.credit_account_id)

# Each capture of an order books its own plan (a partial capture is a purchase of its own: its
# own schedule and due dates), and each refund is a record of its own, so a shop can list and
# fetch them (GET /v1/orders/{id}/captures, /refunds).
order_captures = Table(
    "order_captures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigInteger, ForeignKey("orders.id"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, … in the order
    Column("amount_fen", BigInteger, nullable=False),
    Column("plan_id", BigInteger, ForeignKey("installment_plans.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_id", "number", name="uq_order_captures_number"),
)

order_refunds = Table(
    "order_refunds",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigInteger, ForeignKey("orders.id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("paid_back_to_shopper_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_order_refunds_order", order_refunds.c.order_id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(80), primary_key=True),  # who: merchant:<id> | customer:<id> | staff
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # null while the first request is in flight
    Column("response_body", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
