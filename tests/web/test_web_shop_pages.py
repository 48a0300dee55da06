"""Demo shop and wallet pages without a browser: amounts typed by shoppers, the empty state
before `fenqi demo` ran, CSRF on their forms, and the vendored scripts being served."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fenqi.web.routes_shop import parse_yuan
from support.api_server import running_api


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("123.45", 12345),
        ("1,000", 100_000),
        (" 0.01 ", 1),
        ("5", 500),
        ("0", None),
        ("-3", None),
        ("1.001", None),
        ("abc", None),
        ("NaN", None),
        ("Infinity", None),
        ("1e20", None),
    ],
)
def test_amounts_typed_in_yuan(text: str, fen: int | None) -> None:
    assert parse_yuan(text) == fen


def test_pages_before_the_demo_exists_and_csrf(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.fenqi/demo.json here
    with running_api(f"sqlite:///{tmp_path / 'f.sqlite'}", models_dir, tmp_path) as api:
        client = httpx.Client(base_url=api.base)
        for path in ("/shop", "/wallet"):
            r = client.get(path)
            assert r.status_code == 200 and "No demo shop yet" in r.text
            if path == "/shop":  # the first visit gets the double-submit CSRF cookie
                assert "httponly" in r.headers["set-cookie"].lower()
        refused = client.post("/shop/quote", data={"sku": "phone-5g", "customer_id": "1"})
        assert refused.status_code == 403
        token = client.cookies["fenqi_csrf"]
        wrong = client.post(
            "/wallet/repay",
            data={"account_id": "1", "amount_yuan": "1", "pay_key": "a" * 24},
            headers={"X-CSRF-Token": token + "x"},
        )
        assert wrong.status_code == 403
        unknown = client.post(
            "/shop/quote",
            data={"sku": "phone-5g", "customer_id": "1", "csrf_token": token},
        )
        assert unknown.status_code == 400 and "Unknown item or shopper" in unknown.text
        htmx = client.get("/console/static/htmx.min.js")
        assert htmx.status_code == 200 and "Zero-Clause BSD" in htmx.text[:200]
        plotly = client.get("/console/static/plotly.min.js")
        assert plotly.status_code == 200 and plotly.headers["content-type"].startswith(
            "application/javascript"
        )
        assert "plotly" in plotly.text[:2000].lower()


def _response(status: int, body: dict[str, object]) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_the_shop_never_shows_internal_rule_codes_to_shoppers() -> None:
    from fenqi.web.routes_shop import SHOPPER_MESSAGE_DEFAULT, shopper_message

    declined = _response(
        402, {"code": "risk_decline", "detail": "checkout risk: decline (T07)", "reason": "T07"}
    )
    text = shopper_message(declined)
    assert "T07" not in text and "checkout risk" not in text
    assert "could not approve" in text
    step_up = _response(402, {"code": "risk_step_up", "detail": "checkout risk: step_up (T03)"})
    assert "T03" not in shopper_message(step_up)
    odd = _response(422, {"code": "something_internal", "detail": "rule R12 fired"})
    assert shopper_message(odd) == SHOPPER_MESSAGE_DEFAULT
    assert shopper_message(httpx.Response(500, text="oops")) == SHOPPER_MESSAGE_DEFAULT


def test_the_shop_hides_plans_the_available_credit_cannot_cover() -> None:
    from fenqi.web.routes_shop import affordable_plans

    def plan(terms: int, principal: int) -> dict[str, object]:
        return {"terms": terms, "schedule": [{"principal_fen": principal}]}

    quote = {"available_fen": 50_000, "plans": [plan(0, 89_900), plan(3, 89_900)]}
    assert affordable_plans(quote) == []
    assert [p["terms"] for p in affordable_plans({**quote, "available_fen": 89_900})] == [0, 3]
