"""The default endpoint store: one URL and signing secret per shop, in `webhook_endpoints`.

The worker only needs `resolve_endpoint(conn, merchant_id)`; any function of that shape can
replace this one (e.g. one reading an encrypted secret from the merchants table).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from fenqi.clock import Clock
from fenqi.store.schema.webhooks import webhook_endpoints
from fenqi.store.upsert import insert_ignore
from fenqi.webhooks.errors import InvalidEndpoint

URL_LENGTH_MAX = 2048
SECRET_LENGTH_MIN = 16  # an HMAC key shorter than this is guessable
SECRET_LENGTH_MAX = 256
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Endpoint:
    """Where a shop's events go, and the secret they are signed with."""

    url: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"Endpoint(url={self.url!r}, secret=<{len(self.secret)} bytes>)"


def new_secret() -> str:
    """A fresh signing secret to show the shop once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def validate_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" or "]": "Invalid IPv6 URL"
        host = None
    if len(url) > URL_LENGTH_MAX or not host or parts.scheme not in ("http", "https"):
        raise InvalidEndpoint(
            f"url: {url[:100]!r} is not an http(s) URL with a host "
            f"(at most {URL_LENGTH_MAX} characters)",
            field="url",
        )
    return url


def set_endpoint(conn: Connection, clock: Clock, merchant_id: str, url: str, secret: str) -> None:
    """Create or replace a shop's endpoint (in the caller's transaction)."""
    if not merchant_id:
        raise InvalidEndpoint("merchant_id: must not be empty", field="merchant_id")
    validate_url(url)
    if not SECRET_LENGTH_MIN <= len(secret) <= SECRET_LENGTH_MAX:
        raise InvalidEndpoint(
            f"secret: must be {SECRET_LENGTH_MIN} to {SECRET_LENGTH_MAX} characters",
            field="secret",
        )
    now = clock.now()
    values = {"url": url, "secret": secret, "updated_at": now}
    inserted = insert_ignore(
        conn,
        webhook_endpoints,
        {"merchant_id": merchant_id, "created_at": now, **values},
        ["merchant_id"],
    )
    if not inserted:
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.merchant_id == merchant_id)
            .values(**values)
        )


def resolve_endpoint(conn: Connection, merchant_id: str) -> Endpoint | None:
    """The shop's endpoint, or None if it has not configured one."""
    row = conn.execute(
        select(webhook_endpoints.c.url, webhook_endpoints.c.secret).where(
            webhook_endpoints.c.merchant_id == merchant_id
        )
    ).first()
    if row is None:
        return None
    return Endpoint(url=row.url, secret=row.secret.encode("utf-8"))
