"""The demo shop's webhook receiver: `fenqi demo` points every shop of its marketplace at
`/shop/webhooks/{merchant_id}` on its own server, so the worker's deliveries arrive (and show
as delivered in the console) instead of piling up as dead letters for want of an endpoint.

The receiver does what a shop's should: it checks the `Fenqi-Signature` header against the
shop's signing secret and the timestamp window, refuses anything else (400), and answers 204.
The last events received are kept in memory and listed at GET /shop/webhooks."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, select

from fenqi.context import Context
from fenqi.store.schema.parties import merchants
from fenqi.store.schema.webhooks import webhook_deliveries, webhook_endpoints, webhook_events
from fenqi.web.render import page
from fenqi.webhooks.endpoints import new_secret, resolve_endpoint, set_endpoint
from fenqi.webhooks.outbox import replay
from fenqi.webhooks.signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, verify
from fenqi.webhooks.worker import NO_ENDPOINT_ERROR

router = APIRouter(include_in_schema=False)
RECEIVED_MAX = 200
BODY_BYTES_MAX = 1_000_000
PATH = "/shop/webhooks"


def receiver_url(host: str, port: int, merchant_id: str) -> str:
    """The demo receiver's URL for a shop, as the worker on this machine reaches it."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reach:
        reach = f"[{reach}]"
    return f"http://{reach}:{port}{PATH}/{merchant_id}"


def connect_shops(conn: Connection, ctx: Context, host: str, port: int) -> int:
    """Give every shop without a webhook endpoint the demo receiver (a new secret each);
    returns how many were connected. Needs `webhook_allow_private_networks` (the demo's)."""
    e = webhook_endpoints.c
    without = (
        conn.execute(
            select(merchants.c.id)
            .where(merchants.c.id.not_in(select(e.merchant_id)))
            .order_by(merchants.c.id)
        )
        .scalars()
        .all()
    )
    for merchant_id in without:
        set_endpoint(
            conn, ctx.clock, merchant_id, receiver_url(host, port, merchant_id), new_secret(),
            ctx.keys, allow_private=ctx.settings.webhook_allow_private_networks,
        )  # fmt: skip
    return len(without)


def replay_unsent(conn: Connection, ctx: Context) -> int:
    """Replay the events that became dead letters only because their shop had no endpoint (a
    demo served before its shops had the receiver), now that every shop has one; returns how
    many. The dead deliveries stay as history, as with any replay."""
    d, ev = webhook_deliveries.c, webhook_events.c
    dead_for_want = select(d.event_row_id).where(
        d.status == "dead", d.last_error == NO_ENDPOINT_ERROR
    )
    other = select(d.event_row_id).where(
        d.last_error.is_(None) | (d.last_error != NO_ENDPOINT_ERROR)
    )
    events = conn.execute(
        select(ev.event_id).where(ev.id.in_(dead_for_want), ev.id.not_in(other)).order_by(ev.id)
    ).scalars()
    count = 0
    for event_id in events.all():
        replay(conn, ctx.clock, event_id)
        count += 1
    return count


def _received(request: Request) -> deque[dict[str, Any]]:
    state = request.app.state
    if not hasattr(state, "demo_webhooks"):
        state.demo_webhooks = deque(maxlen=RECEIVED_MAX)
    received: deque[dict[str, Any]] = state.demo_webhooks
    return received


@router.post(PATH + "/{merchant_id}")
async def receive(request: Request, merchant_id: str) -> Response:
    ctx: Context = request.app.state.ctx
    body = await request.body()
    if len(body) > BODY_BYTES_MAX:
        return Response("too large", status_code=413)
    with ctx.engine.connect() as conn:
        endpoint = resolve_endpoint(conn, merchant_id[:64], ctx.keys)
    header = request.headers.get(SIGNATURE_HEADER, "")
    now = int(ctx.clock.now().timestamp())
    if endpoint is None or not verify(endpoint.secret, header, body, now):
        return Response("bad signature", status_code=400)
    try:
        data = json.loads(body)
    except ValueError:
        return Response("not JSON", status_code=400)
    _received(request).appendleft(
        {
            "merchant_id": merchant_id,
            "event_id": request.headers.get(EVENT_ID_HEADER, ""),
            "type": request.headers.get(EVENT_TYPE_HEADER, ""),
            "created": data.get("created_at") if isinstance(data, dict) else None,
        }
    )
    return Response(status_code=204)


@router.get(PATH, response_class=HTMLResponse)
def received(request: Request) -> Response:
    return page(request, "shop_webhooks.html", received=list(_received(request)), csrf="")
