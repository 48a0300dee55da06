"""Shops: onboarding with an API key shown once (stored hashed) and a webhook endpoint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.money import MINOR_UNITS
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.tokens import hash_token, new_token
from fenqi.store.schema.parties import merchant_api_keys, merchants
from fenqi.webhooks.endpoints import accept_url, new_secret, set_endpoint


def create_merchant(
    conn: Connection,
    clock: Clock,
    merchant_id: str,
    name: str,
    category: str,
    webhook_url: str | None = None,
    keys: KeyRing | None = None,
    *,
    allow_private: bool = False,
    currency: str = "CNY",
) -> dict[str, Any]:
    """Create a shop; returns its API key and webhook secret (the only time they are shown).
    With a webhook URL, `keys` seal the secret, and the URL must name a public destination
    unless `allow_private` (see fenqi.webhooks.destinations). `currency` is what the shop
    sells in: its orders, and the products its shoppers may apply for, must be in it."""
    if currency not in MINOR_UNITS:  # refused before anything is written
        raise CreditError(
            f"currency: {currency!r} is not a supported currency", code="unknown_currency",
            field="currency",
        )
    if webhook_url:
        accept_url(webhook_url, allow_private)
    if conn.execute(select(merchants.c.id).where(merchants.c.id == merchant_id)).first():
        raise CreditError(f"merchant {merchant_id} exists", code="merchant_exists", http_status=409)
    conn.execute(
        insert(merchants).values(
            id=merchant_id,
            name=name,
            category=category,
            currency=currency,
            status="active",
            created_at=clock.now(),
        )
    )
    api_key = issue_api_key(conn, clock, merchant_id)
    secret = None
    if webhook_url:
        if keys is None:
            raise ValueError("keys are needed to seal a webhook secret")
        secret = new_secret()
        set_endpoint(
            conn, clock, merchant_id, webhook_url, secret, keys, allow_private=allow_private
        )
    return {
        "id": merchant_id,
        "name": name,
        "category": category,
        "currency": currency,
        "api_key": api_key,
        "webhook_secret": secret,
    }


def issue_api_key(conn: Connection, clock: Clock, merchant_id: str) -> str:
    key = new_token("sk")
    conn.execute(
        insert(merchant_api_keys).values(
            merchant_id=merchant_id,
            prefix=key[:10],
            key_hash=hash_token(key),
            created_at=clock.now(),
        )
    )
    return key


def merchant_currency(conn: Connection, merchant_id: str) -> str:
    """The currency the shop sells in."""
    return str(
        conn.execute(select(merchants.c.currency).where(merchants.c.id == merchant_id)).scalar_one()
    )
