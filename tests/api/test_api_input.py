"""Bad input gets a clear 4xx, never a 500, and changes nothing: swept over real HTTP on SQLite
and PostgreSQL (issue 24 items 3 and 4, issue 25 items 5 and 10, and the integrator friction).

Each class of mistake is tried at every place it can enter: control characters in every kind of
text (body fields, path parameters, query filters, headers, console forms, the unauthenticated
staff logins), loose JSON (booleans, strings and floats as integers, duplicate keys, malformed
JSON), sizes (a body over the limit, an Idempotency-Key at its documented maximum, ids past the
64-bit range, amounts past the transaction-risk maximum, a report range to the year 9999).
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fenqi.privacy.staff import create_staff
from fenqi.store.schema.parties import orders
from fenqi.store.schema.risk import risk_transaction_assessments
from support.api_server import STAFF_PASSWORD, Api, id_number, running_api

# NUL (PostgreSQL refuses it in text), another C0 control, a Unicode line separator, a
# bidirectional override and a lone surrogate (not encodable as UTF-8)
BAD_TEXTS = ["a\x00b", "a\x01b", "a\u2028b", "a\u202eb", "a\ud800b"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class World:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.key = api.merchant("m_shop")
        applied = api.apply(self.key, id_number(), "13812341234")
        assert applied.status_code == 201, applied.text
        self.customer = applied.json()["customer_id"]
        self.account = applied.json()["credit_account_id"]
        self.staff = api.staff_token()  # admin
        self.risk = api.staff_token("risk", "risk_analyst")  # freezes, changes limits
        self.shopper = api.shopper_token(self.key, self.customer)
        order = self.order({"capture": True})
        assert order.status_code == 201, order.text
        self.order_id = order.json()["id"]

    def order(self, extra: dict[str, Any], key: str | None = None) -> httpx.Response:
        body = {
            "credit_account_id": self.account,
            "amount_fen": 1000,
            "currency": "CNY",
            "terms": 0,
            "merchant_order_ref": uuid.uuid4().hex,
            **extra,
        }
        return self.api.post("/v1/orders", self.key, body, key=key)

    def raw(
        self, method: str, path: str, token: str, content: bytes, key: str | None = None
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": key or uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        return self.api.http.request(method, path, content=content, headers=headers)

    def send(
        self, path: str, token: str | None, body: Any = None, method: str = "POST"
    ) -> httpx.Response:
        """JSON with every non-ASCII character escaped, so a lone surrogate can be sent."""
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        content = None if body is None else json.dumps(body).encode()
        return self.api.http.request(method, path, content=content, headers=headers)

    def counts(self) -> tuple[int, int]:
        with self.api.ctx.engine.connect() as conn:
            assessed = conn.execute(
                select(func.count()).select_from(risk_transaction_assessments)
            ).scalar_one()
            ordered = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        return int(assessed), int(ordered)


@pytest.fixture
def world(db_url: str, models_dir: Path, tmp_path: Path) -> Iterator[World]:
    with running_api(db_url, models_dir, tmp_path) as api:
        yield World(api)


def refused(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A clear refusal: 4xx problem+json with a code, a detail and the request id."""
    where = f"{response.request.method} {response.request.url}"
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if status is not None:
        assert response.status_code == status, f"{where}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), where
    body: dict[str, Any] = response.json()
    assert body["code"] and body["detail"], body
    assert body["request_id"] == response.headers["x-request-id"], body
    return body


