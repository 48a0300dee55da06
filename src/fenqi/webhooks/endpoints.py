"""The default endpoint store: one URL and signing secret per shop, in `webhook_endpoints`.

The secret has to be read back to sign each delivery, so it cannot be hashed like an API key:
it is sealed with the platform's data keys (`fenqi.privacy.crypto`, the keys that protect
personal data) and opened by the resolver. The worker only needs a function of
(conn, merchant_id), `endpoint_resolver(keys)`; any function of that shape can replace it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from fenqi.clock import Clock
from fenqi.privacy.crypto import KeyRing, reencrypt_rows
from fenqi.store.schema.webhooks import webhook_endpoints
from fenqi.store.upsert import insert_ignore
from fenqi.webhooks.destinations import check_url
from fenqi.webhooks.errors import InvalidEndpoint

URL_LENGTH_MAX = 2048
SECRET_LENGTH_MIN = 16  # an HMAC key shorter than this is guessable
SECRET_LENGTH_MAX = 256
SECRET_PREFIX = "whsec_"
SECRET_CONTEXT = "webhook_endpoints.secret"  # authenticated with the ciphertext
PREVIOUS_SECRET_CONTEXT = "webhook_endpoints.previous_secret"


@dataclass(frozen=True)
class Endpoint:
    """Where a shop's events go, and the secret they are signed with."""

    url: str
    secret: bytes
    # while a secret is rotated: the previous one, which signs deliveries too until `previous_until`
    previous_secret: bytes | None = None
    previous_until: datetime | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Endpoint(url={self.url!r}, secret=<{len(self.secret)} bytes>)"

    def secrets_at(self, now: datetime) -> list[bytes]:
        """The secrets a delivery sent at `now` is signed with: the current one, and the
        previous one while its overlap lasts."""
        if (
            self.previous_secret
            and self.previous_until is not None
            and now < _utc(self.previous_until)
        ):
            return [self.secret, self.previous_secret]
        return [self.secret]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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


def accept_url(url: str, allow_private: bool) -> str:
    """A URL a shop may set: an http(s) URL with a host (`validate_url`) that names a public
    destination unless `allow_private` (fenqi.webhooks.destinations)."""
    validate_url(url)
    check_url(url, allow_private)
    return url


def set_endpoint(
    conn: Connection,
    clock: Clock,
    merchant_id: str,
    url: str,
    secret: str,
    keys: KeyRing,
    *,
    allow_private: bool = False,
) -> None:
    """Create or replace a shop's endpoint (in the caller's transaction), its secret sealed.
    The URL must name a public destination unless `allow_private` (the platform's
    `webhook_allow_private_networks`): see fenqi.webhooks.destinations."""
    if not merchant_id:
        raise InvalidEndpoint("merchant_id: must not be empty", field="merchant_id")
    accept_url(url, allow_private)
    if not SECRET_LENGTH_MIN <= len(secret) <= SECRET_LENGTH_MAX:
        raise InvalidEndpoint(
            f"secret: must be {SECRET_LENGTH_MIN} to {SECRET_LENGTH_MAX} characters",
            field="secret",
        )
    now = clock.now()
    sealed = keys.encrypt(secret, context=SECRET_CONTEXT)
    values = {"url": url, "secret": sealed.ciphertext, "key_id": sealed.key_id, "updated_at": now}
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


def resolve_endpoint(conn: Connection, merchant_id: str, keys: KeyRing) -> Endpoint | None:
    """The shop's endpoint with its secret opened, or None if it has not configured one."""
    e = webhook_endpoints.c
    row = conn.execute(
        select(
            e.url, e.secret, e.key_id, e.previous_secret, e.previous_key_id, e.previous_expires_at
        ).where(e.merchant_id == merchant_id)
    ).first()
    if row is None:
        return None
    secret = (
        row.secret  # stored before secrets were sealed (see seal_secrets)
        if row.key_id is None
        else keys.decrypt(row.key_id, row.secret, context=SECRET_CONTEXT)
    )
    previous = None
    if row.previous_secret is not None and row.previous_key_id is not None:
        previous = keys.decrypt(
            row.previous_key_id, row.previous_secret, context=PREVIOUS_SECRET_CONTEXT
        ).encode("utf-8")
    return Endpoint(
        url=row.url,
        secret=secret.encode("utf-8"),
        previous_secret=previous,
        previous_until=row.previous_expires_at if previous is not None else None,
    )


def endpoint_resolver(keys: KeyRing) -> Callable[[Connection, str], Endpoint | None]:
    """The worker's resolver: `resolve_endpoint` with the platform's keys."""
    return partial(resolve_endpoint, keys=keys)


def seal_secrets(conn: Connection, keys: KeyRing) -> int:
    """Seal the secrets stored in plain text and re-seal those under a key that is no longer
    the active one; returns how many (`fenqi rotate-keys`)."""
    e = webhook_endpoints.c
    plain = conn.execute(select(e.merchant_id, e.secret).where(e.key_id.is_(None))).all()
    for merchant_id, secret in plain:
        sealed = keys.encrypt(secret, context=SECRET_CONTEXT)
        conn.execute(
            update(webhook_endpoints)
            .where(e.merchant_id == merchant_id, e.key_id.is_(None))
            .values(secret=sealed.ciphertext, key_id=sealed.key_id)
        )
    return (
        len(plain)
        + reencrypt_rows(
            conn, keys, webhook_endpoints, "merchant_id", "key_id", {"secret": SECRET_CONTEXT}
        )
        + reencrypt_rows(
            conn,
            keys,
            webhook_endpoints,
            "merchant_id",
            "previous_key_id",
            {"previous_secret": PREVIOUS_SECRET_CONTEXT},
        )
    )
