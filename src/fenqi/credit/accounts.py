"""Credit accounts and the ledger accounts they own: open one, read one, find a customer's.

Runs inside the caller's transaction, as every credit service does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError, NotFound
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import open_accounts
from fenqi.ledger.chart import CUSTOMER_CODES, AccountCode, OwnerKind
from fenqi.products.model import Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import credit_accounts as ca

PLATFORM = "platform"  # owner id of the platform's own ledger accounts


def ledger_account(
    conn: Connection,
    clock: Clock,
    code: AccountCode,
    owner_kind: OwnerKind,
    owner: str,
    currency: str,
    cap: int | None = None,
) -> int:
    """The ledger account of `owner` with this code and currency, opened when missing."""
    return ledger.open_account(conn, clock, code, owner_kind, owner, currency, cap)


def platform_account(conn: Connection, clock: Clock, code: AccountCode, currency: str) -> int:
    return ledger_account(conn, clock, code, OwnerKind.PLATFORM, PLATFORM, currency)


def customer_account(
    conn: Connection, clock: Clock, credit_account_id: int, code: AccountCode, currency: str
) -> int:
    return ledger_account(conn, clock, code, OwnerKind.CUSTOMER, str(credit_account_id), currency)


_ACCOUNT_OF = Prepared(
    select(ca.c.id).where(
        ca.c.customer_ref == bindparam("k_customer"), ca.c.product == bindparam("k_product")
    )
)


def account_of(conn: Connection, customer_ref: str, product: str) -> int | None:
    """The customer's account on the product, if any."""
    found = _ACCOUNT_OF.run(conn, {"k_customer": customer_ref, "k_product": product}).scalar()
    return None if found is None else int(found)


def open_credit_account(
    conn: Connection,
    clock: Clock,
    product: Product,
    customer_ref: str,
    limit_fen: int,
    tier: str | None = None,
    *,
    id_region: str | None = None,
    birth_date: date | None = None,
) -> int:
    """A new credit account and its ledger accounts. `id_region` (the resident ID's first six
    digits) and `birth_date` are kept for funders' eligibility and region limits (funding)."""
    if not product.limits.min_fen <= limit_fen <= product.limits.max_fen:
        raise CreditError(
            f"limit_fen: {limit_fen} is outside {product.name}'s range "
            f"{product.limits.min_fen}..{product.limits.max_fen}",
            code="limit_out_of_range",
        )
    if tier is not None:
        found = product.tier(tier)
        if found is None:
            raise CreditError(f"tier: {product.name} has no tier {tier!r}", code="unknown_tier")
        if limit_fen > found.limit_max_fen:
            raise CreditError(
                f"limit_fen: {limit_fen} is above tier {tier}'s maximum {found.limit_max_fen}",
                code="limit_out_of_range",
            )
    existing = account_of(conn, customer_ref, product.name)
    if existing is not None:
        raise CreditError(
            f"customer {customer_ref} already has a {product.name} account ({existing})",
            code="account_exists",
            credit_account_id=existing,
        )
    # the ledger accounts are keyed by the new id, so they are opened right after the row
    account_id = int(
        _INSERT_ACCOUNT.run(
            conn,
            {
                "customer_ref": customer_ref,
                "product": product.name,
                "tier": tier,
                "currency": product.currency,
                "limit_fen": limit_fen,
                "status": "active",
                "opened_at": clock.now(),
                "id_region": id_region,
                "birth_date": birth_date,
            },
        ).scalar_one()
    )
    ids = open_accounts(
        conn,
        clock,
        CUSTOMER_CODES,
        OwnerKind.CUSTOMER,
        str(account_id),
        product.currency,
        {AccountCode.PRINCIPAL_RECEIVABLE: limit_fen},  # the limit lives in the ledger
    )
    principal = ids[AccountCode.PRINCIPAL_RECEIVABLE]
    _SET_PRINCIPAL.run(conn, {"k_id": account_id, "principal_account_id": principal})
    return account_id


# the hot statements are built once and reused with new parameters (see ledger.balances)
_INSERT_ACCOUNT = Prepared(insert(ca).returning(ca.c.id))
_SET_PRINCIPAL = Prepared(update(ca).where(ca.c.id == bindparam("k_id")))
_ACCOUNT = Prepared(select(ca).where(ca.c.id == bindparam("k_id")))
_ACCOUNT_LOCKED = Prepared(select(ca).where(ca.c.id == bindparam("k_id")).with_for_update())


def get_account(
    conn: Connection, credit_account_id: int, *, for_update: bool = False
) -> dict[str, Any]:
    stmt = _ACCOUNT_LOCKED if for_update else _ACCOUNT
    row = stmt.run(conn, {"k_id": credit_account_id}).mapping()
    if row is None:
        raise NotFound(f"credit account {credit_account_id} not found")
    return row


def lock_accounts(conn: Connection, credit_account_ids: Iterable[int]) -> None:
    """Lock several credit accounts' rows (`FOR UPDATE`), in id order, for this transaction.

    The credit account's row is the first lock of every change to the account's plans,
    charges or ledger balances (after the order's row, for a call about an order): one call
    takes one account; the end of day takes a partition's, in id order, before it reads or
    writes anything of theirs, so the two cannot deadlock and the end of day never works on
    figures a call is changing (docs/architecture.md, lock order). On SQLite every transaction
    holds the database's write lock from its start, which serializes them already."""
    if conn.dialect.name == "sqlite":
        return
    ids = sorted(set(credit_account_ids))
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        conn.execute(
            select(ca.c.id).where(ca.c.id.in_(chunk)).order_by(ca.c.id).with_for_update()
        ).all()


def lock_account_range(conn: Connection, lo: int, hi: int) -> int:
    """Lock the credit accounts with ids lo..hi, in id order (an end-of-day partition); as
    `lock_accounts`. Returns how many."""
    if conn.dialect.name == "sqlite":
        return 0
    return len(
        conn.execute(
            select(ca.c.id).where(ca.c.id.between(lo, hi)).order_by(ca.c.id).with_for_update()
        ).all()
    )
