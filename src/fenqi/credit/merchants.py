"""Shops: onboarding with an API key shown once (stored hashed) and a webhook endpoint."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, insert, or_, select, update

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.money import MINOR_UNITS
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.tokens import hash_token, new_token
from fenqi.store.books import TEST_KEY_PREFIX, is_test_book
from fenqi.store.schema.parties import merchant_api_keys, merchants
from fenqi.store.times import iso, utc
from fenqi.store.upsert import insert_ignore
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
            f"currency: {currency!r} is not a supported currency",
            code="unknown_currency",
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
    """A new key (sk_live_… in the live book, sk_test_… in the test book), stored hashed."""
    key = new_token("sk_test" if is_test_book(conn) else "sk_live")
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


# --- a shop's own API keys: rotation with an expiry the shop chooses, list, revoke ----------

KEY_EXPIRY_HOURS_MAX = 7 * 24  # an old key outlives its replacement by at most a week
API_KEYS_ACTIVE_MAX = 10  # keys a shop may hold at once (expiring ones included)
# `last_used_at` is written at most this often per key, so a busy key does not cost a write
# per request: "last used" is exact to this granularity
LAST_USED_GRANULARITY = timedelta(minutes=15)


def _usable(now: datetime) -> ColumnElement[bool]:
    k = merchant_api_keys.c
    return and_(k.revoked_at.is_(None), or_(k.expires_at.is_(None), k.expires_at > now))


def usable_key(conn: Connection, clock: Clock, digest: str) -> Any:
    """The shop and key an API key's hash authenticates (not revoked, not expired), or None."""
    k, m = merchant_api_keys.c, merchants.c
    return conn.execute(
        select(m.id, m.name, m.category, m.status, k.id.label("key_id"), k.last_used_at)
        .join(merchant_api_keys, k.merchant_id == m.id)
        .where(k.key_hash == digest, _usable(clock.now()))
    ).first()


def recently_used(clock: Clock, last_used_at: datetime | None) -> bool:
    """True if `last_used_at` is within LAST_USED_GRANULARITY of now (nothing to write)."""
    return last_used_at is not None and utc(last_used_at) > clock.now() - LAST_USED_GRANULARITY


def touch_key(conn: Connection, clock: Clock, key_id: int) -> None:
    """Record that the key was used now, if its record is older than LAST_USED_GRANULARITY
    (a conditional UPDATE: concurrent requests write it once)."""
    now = clock.now()
    k = merchant_api_keys.c
    conn.execute(
        update(merchant_api_keys)
        .where(
            k.id == key_id,
            or_(k.last_used_at.is_(None), k.last_used_at <= now - LAST_USED_GRANULARITY),
        )
        .values(last_used_at=now)
    )


def _key_view(row: Row[Any], now: datetime) -> dict[str, Any]:
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at is None:
        status = "active"
    elif utc(row.expires_at) > now:
        status = "expiring"
    else:
        status = "expired"
    return {
        "id": row.id,
        "livemode": not row.prefix.startswith(TEST_KEY_PREFIX),
        "masked": f"{row.prefix}…",  # the first characters only: enough to tell keys apart
        "status": status,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at) if row.expires_at is not None else None,
        "revoked_at": iso(row.revoked_at) if row.revoked_at is not None else None,
        "last_used_at": iso(row.last_used_at) if row.last_used_at is not None else None,
    }


def list_api_keys(conn: Connection, clock: Clock, merchant_id: str) -> list[dict[str, Any]]:
    """The shop's keys, newest first, masked, with when each was last used."""
    k = merchant_api_keys.c
    rows = conn.execute(
        select(merchant_api_keys).where(k.merchant_id == merchant_id).order_by(k.id.desc())
    ).all()
    now = clock.now()
    return [_key_view(row, now) for row in rows]


