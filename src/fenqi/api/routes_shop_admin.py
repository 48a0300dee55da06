"""A shop manages its own integration: API keys (roll with an overlap, list, revoke) and its
webhook endpoint (create, read, change events, rotate the secret with an overlap, delete).
Secrets and keys are shown once, in the response that makes them (stored sealed for an
idempotent replay); lists mask them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from fenqi.api.deps import (
    Id,
    MerchantPrincipal,
    get_ctx,
    idempotency_key,
    idempotent,
    merchant,
)
from fenqi.api.problems import PROBLEM_RESPONSES, ApiError
from fenqi.api.schemas import Body
from fenqi.api.text import Line
from fenqi.context import Context
from fenqi.credit.merchants import (
    KEY_EXPIRY_HOURS_MAX,
    ensure_twin,
    list_api_keys,
    revoke_api_key,
    roll_api_keys,
    shop_row,
)
from fenqi.webhooks import manage
from fenqi.webhooks.manage import ROTATION_OVERLAP_HOURS_MAX

router = APIRouter(prefix="/v1", tags=["shop settings"], responses=PROBLEM_RESPONSES)

EndpointId = Path(min_length=1, max_length=40, description="The endpoint's id (we_...).")
EVENTS_DESCRIPTION = (
    'Event types to receive (e.g. ["order.captured", "order.refunded"]), or ["*"] for every '
    "type, including types added later."
)


class ApiKeyIn(Body):
    mode: Literal["live", "test"] | None = Field(
        default=None,
        description="The key's mode: `test` makes a test-mode key (sk_test_…; a live key may "
        "make one, and the shop's test book is set up on the first); default: the calling "
        "key's mode. A test key cannot make a live key (403).",
    )
    expire_others_in_hours: int | None = Field(
        default=None,
        ge=0,
        le=KEY_EXPIRY_HOURS_MAX,
        description="Every other usable key of the shop stops working this many hours from "
        "now (0: at once). Leave out to keep the other keys as they are.",
    )


class ApiKeyOut(BaseModel):
    id: int
    livemode: bool = Field(description="False for a test-mode key (sk_test_…).")
    masked: str
    status: str  # active | expiring | expired | revoked
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    api_key: str | None = Field(default=None, description="The key itself: in this response only.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class WebhookEndpointIn(Body):
    url: Line = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    events: list[Line] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=50, description=EVENTS_DESCRIPTION
    )


class WebhookEventsIn(Body):
    events: list[Line] = Field(min_length=1, max_length=50, description=EVENTS_DESCRIPTION)


class RotateSecretIn(Body):
    overlap_hours: int = Field(
        default=24,
        ge=0,
        le=ROTATION_OVERLAP_HOURS_MAX,
        description="How long the previous secret keeps signing deliveries too (0: not at all).",
    )


class WebhookEndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str
    updated_at: str
    previous_secret_expires_at: str | None
    secret: str | None = Field(default=None, description="The secret: in this response only.")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]


def _scope(m: MerchantPrincipal) -> str:
    return f"merchant:{m.id}"


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut)
def create_api_key(
    body: ApiKeyIn,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """A new API key, shown in this response only (stored hashed). To rotate: create one with
    `expire_others_in_hours`, deploy it, and the old key stops working when that time is up
    (at most 7 days); `GET /v1/api-keys` shows whether the old key is still being used."""

    book, twin = _key_book(ctx, m, body.mode)

    def work(conn: Connection) -> tuple[int, Any]:
        if twin is not None:  # a live key making the shop's test key: its twin in the test book
            ensure_twin(conn, twin)
        return 201, roll_api_keys(conn, book.clock, m.id, body.expire_others_in_hours)

    return idempotent(book, _scope(m), key, "POST /v1/api-keys", body, work, sensitive=True)


def _key_book(
    ctx: Context, m: MerchantPrincipal, mode: str | None
) -> tuple[Context, dict[str, Any] | None]:
    """The book a new key is made in (its mode), and the shop's live row when a live key makes
    a test key (to set up or refresh its twin in the test book)."""
    if mode is None or (mode == "live") == ctx.livemode:
        return ctx, None
    if mode == "live":
        raise ApiError("a test-mode key cannot make a live key", code="forbidden", http_status=403)
    test = ctx.test_mode
    if test is None:
        raise ApiError(
            "test mode is off on this server (no test book: FENQI_TEST_DATABASE_URL)",
            code="test_mode_unavailable",
            http_status=409,
        )
    with ctx.engine.connect() as conn:
        return test, shop_row(conn, m.id)


@router.get("/api-keys", response_model=ApiKeyList)
def get_api_keys(
    m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The shop's keys, newest first: masked, with status, expiry and when last used (to 15
    minutes)."""
    with ctx.engine.connect() as conn:
        return {"items": list_api_keys(conn, ctx.clock, m.id)}


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def delete_api_key(
    key_id: Id, m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Revoke a key now (409 `last_api_key` for the shop's last usable key: roll one first).
    Revoking a revoked key answers the same again."""
    with ctx.engine.begin() as conn:
        return revoke_api_key(conn, ctx.clock, m.id, key_id)


@router.post("/webhook-endpoints", status_code=201, response_model=WebhookEndpointOut)
def create_webhook_endpoint(
    body: WebhookEndpointIn,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """The shop's webhook endpoint (one per shop; 409 `webhook_endpoint_exists` if it has one).
    The URL must name a public address (422 `unsafe_webhook_url`). The signing secret is in
    this response only."""

    def work(conn: Connection) -> tuple[int, Any]:
        out = manage.create_endpoint(
            conn,
            ctx.clock,
            m.id,
            body.url,
            list(body.events),
            ctx.keys,
            allow_private=ctx.settings.webhook_allow_private_networks,
        )
        return 201, out

    return idempotent(ctx, _scope(m), key, "POST /v1/webhook-endpoints", body, work, sensitive=True)


@router.get("/webhook-endpoints", response_model=WebhookEndpointList)
def list_webhook_endpoints(
    m: MerchantPrincipal = Depends(merchant), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The shop's endpoint, as a list of at most one (never the secret)."""
    with ctx.engine.begin() as conn:
        view = manage.get_endpoint(conn, ctx.clock, m.id)
    return {"items": [view] if view else []}


def _endpoint(ctx: Context, m: MerchantPrincipal, endpoint_id: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        view = manage.get_endpoint(conn, ctx.clock, m.id)
    if view is None or view["id"] != endpoint_id:
        raise ApiError(
            f"webhook endpoint {endpoint_id!r} not found", code="not_found", http_status=404
        )
    return view


@router.get("/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def get_webhook_endpoint(
    endpoint_id: str = EndpointId,
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    return _endpoint(ctx, m, endpoint_id)


@router.post("/webhook-endpoints/{endpoint_id}/events", response_model=WebhookEndpointOut)
def set_webhook_events(
    body: WebhookEventsIn,
    endpoint_id: str = EndpointId,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """Replace the event types the endpoint receives. Events already written keep their
    deliveries; the choice applies to events written from now on."""

    def work(conn: Connection) -> tuple[int, Any]:
        return 200, manage.update_events(conn, ctx.clock, m.id, endpoint_id, list(body.events))

    route = f"POST /v1/webhook-endpoints/{endpoint_id}/events"
    return idempotent(ctx, _scope(m), key, route, body, work)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=WebhookEndpointOut)
def rotate_webhook_secret(
    body: RotateSecretIn,
    endpoint_id: str = EndpointId,
    m: MerchantPrincipal = Depends(merchant),
    key: str = Depends(idempotency_key),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    """A new signing secret, in this response only. For `overlap_hours` (default 24, at most
    168) every delivery is signed with both: `Fenqi-Signature: t=<ts>,v1=<new>,v1=<old>`."""

    def work(conn: Connection) -> tuple[int, Any]:
        out = manage.rotate_secret(conn, ctx.clock, m.id, endpoint_id, body.overlap_hours, ctx.keys)
        return 200, out

    route = f"POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret"
    return idempotent(ctx, _scope(m), key, route, body, work, sensitive=True)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_webhook_endpoint(
    endpoint_id: str = EndpointId,
    m: MerchantPrincipal = Depends(merchant),
    ctx: Context = Depends(get_ctx),
) -> None:
    """Delete the endpoint. Events keep being recorded; with no endpoint their deliveries go
    to the dead letters, to be replayed once an endpoint is set again."""
    with ctx.engine.begin() as conn:
        manage.delete_endpoint(conn, m.id, endpoint_id)
