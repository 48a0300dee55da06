"""Request plumbing: the context, who is calling (shop, shopper, staff), idempotency, cursors."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import DBAPIError

from fenqi.api.problems import ApiError, error_response
from fenqi.api.text import Line
from fenqi.context import Context
from fenqi.credit.merchants import recently_used, touch_key, usable_key
from fenqi.errors import FenqiError
from fenqi.privacy.staff import Permission, StaffUser, get_staff, require
from fenqi.privacy.stored_responses import drop_if_expired, open_stored, seal
from fenqi.privacy.tokens import hash_token
from fenqi.store.books import wants_test_book
from fenqi.store.prepared import Prepared
from fenqi.store.schema.parties import idempotency_keys, sessions
from fenqi.store.upsert import insert_ignore

ID_MAX = 2**53 - 1  # ids fit a JSON number and a BIGINT
Id = Annotated[int, Path(ge=1, le=ID_MAX, description="An id this API returned.")]


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency on its
# thread pool, a hand-off to a thread and back for each (docs/performance.md).
async def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    # a test-mode token (sk_test_, st_test_) is looked up, and its request served, in the test
    # book, a database of its own (docs/api.md, "Test mode"): no query, only its prefix
    if wants_test_book(request.headers.get("authorization")):
        return ctx.test_mode or ctx  # test mode off: the live book, where no test key exists
    return ctx


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError("send Authorization: Bearer <token>", code="unauthorized", http_status=401)
    return authorization[7:].strip()


@dataclass(frozen=True, slots=True)
class MerchantPrincipal:
    id: str
    name: str
    category: str


@dataclass(frozen=True, slots=True)
class ShopperPrincipal:
    customer_id: int
    merchant_id: str | None


def merchant(
    authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)
) -> MerchantPrincipal:
    digest = hash_token(_bearer(authorization))
    with ctx.engine.connect() as conn:
        row = usable_key(conn, ctx.clock, digest)  # not revoked, not expired
    if row is None:
        raise ApiError("unknown, revoked or expired API key", code="unauthorized", http_status=401)
    if not recently_used(ctx.clock, row.last_used_at):
        with ctx.engine.begin() as conn:
            touch_key(conn, ctx.clock, row.key_id)
    if row.status != "active":
        raise ApiError(f"merchant {row.id} is {row.status}", code="forbidden", http_status=403)
    return MerchantPrincipal(row.id, row.name, row.category)


def _session(ctx: Context, token: str, kind: str) -> Any:
    with ctx.engine.connect() as conn:
        row = (
            conn.execute(
                select(sessions).where(
                    sessions.c.token_hash == hash_token(token),
                    sessions.c.subject_kind == kind,
                    sessions.c.expires_at > ctx.clock.now(),
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ApiError("unknown or expired token", code="unauthorized", http_status=401)
    return row


def shopper(
    authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)
) -> ShopperPrincipal:
    row = _session(ctx, _bearer(authorization), "customer")
    return ShopperPrincipal(int(row["subject_id"]), row["merchant_id"])


def staff(authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)) -> StaffUser:
    row = _session(ctx, _bearer(authorization), "staff")
    with ctx.engine.connect() as conn:
        user = get_staff(conn, int(row["subject_id"]))
    if user is None or user.disabled:
        raise ApiError("staff user disabled", code="unauthorized", http_status=401)
    return user


def allowed(permission: Permission) -> Callable[[StaffUser], StaffUser]:
    """A dependency: the staff user, if their role grants `permission`; 403 otherwise."""

    def check(user: StaffUser = Depends(staff)) -> StaffUser:
        require(user, permission)
        return user

    return check


# The key reaches bounded columns inside longer references (ledger client ids such as
# "refund:<shop>:<key>:<n>", the checkout risk reference "<shop>:<key>"): a key longer than this
# is replaced by a digest of it of this length, so every reference built from it fits.
KEY_CHARS_USED_MAX = 64


async def idempotency_key(
    idempotency_key: Line | None = Header(
        None, alias="Idempotency-Key", min_length=1, max_length=128
    ),
) -> str:
    if not idempotency_key:
        raise ApiError(
            "every POST needs an Idempotency-Key header",
            code="idempotency_key_required",
            http_status=400,
        )
    if len(idempotency_key) > KEY_CHARS_USED_MAX:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
        return "~" + digest[: KEY_CHARS_USED_MAX - 1]
    return idempotency_key


Work = Callable[[Connection], tuple[int, Any]]


def _hash(route: str, body: BaseModel | None) -> str:
    payload = route + "\n" + (body.model_dump_json() if body is not None else "")
    return hashlib.sha256(payload.encode()).hexdigest()


def idempotent(
    ctx: Context,
    scope: str,
    key: str,
    route: str,
    body: BaseModel | None,
    work: Work,
    *,
    sensitive: bool = False,
) -> JSONResponse:
    """Run `work` once per (scope, key), in the transaction that records its response.

    A replay with the same request returns the stored response; the same key with another
    request is a 409. A concurrent duplicate waits on the key's row until the first commits,
    then gets its answer. A refusal (4xx) is stored too, so a retry gets the same refusal; a
    crash stores nothing, so a retry runs again. A `sensitive` response (personal data, a
    secret, a token) is stored sealed, like the data itself. A stored response older than
    `idempotency_window_hours` is dropped when its key comes again, which then runs anew
    (`fenqi.privacy.stored_responses`).
    """
    digest = _hash(route, body)
    try:
        for attempt in range(RETRIES_MAX + 1):
            try:
                with ctx.engine.begin() as conn:
                    if not _claim(conn, ctx, scope, key, digest, None, None):
                        return _stored(conn, ctx, scope, key, digest)
                    status, result = work(conn)
                    text = _json(result)
                    _store(conn, scope, key, status, seal(ctx.keys, text) if sensitive else text)
                return _response(text, status)
            except DBAPIError as exc:
                # a deadlock or serialization failure rolled everything back: run it again
                if attempt == RETRIES_MAX or _sqlstate(exc) not in RETRYABLE:
                    raise
        raise AssertionError("unreachable")
    except FenqiError as exc:
        response = error_response(exc)
        if exc.http_status < 500 and exc.code not in NOT_STORED:
            with ctx.engine.begin() as conn:
                if not _claim(
                    conn, ctx, scope, key, digest, exc.http_status, bytes(response.body).decode()
                ):
                    return _stored(conn, ctx, scope, key, digest)
        return response


RETRIES_MAX = 3
RETRYABLE = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock detected, serialization


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


# Refusals about the key itself are not the request's answer and are never stored: a key
# reused for another request here, or a client id another request took in the ledger or the
# repayments (a collision of keys, not a refusal of this request).
NOT_STORED = frozenset({"idempotency_key_reused", "idempotency_conflict"})


def _claim(
    conn: Connection,
    ctx: Context,
    scope: str,
    key: str,
    digest: str,
    status: int | None,
    body: str | None,
) -> bool:
    """Claim the key (True), or find it taken (False); a taken key whose stored response has
    expired is dropped and claimed anew."""
    if _insert_claim(conn, ctx, scope, key, digest, status, body):
        return True
    now, window = ctx.clock.now(), ctx.settings.idempotency_window_hours
    return drop_if_expired(conn, scope, key, now, window) and _insert_claim(
        conn, ctx, scope, key, digest, status, body
    )


def _insert_claim(
    conn: Connection,
    ctx: Context,
    scope: str,
    key: str,
    digest: str,
    status: int | None,
    body: str | None,
) -> bool:
    return bool(
        insert_ignore(
            conn,
            idempotency_keys,
            {
                "scope": scope,
                "key": key,
                "request_hash": digest,
                "status_code": status,
                "response_body": body,
                "created_at": ctx.clock.now(),
            },
            ["scope", "key"],
        )
    )


def _stored(conn: Connection, ctx: Context, scope: str, key: str, digest: str) -> JSONResponse:
    row = (
        conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
            )
        )
        .mappings()
        .one()
    )
    if row["request_hash"] != digest:
        raise ApiError(
            f"Idempotency-Key {key!r} was used for a different request",
            code="idempotency_key_reused",
            http_status=409,
        )
    return _response(
        open_stored(ctx.keys, row["response_body"]),
        row["status_code"],
        headers={"Idempotent-Replayed": "true"},
    )


def _json(result: Any) -> str:
    """A response body as JSONResponse writes it (compact, UTF-8, no NaN), values it cannot
    write as strings; the same text is stored for a replay."""
    return json.dumps(
        result, default=str, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


class _StoredJSON(JSONResponse):
    """A JSON response whose body is text already written as JSON (what `idempotent` stores):
    sent as it is, instead of parsed only to be written again."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


