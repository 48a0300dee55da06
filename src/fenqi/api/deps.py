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
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from fenqi.api.problems import ApiError, error_response
from fenqi.api.text import Line
from fenqi.context import Context
from fenqi.credit.customers import Session, find_session
from fenqi.credit.merchants import Shop, authenticate
from fenqi.errors import FenqiError
from fenqi.privacy.staff import Permission, StaffUser, get_staff, require
from fenqi.privacy.stored_responses import claim, open_stored, seal, store, stored
from fenqi.privacy.tokens import hash_token
from fenqi.store.books import wants_test_book

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
    currency: str


@dataclass(frozen=True, slots=True)
class ShopperPrincipal:
    customer_id: int
    merchant_id: str | None


def _principal(shop: Shop) -> MerchantPrincipal:
    return MerchantPrincipal(shop.id, shop.name, shop.category, shop.currency)


def merchant(
    authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)
) -> MerchantPrincipal:
    """The shop whose API key the request carries (its own short transaction)."""
    digest = hash_token(_bearer(authorization))
    with ctx.engine.begin() as conn:
        return _principal(authenticate(conn, ctx.clock, digest))


@dataclass(frozen=True, slots=True)
class ShopKey:
    """A shop's API key as sent (its hash), checked later inside the request's transaction
    (`shop_idempotent`): the look-up then costs no transaction, pool checkout and thread
    hand-off of its own. No I/O here, so this dependency is `async def`."""

    digest: str


async def shop_key(authorization: str | None = Header(None)) -> ShopKey:
    return ShopKey(hash_token(_bearer(authorization)))


def _session(ctx: Context, token: str, kind: str) -> Session:
    with ctx.engine.connect() as conn:
        found = find_session(conn, ctx.clock, token, kind)
    if found is None:
        raise ApiError("unknown or expired token", code="unauthorized", http_status=401)
    return found


def shopper(
    authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)
) -> ShopperPrincipal:
    found = _session(ctx, _bearer(authorization), "customer")
    return ShopperPrincipal(found.subject_id, found.merchant_id)


def staff(authorization: str | None = Header(None), ctx: Context = Depends(get_ctx)) -> StaffUser:
    found = _session(ctx, _bearer(authorization), "staff")
    with ctx.engine.connect() as conn:
        user = get_staff(conn, found.subject_id)
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
ShopWork = Callable[[Connection, MerchantPrincipal], tuple[int, Any]]


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
    crash stores nothing, so a retry runs again. A refusal that keeps its work
    (`FenqiError.keeps_work`: checkout risk's record of a refused attempt) commits that work
    with the stored refusal, in the same transaction. A `sensitive` response (personal data,
    a secret, a token) is stored sealed, like the data itself. A stored response older than
    `idempotency_window_hours` is dropped when its key comes again, which then runs anew
    (`fenqi.privacy.stored_responses`).
    """
    return _idempotent(ctx, lambda _conn: scope, key, route, body, work, sensitive)


def shop_idempotent(
    ctx: Context, shop: ShopKey, key: str, route: str, body: BaseModel | None, work: ShopWork
) -> JSONResponse:
    """`idempotent` for a shop's request, in one transaction from its first statement: the
    API key checked (refused with 401/403 before anything is claimed), the key claimed in the
    shop's scope, the work, its stored answer."""
    caller: list[MerchantPrincipal] = []

    def scope(conn: Connection) -> str:
        caller[:] = [_principal(authenticate(conn, ctx.clock, shop.digest))]
        return f"merchant:{caller[0].id}"

    return _idempotent(ctx, scope, key, route, body, lambda conn: work(conn, caller[0]), False)


def _idempotent(
    ctx: Context,
    scope_of: Callable[[Connection], str],
    key: str,
    route: str,
    body: BaseModel | None,
    work: Work,
    sensitive: bool,
) -> JSONResponse:
    digest = _hash(route, body)
    scope: str | None = None
    try:
        for attempt in range(RETRIES_MAX + 1):
            try:
                with ctx.engine.begin() as conn:
                    scope = scope_of(conn)
                    if not _claim(conn, ctx, scope, key, digest):
                        return _stored(conn, ctx, scope, key, digest)
                    try:
                        status, result = work(conn)
                    except FenqiError as exc:
                        if not (exc.keeps_work and _storable(exc)):
                            raise
                        return _refused_keeping_work(conn, scope, key, exc)
                    text = _json(result)
                    store(conn, scope, key, status, seal(ctx.keys, text) if sensitive else text)
                return _response(text, status)
            except DBAPIError as exc:
                # a deadlock or serialization failure rolled everything back: run it again
                if attempt == RETRIES_MAX or _sqlstate(exc) not in RETRYABLE:
                    raise
        raise AssertionError("unreachable")
    except FenqiError as exc:
        if scope is None:  # the caller was not authenticated: nothing is claimed or stored
            raise
        response = error_response(exc)
        if _storable(exc):
            with ctx.engine.begin() as conn:
                text = bytes(response.body).decode()
                if not _claim(conn, ctx, scope, key, digest, exc.http_status, text):
                    return _stored(conn, ctx, scope, key, digest)
        return response


def _refused_keeping_work(conn: Connection, scope: str, key: str, exc: FenqiError) -> JSONResponse:
    """The refusal stored in the transaction of the work it keeps (committed with it)."""
    response = error_response(exc)
    store(conn, scope, key, exc.http_status, bytes(response.body).decode())
    return response


def _storable(exc: FenqiError) -> bool:
    """A refusal that is the request's answer, stored for its retries."""
    return exc.http_status < 500 and exc.code not in NOT_STORED


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
    status: int | None = None,
    body: str | None = None,
) -> bool:
    window = ctx.settings.idempotency_window_hours
    return claim(conn, scope, key, digest, ctx.clock.now(), window, status, body)


def _stored(conn: Connection, ctx: Context, scope: str, key: str, digest: str) -> JSONResponse:
    row = stored(conn, scope, key)
    if row.request_hash != digest:
        raise ApiError(
            f"Idempotency-Key {key!r} was used for a different request",
            code="idempotency_key_reused",
            http_status=409,
        )
    assert row.status_code is not None and row.body is not None, "stored with its claim"
    return _response(
        open_stored(ctx.keys, row.body),
        row.status_code,
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