def test_control_characters_are_refused_everywhere_before_anything_is_written(
    world: World,
) -> None:
    w = world
    before = w.counts()
    consent = {"kind": "bureau_inquiry", "text_version": "2026-01", "scope": "credit decision"}
    for bad in BAD_TEXTS:
        cases: list[tuple[str, httpx.Response]] = [
            ("order reference", w.send("/v1/orders", w.key, _order(w, merchant_order_ref=bad))),
            ("device id", w.send("/v1/orders", w.key, _order(w, device_id=bad))),
        ]
        for field in ("text_version", "scope", "name", "phone"):
            body = {
                "product": "huabei",
                "name": "张三",
                "id_number": id_number(seq="777"),
                "phone": "13912345678",
                "income_band": "10k_20k",
                "consents": [consent | ({field: bad} if field in consent else {})],
                "behaviour": {
                    "account_age_days": 100,
                    "orders_12m": 3,
                    "spend_12m_fen": 10_000,
                    "return_rate_bp": 0,
                },
            }
            if field not in consent:
                body[field] = bad + "0" * 12
            cases.append((f"application {field}", w.send("/v1/applications", w.key, body)))
        ops = "/v1/ops"
        q = _path(bad)
        cases += [
            (
                "freeze reason",
                w.send(f"{ops}/accounts/{w.account}/freeze", w.risk, {"reason": bad}),
            ),
            (
                "limit reason",
                w.send(
                    f"{ops}/accounts/{w.account}/limit", w.risk, {"limit_fen": 1000, "reason": bad}
                ),
            ),
            (
                "merchant name",
                w.send(f"{ops}/merchants", w.staff, {"id": "m_x", "name": bad, "category": "x"}),
            ),
            ("audit filter", w.send(f"{ops}/audit?target_id={q}", w.staff, method="GET")),
            ("audit kind filter", w.send(f"{ops}/audit?target_kind={q}", w.staff, method="GET")),
            (
                "delivery filter",
                w.send(f"{ops}/webhooks/deliveries?merchant_id={q}", w.staff, method="GET"),
            ),
            ("customer search", w.send(f"{ops}/customers?phone={q}", w.staff, method="GET")),
            ("merchant id in a path", w.send(f"{ops}/merchants/{q}/payouts", w.staff)),
            ("event id in a path", w.send(f"{ops}/webhooks/events/{q}/replay", w.staff)),
            ("order id in a path", w.send(f"/v1/orders/{q}", w.key, method="GET")),
            (
                "staff login username",
                w.send(f"{ops}/sessions", None, {"username": bad, "password": "x"}),
            ),
        ]
        for what, response in cases:
            body = refused(response)
            assert response.status_code == 422, (what, response.text)
            assert "control character" in body["detail"] or "UTF-8" in body["detail"], (what, body)
    # the header: a tab is the only control character HTTP lets through
    tabbed = w.order({}, key="key\twith-a-tab")
    assert "control character" in refused(tabbed, 422)["detail"]
    assert w.counts() == before, "a refused request wrote a risk assessment or an order"


def _order(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "credit_account_id": w.account,
        "amount_fen": 1000,
        "currency": "CNY",
        "terms": 0,
        "merchant_order_ref": uuid.uuid4().hex,
        **extra,
    }