def roll_api_keys(
    conn: Connection, clock: Clock, merchant_id: str, expire_others_in_hours: int | None
) -> dict[str, Any]:
    """A new key for the shop (returned with the key itself, shown this once). With
    `expire_others_in_hours`, every other key still usable expires that many hours from now
    (0: at once; a key expiring sooner already keeps its earlier expiry); without it, the
    other keys are left as they are."""
    if expire_others_in_hours is not None and not (
        0 <= expire_others_in_hours <= KEY_EXPIRY_HOURS_MAX
    ):
        raise CreditError(
            f"expire_others_in_hours: must be 0 to {KEY_EXPIRY_HOURS_MAX}",
            code="invalid_request",
            field="expire_others_in_hours",
        )
    # the shop's row, locked: two rolls at once run one after the other (the count holds)
    m = merchants.c
    conn.execute(select(m.id).where(m.id == merchant_id).with_for_update()).one()
    now = clock.now()
    k = merchant_api_keys.c
    usable = conn.execute(
        select(func.count()).where(k.merchant_id == merchant_id, _usable(now))
    ).scalar_one()
    if expire_others_in_hours is None and usable >= API_KEYS_ACTIVE_MAX:
        raise CreditError(
            f"a shop holds at most {API_KEYS_ACTIVE_MAX} usable keys: revoke one, or roll "
            "with expire_others_in_hours",
            code="too_many_api_keys",
            http_status=409,
        )
    if expire_others_in_hours is not None:
        until = now + timedelta(hours=expire_others_in_hours)
        conn.execute(
            update(merchant_api_keys)
            .where(
                k.merchant_id == merchant_id,
                _usable(now),
                or_(k.expires_at.is_(None), k.expires_at > until),
            )
            .values(expires_at=until)
        )
    key = issue_api_key(conn, clock, merchant_id)
    row = conn.execute(select(merchant_api_keys).where(k.key_hash == hash_token(key))).one()
    return {**_key_view(row, now), "api_key": key}


def revoke_api_key(conn: Connection, clock: Clock, merchant_id: str, key_id: int) -> dict[str, Any]:
    """Revoke one of the shop's keys now. The shop's last usable key cannot be revoked this
    way (the shop would lock itself out of the API: roll a new key first)."""
    m, k = merchants.c, merchant_api_keys.c
    conn.execute(select(m.id).where(m.id == merchant_id).with_for_update()).one()
    now = clock.now()
    row = conn.execute(
        select(merchant_api_keys).where(k.id == key_id, k.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise CreditError(f"API key {key_id} not found", code="not_found", http_status=404)
    if row.revoked_at is None:
        others = conn.execute(
            select(func.count()).where(k.merchant_id == merchant_id, k.id != key_id, _usable(now))
        ).scalar_one()
        if not others:
            raise CreditError(
                "this is the shop's last usable API key: roll a new one first "
                "(POST /v1/api-keys), then revoke this one",
                code="last_api_key",
                http_status=409,
            )
        conn.execute(
            update(merchant_api_keys)
            .where(k.id == key_id, k.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = conn.execute(select(merchant_api_keys).where(k.id == key_id)).one()
    return _key_view(row, now)


# --- test mode: the shop's twin in the test book ---------------------------------------------


def shop_row(conn: Connection, merchant_id: str) -> dict[str, Any]:
    """The shop's row (live book), to copy into the test book as its twin."""
    row = conn.execute(select(merchants).where(merchants.c.id == merchant_id)).mappings().one()
    return dict(row)


def ensure_twin(conn: Connection, shop: dict[str, Any]) -> None:
    """The shop's twin in the test book (`conn`): the same id, name, category, currency and
    status as `shop`, its live row (refreshed each time the shop makes a test key). Nothing
    else is copied: keys, webhook endpoint and data of test mode are the twin's own."""
    if not is_test_book(conn):
        raise ValueError("a shop's twin lives in the test book only")
    values = {c: shop[c] for c in ("name", "category", "currency", "status")}
    # two first test keys at once: one inserts, the other finds the row (no unique violation)
    insert_ignore(
        conn, merchants, {"id": shop["id"], "created_at": shop["created_at"], **values}, ["id"]
    )
    conn.execute(update(merchants).where(merchants.c.id == shop["id"]).values(**values))
