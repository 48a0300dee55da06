"""Ledger tables: accounts, their posted and pending balances, journal entries, postings.

TigerBeetle's model in SQL: an account carries debits/credits pending and posted; a posting is
one debit-credit pair of one amount, so every entry balances by construction; entries and
postings are never updated except to resolve a pending hold, and never deleted.

An account's identity (code, owner, currency) and its balances live in two tables: the balances
and the rules checked when they move are rewritten by nearly every entry, and a row of only those
is a fifth of the width of the whole account, so a day that moves hundreds of thousands of
receivables rewrites a fifth of the pages.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False),  # chart-of-accounts code
    Column("owner_kind", String(16), nullable=False),  # platform | customer | merchant | funder
    Column("owner_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("code", "owner_kind", "owner_id", "currency", name="uq_ledger_accounts_key"),
)

# One row per account, written with it: its balances and the rules checked in the same UPDATE
# that moves them (see ledger/balances.py).
ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column(
        "account_id",
        BigInteger,
        ForeignKey("ledger_accounts.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("debit_cap_fen", BigInteger, nullable=True),  # net debit exposure (posted+pending) ≤
    Column("credits_must_not_exceed_debits", Boolean, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    CheckConstraint(
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 "
        "AND credits_posted >= 0",
        name="non_negative",
    ),
    sqlite_with_rowid=False,
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("client_id", String(128), nullable=False, unique=True),  # idempotency key
    Column("content_hash", String(64), nullable=False),
    # single (posted at once) | pending (a hold) | post (resolves a hold) | void | expire | reversal
    Column("kind", String(12), nullable=False),
    Column("status", String(12), nullable=False),  # posted | pending | resolved | rejected
    Column("reject_code", String(48), nullable=True),
    Column("pending_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True),
    Column(
        "reverses_entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=True, unique=True
    ),
    Column("timeout_at", DateTime(timezone=True), nullable=True),
    Column("business_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("ref_kind", String(24), nullable=True),  # what the entry is about (order, plan ...)
    Column("ref_id", String(64), nullable=True),
)
# the holds still open, by expiry: only pending entries are indexed (a posted entry, the vast
# majority, would add an index row that no query reads)
OPEN_PENDING = text("status = 'pending'")
Index(
    "ix_ledger_entries_open_pending",
    ledger_entries.c.timeout_at,
    sqlite_where=OPEN_PENDING,
    postgresql_where=OPEN_PENDING,
)
Index("ix_ledger_entries_ref", ledger_entries.c.ref_kind, ledger_entries.c.ref_id)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, ForeignKey("ledger_entries.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("debit_account_id", BigInteger, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("credit_account_id", BigInteger, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("phase", String(8), nullable=False),  # pending | posted
    # A pending posting's amount not yet posted or released; 0 once resolved.
    Column("pending_remaining_fen", BigInteger, nullable=False, default=0),
    Column("code", String(40), nullable=False, default=""),  # what moved: principal, fee ...
    CheckConstraint("amount_fen > 0", name="positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    CheckConstraint(
        "pending_remaining_fen >= 0 AND pending_remaining_fen <= amount_fen", name="remaining"
    ),
)
Index("ix_ledger_postings_entry", ledger_postings.c.entry_id)
Index("ix_ledger_postings_debit", ledger_postings.c.debit_account_id)
Index("ix_ledger_postings_credit", ledger_postings.c.credit_account_id)

# Hot accounts (a shop's payable, the platform's income and clearing accounts) are touched by
# almost every entry; one balance row would make every checkout wait for the one before it.
# Their balance changes go to one of SLOTS sub-rows instead, chosen by entry id, and their
# balance is the account row plus the sum of its slots. Hot accounts carry no balance rules,
# so no check ever needs the whole sum at once. A slot's pending columns may go negative (a
# hold placed in one slot is released from another); only the sums are balances.
ledger_account_slots = Table(
    "ledger_account_slots",
    metadata,
    Column("account_id", BigInteger, ForeignKey("ledger_accounts.id"), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("debits_pending", BigInteger, nullable=False, default=0),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_pending", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
)