def _path(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _console(w: World, username: str, role: str) -> tuple[httpx.Client, str]:
    """A console session of a new staff user, and a CSRF token for its forms."""
    with w.api.ctx.engine.begin() as conn:
        create_staff(conn, w.api.clock, username, STAFF_PASSWORD, role)
    client = httpx.Client(base_url=w.api.base, timeout=60)
    token = CSRF.search(client.get("/console/login").text)
    assert token is not None
    for bad in BAD_TEXTS[:4]:  # the unauthenticated sign-in form
        login = client.post(
            "/console/login",
            data={"username": bad, "password": "x", "csrf_token": token.group(1)},
        )
        assert login.status_code == 422 and "control character" in login.text, login.text
    ok = client.post(
        "/console/login",
        data={"username": username, "password": STAFF_PASSWORD, "csrf_token": token.group(1)},
    )
    assert ok.status_code == 303, ok.text
    csrf = CSRF.search(client.get(f"/console/shoppers/{w.customer}").text)
    assert csrf is not None
    return client, csrf.group(1)


def test_console_forms_ids_and_dates(world: World) -> None:
    w = world
    risk, risk_csrf = _console(w, "c_risk", "risk_analyst")
    compliance, compliance_csrf = _console(w, "c_comp", "compliance")
    admin, _ = _console(w, "c_admin", "admin")
    for bad in BAD_TEXTS[:4]:
        for client, csrf, path, form in (
            (
                risk,
                risk_csrf,
                f"/console/accounts/{w.account}/status",
                {"action": "freeze", "reason": bad},
            ),
            (
                risk,
                risk_csrf,
                f"/console/accounts/{w.account}/limit",
                {"limit_yuan": "100", "reason": bad},
            ),
            (
                compliance,
                compliance_csrf,
                f"/console/shoppers/{w.customer}/reveal",
                {"reason": bad},
            ),
        ):
            r = client.post(path, data=form | {"csrf_token": csrf})
            assert r.status_code == 422 and "control character" in r.text, (path, r.text)
    huge = str(2**64 + 5)
    for client, path in (
        (risk, f"/console/shoppers/{huge}"),
        (risk, f"/console/decisions/{huge}"),
        (risk, f"/console/decisions?before={huge}"),
        (admin, f"/console/webhooks?after={huge}"),
        (risk, "/console/dashboard?start=2026-01-01&end=9999-12-31"),
        (risk, "/console/dashboard?start=0001-01-01"),
    ):
        r = client.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
    limit = risk.post(
        f"/console/accounts/{w.account}/limit",
        data={"limit_yuan": "1,0,0", "reason": "typo", "csrf_token": risk_csrf},
    )
    assert limit.status_code == 400 and "groups of three" in limit.text, limit.text


def test_loose_json_and_sizes(world: World) -> None:
    w = world
    before = w.counts()
    for loose in (True, "100", 100.0, 1e3, None, [100]):
        refused(w.order({"amount_fen": loose}), 422)
        limit = w.api.post(
            f"/v1/ops/accounts/{w.account}/limit", w.risk, {"limit_fen": loose, "reason": "x"}
        )
        assert refused(limit, 422)["field"] == "limit_fen"
        repay = w.api.post(
            f"/v1/me/accounts/{w.account}/repayments", w.shopper, {"amount_fen": loose}
        )
        refused(repay, 422)
    for text in ('{"limit_fen": 1e3, "reason": "x"}', '{"limit_fen": 1.0, "reason": "x"}'):
        r = w.raw("POST", f"/v1/ops/accounts/{w.account}/limit", w.risk, text.encode())
        refused(r, 422)
    twice = (
        f'{{"credit_account_id": {w.account}, "amount_fen": 100, "amount_fen": 7777, '
        f'"currency": "CNY", "terms": 0, "merchant_order_ref": "dup"}}'
    )
    body = refused(w.raw("POST", "/v1/orders", w.key, twice.encode()), 400)
    assert body["code"] == "duplicate_key" and body["field"] == "amount_fen"
    untyped = w.api.http.post(  # no Content-Type: FastAPI reads the body as JSON all the same
        "/v1/orders",
        content=twice.encode(),
        headers={"Authorization": f"Bearer {w.key}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert refused(untyped, 400)["code"] == "duplicate_key"
    nested = '{"reason": "x", "limit_fen": 5, "reason": "y"}'
    r = w.raw("POST", f"/v1/ops/accounts/{w.account}/limit", w.risk, nested.encode())
    assert refused(r, 400)["code"] == "duplicate_key"
    for broken in (b'{"amount_fen": ', b"{'a': 1}", b"\xff\xfe", b"[1,]"):
        body = refused(w.raw("POST", "/v1/orders", w.key, broken), 400)
        assert body["code"] == "malformed_json" and "field" not in body, body
    big = b'{"merchant_order_ref": "' + b"x" * 1_100_000 + b'"}'
    assert refused(w.raw("POST", "/v1/orders", w.key, big), 413)["code"] == "request_too_large"
    over = w.order({"amount_fen": 100_000_001})  # the schema said 1e11, checkout risk 1e8
    assert refused(over, 422)["field"] == "amount_fen"
    assert w.order({"amount_fen": 10**11}).status_code == 422
    assert w.counts() == before


def test_idempotency_keys_up_to_the_documented_maximum(world: World) -> None:
    """128 characters is the documented maximum; every reference built from a key fits."""
    w = world
    for length in (64, 65, 125, 128):
        w.api.clock.advance(timedelta(days=1))  # a fresh day for checkout risk's velocity rules
        w.shopper = w.api.shopper_token(w.key, w.customer)  # sessions expire: new ones
        w.risk = w.api.staff_token("risk", "risk_analyst")

        def key(operation: str, length: int = length) -> str:
            return (f"{length}-{operation}-" + "k" * 200)[:length]

        first = w.order({"capture": True}, key=key("sale"))
        assert first.status_code == 201, first.text
        again = w.order({"capture": True}, key=key("sale"))  # another body, same key: refused
        assert refused(again, 409)["code"] == "idempotency_key_reused"
        order_id = first.json()["id"]
        refund = w.api.post(
            f"/v1/orders/{order_id}/refunds", w.key, {"amount_fen": 100}, key=key("refund")
        )
        assert refund.status_code == 201, refund.text
        repay = w.api.post(
            f"/v1/me/accounts/{w.account}/repayments", w.shopper, {"amount_fen": 100}, key=key("r")
        )
        assert repay.status_code == 201, repay.text
        replay = w.api.post(
            f"/v1/me/accounts/{w.account}/repayments", w.shopper, {"amount_fen": 100}, key=key("r")
        )
        assert replay.json() == repay.json() and replay.headers["idempotent-replayed"] == "true"
        authorized = w.order({}, key=key("auth"))
        assert authorized.status_code == 201, authorized.text
        capture = w.api.post(
            f"/v1/orders/{authorized.json()['id']}/captures",
            w.key,
            {"amount_fen": 500},
            key=key("capture"),
        )
        assert capture.status_code == 201, capture.text
        void = w.api.post(f"/v1/orders/{w.order({}).json()['id']}/void", w.key, key=key("void"))
        assert void.status_code == 200, void.text
        freeze = w.api.post(
            f"/v1/ops/accounts/{w.account}/freeze", w.risk, {"reason": "x"}, key=key("freeze")
        )
        assert freeze.status_code == 200, freeze.text
        unfreeze = w.api.post(
            f"/v1/ops/accounts/{w.account}/unfreeze", w.risk, {"reason": "x"}, key=key("unfreeze")
        )
        assert unfreeze.status_code == 200, unfreeze.text
    refused(w.order({}, key="k" * 129), 422)


def test_a_500_is_problem_json_and_keeps_the_connection(world: World) -> None:
    w = world

    def broken(_conn: Any, _facts: Any) -> Any:
        raise RuntimeError("injected fault")

    w.api.ctx.__dict__["checkout_risk"] = broken  # a cached_property: replace its value
    host, port = w.api.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps(
        {
            "credit_account_id": w.account,
            "amount_fen": 100,
            "currency": "CNY",
            "terms": 0,
            "merchant_order_ref": "z",
        }
    )
    headers = {
        "Authorization": f"Bearer {w.key}",
        "Idempotency-Key": "boom",
        "Content-Type": "application/json",
        "X-Request-Id": "client-chosen-1",
    }
    conn.request("POST", "/v1/orders", body=body, headers=headers)
    crashed = conn.getresponse()
    problem = json.loads(crashed.read())
    assert crashed.status == 500 and crashed.getheader("content-type") == "application/problem+json"
    assert problem["code"] == "internal_error" and problem["request_id"] == "client-chosen-1"
    assert crashed.getheader("x-request-id") == "client-chosen-1"
    assert "injected fault" not in json.dumps(problem)
    sock = conn.sock
    assert sock is not None
    conn.request("GET", "/healthz")  # the same keep-alive connection, not a new one
    after = conn.getresponse()
    assert after.status == 200 and json.loads(after.read())["ok"] is True
    assert conn.sock is sock
    conn.close()


def test_request_ids_openapi_security_and_quotes(world: World) -> None:
    w = world
    mine = w.api.http.get("/healthz", headers={"X-Request-Id": "abc-123_x.y:z"})
    assert mine.headers["x-request-id"] == "abc-123_x.y:z"
    theirs = w.api.http.get("/healthz", headers={"X-Request-Id": "no spaces allowed"})
    assert re.fullmatch(r"[0-9a-f]{32}", theirs.headers["x-request-id"])
    missing = w.api.http.get("/v1/orders/999999")
    assert refused(missing, 401)["request_id"] == missing.headers["x-request-id"]

    spec = w.api.http.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"shopApiKey", "shopperToken", "staffToken"} <= set(schemes)
    orders_post = spec["paths"]["/v1/orders"]["post"]
    assert orders_post["security"] == [{"shopApiKey": []}]
    key_params = [p for p in orders_post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key_params and key_params[0]["required"] is True
    assert not any(p["name"].lower() == "authorization" for p in orders_post["parameters"])
    quote_post = spec["paths"]["/v1/quotes"]["post"]
    assert not any(p["name"] == "Idempotency-Key" for p in quote_post.get("parameters", []))
    assert spec["paths"]["/v1/me/accounts"]["get"]["security"] == [{"shopperToken": []}]
    assert spec["paths"]["/v1/ops/audit"]["get"]["security"] == [{"staffToken": []}]

    quote = w.api.http.post(
        "/v1/quotes",
        json={"credit_account_id": w.account, "amount_fen": 60_000},
        headers={"Authorization": f"Bearer {w.key}"},
    )
    assert quote.status_code == 200 and quote.json()["plans"], quote.text
    no_key = w.api.http.post(
        "/v1/orders",
        json={
            "credit_account_id": w.account,
            "amount_fen": 100,
            "currency": "CNY",
            "terms": 0,
            "merchant_order_ref": "nokey",
        },
        headers={"Authorization": f"Bearer {w.key}"},
    )
    assert refused(no_key, 400)["code"] == "idempotency_key_required"