def _response(text: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return _StoredJSON(
        text.encode(), status_code=status, headers=headers, media_type=_media(status)
    )


def _media(status: int) -> str:
    return "application/problem+json" if status >= 400 else "application/json"


_STORE = Prepared(
    update(idempotency_keys)
    .where(
        idempotency_keys.c.scope == bindparam("k_scope"),
        idempotency_keys.c.key == bindparam("k_key"),
    )
    .values(status_code=bindparam("k_status"), response_body=bindparam("k_body"))
)


def _store(conn: Connection, scope: str, key: str, status: int, body: str) -> None:
    _STORE.run(conn, {"k_scope": scope, "k_key": key, "k_status": status, "k_body": body})


def staff_scope(user_id: int, target: str) -> str:
    """The idempotency scope of a staff action: who does it and to what (a path's target), so
    one user's key for one shop never meets another user's, or another shop's, key."""
    scope = f"staff:{user_id}:{target}"
    if len(scope) <= SCOPE_CHARS_MAX:
        return scope
    return f"staff:{user_id}:#{hashlib.sha256(target.encode()).hexdigest()[:40]}"


def staff_client_id(user_id: int, target: str, key: str) -> str:
    """A ledger client id for a staff action, unique per user, target and key, within the
    ledger's 128 characters."""
    digest = hashlib.sha256(f"{target}\n{key}".encode()).hexdigest()[:48]
    return f"staff:{user_id}:{digest}"


SCOPE_CHARS_MAX = 80  # idempotency_keys.scope


def encode_cursor(last_id: int | None) -> str | None:
    return (
        None
        if last_id is None
        else base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")
    )


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id" or not 0 <= int(value) <= ID_MAX:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            "cursor: not a cursor this API returned", code="invalid_cursor", http_status=400
        ) from None


def page(items: list[dict[str, Any]], limit: int, id_key: str = "id") -> dict[str, Any]:
    last = items[-1][id_key] if len(items) == limit and items else None
    return {"items": items, "next_cursor": encode_cursor(last)}
