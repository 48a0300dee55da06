"""Stored idempotent responses at rest: secrets sealed, old responses expired, keys rotated.

`idempotency_keys.response_body` keeps each POST's answer so a retry gets the same answer.
Some answers carry a secret or personal data (a shop's API key and webhook secret at
onboarding, a shopper session token, a revealed identity): those are stored sealed with the
personal-data keys (AES-GCM, context `idempotency_keys.response_body`) as
`sealed:<key id>:<ciphertext>`, never in clear. Every stored response expires after
`idempotency_window_hours` (a setting): a retry after that runs as a new request, an expired
row is deleted when its key is used again, and `purge_expired` (`fenqi purge-idempotency-keys`,
also run by `fenqi rotate-keys`) deletes the rest. `reseal` re-encrypts sealed responses under
the active key, so a replay still opens once the old key is retired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, select, update

from fenqi.privacy.crypto import KeyRing
from fenqi.store.prepared import Prepared
from fenqi.store.schema.parties import idempotency_keys
from fenqi.store.upsert import insert_ignore

SEALED = "sealed:"
CONTEXT = "idempotency_keys.response_body"
PURGE_BATCH = 1000


def seal(keys: KeyRing, text: str) -> str:
    sealed = keys.encrypt(text, context=CONTEXT)
    return f"{SEALED}{sealed.key_id}:{sealed.ciphertext}"


def open_stored(keys: KeyRing, stored: str) -> str:
    if not stored.startswith(SEALED):
        return stored
    key_id, ciphertext = stored[len(SEALED) :].split(":", 1)
    return keys.decrypt(key_id, ciphertext, context=CONTEXT)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A claimed key's row: the request it was claimed for, and its answer once stored."""

    request_hash: str
    status_code: int | None
    body: str | None


def claim(
    conn: Connection,
    scope: str,
    key: str,
    request_hash: str,
    now: datetime,
    window_hours: int,
    status: int | None = None,
    body: str | None = None,
) -> bool:
    """Claim (scope, key) for a request in this transaction (True), or find it taken (False).
    A concurrent claim of the same key waits on the row until the first commits. A taken key
    whose stored response is older than the window is dropped and claimed anew. `status` and
    `body` store the answer with the claim (a refusal known before any work)."""
    if _insert_claim(conn, scope, key, request_hash, now, status, body):
        return True
    return drop_if_expired(conn, scope, key, now, window_hours) and _insert_claim(
        conn, scope, key, request_hash, now, status, body
    )


def _insert_claim(
    conn: Connection,
    scope: str,
    key: str,
    request_hash: str,
    now: datetime,
    status: int | None,
    body: str | None,
) -> bool:
    row = {
        "scope": scope,
        "key": key,
        "request_hash": request_hash,
        "status_code": status,
        "response_body": body,
        "created_at": now,
    }
    return bool(insert_ignore(conn, idempotency_keys, row, ["scope", "key"]))


_k = idempotency_keys.c
_STORED = Prepared(
    select(_k.request_hash, _k.status_code, _k.response_body).where(
        _k.scope == bindparam("k_scope"), _k.key == bindparam("k_key")
    )
)
_STORE = Prepared(
    update(idempotency_keys)
    .where(_k.scope == bindparam("k_scope"), _k.key == bindparam("k_key"))
    .values(status_code=bindparam("k_status"), response_body=bindparam("k_body"))
)


def stored(conn: Connection, scope: str, key: str) -> StoredResponse:
    """A taken key's row (the claim waited for its first request to commit)."""
    request_hash, status, body = _STORED.run(conn, {"k_scope": scope, "k_key": key}).one()
    return StoredResponse(request_hash, status, body)


def store(conn: Connection, scope: str, key: str, status: int, body: str) -> None:
    """Record the answer of the request that claimed the key, in its transaction."""
    _STORE.run(conn, {"k_scope": scope, "k_key": key, "k_status": status, "k_body": body})


def cutoff(now: datetime, window_hours: int) -> datetime:
    return now - timedelta(hours=window_hours)


def drop_if_expired(
    conn: Connection, scope: str, key: str, now: datetime, window_hours: int
) -> bool:
    """Delete this key's stored response if it is older than the window (purge on read)."""
    k = idempotency_keys.c
    gone = conn.execute(
        delete(idempotency_keys).where(
            k.scope == scope,
            k.key == key,
            k.created_at < cutoff(now, window_hours),
            k.status_code.is_not(None),  # never a request still in flight
        )
    ).rowcount
    return bool(gone)


def purge_expired(conn: Connection, now: datetime, window_hours: int) -> int:
    """Delete every stored response older than the window; returns how many."""
    k = idempotency_keys.c
    total = 0
    while True:
        batch = conn.execute(
            select(k.scope, k.key)
            .where(k.created_at < cutoff(now, window_hours), k.status_code.is_not(None))
            .limit(PURGE_BATCH)
        ).all()
        for scope, key in batch:
            conn.execute(delete(idempotency_keys).where(k.scope == scope, k.key == key))
        total += len(batch)
        if len(batch) < PURGE_BATCH:
            return total


def reseal(conn: Connection, keys: KeyRing) -> int:
    """Re-encrypt under the active key every sealed response sealed under another key."""
    k = idempotency_keys.c
    active = f"{SEALED}{keys.active_key_id}:"
    rows = conn.execute(
        select(k.scope, k.key, k.response_body).where(k.response_body.startswith(SEALED))
    ).all()
    count = 0
    for scope, key, body in rows:
        if body.startswith(active):
            continue
        conn.execute(
            update(idempotency_keys)
            .where(k.scope == scope, k.key == key, k.response_body == body)
            .values(response_body=seal(keys, open_stored(keys, body)))
        )
        count += 1
    return count
