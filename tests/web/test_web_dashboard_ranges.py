"""The dashboard's date range stops at the business date (issue 24 item 16: a future end date
showed M1+ delinquency of 100%), and the PSI chart neither measures a month from a handful of
decisions nor draws lines across months without any (both databases for the page)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from fenqi.analytics.charts import psi_figure
from fenqi.analytics.decisions import psi_by_month
from fenqi.privacy.staff import create_staff
from fenqi.web.render import _money
from support.api_server import STAFF_PASSWORD, Api, id_number, running_api


def sign_in(api: Api, username: str, role: str) -> httpx.Client:
    with api.ctx.engine.begin() as conn:
        create_staff(conn, api.clock, username, STAFF_PASSWORD, role)
    client = httpx.Client(base_url=api.base, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/login").text)
    assert token
    r = client.post(
        "/console/login",
        data={"username": username, "password": STAFF_PASSWORD, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, r.text
    return client


def test_a_future_end_date_is_clamped_to_the_business_date(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_dash")
        acct = api.apply(key, id_number(), "13812341234").json()["credit_account_id"]
        order = api.post(
            "/v1/orders", key,
            {"credit_account_id": acct, "amount_fen": 150_000, "currency": "CNY", "terms": 3,
             "merchant_order_ref": "D-1", "capture": True},
        )  # fmt: skip
        assert order.status_code == 201, order.text
        client = sign_in(api, "fin", "finance")
        today = api.clock.today()
        page = client.get("/console/dashboard", params={"end": "2027-06-30"})
        assert page.status_code == 200
        assert f"The end date was after the business date; showing up to {today}." in page.text
        assert f"As of {today}" in page.text
        m1 = re.search(r"M1\+ delinquency</div><div class=\"value\">([^<]*)<", page.text)
        assert m1 and m1.group(1) == "0.0%", m1
        assert "¥1,500.00" in page.text  # outstanding principal, with its currency sign
        far = client.get("/console/dashboard", params={"start": "2000-01-01", "end": "2199-12-31"})
        assert far.status_code == 200 and "At most 60 months are shown" in far.text
        # report dates outside 2000-2199 are refused as input (docs/api.md)
        beyond = client.get("/console/dashboard", params={"end": "9999-12-31"})
        assert beyond.status_code == 422


def test_psi_is_not_measured_from_a_handful_and_empty_months_are_gaps() -> None:
    deciles = [float(x) for x in range(500, 590, 10)]
    scores = [{"model_id": "m1", "month": "2026-01", "score": 500 + i % 100} for i in range(300)]
    scores += [{"model_id": "m1", "month": "2026-02", "score": 700} for _ in range(5)]
    scores += [{"model_id": "m1", "month": "2026-05", "score": 520 + i % 50} for i in range(120)]
    points = psi_by_month(scores, {"m1": deciles})
    assert [(p["month"], p["n"], p["psi"] is None) for p in points] == [
        ("2026-01", 300, False),
        ("2026-02", 5, True),  # five decisions: too few to measure
        ("2026-03", 0, True),
        ("2026-04", 0, True),
        ("2026-05", 120, False),
    ]
    trace = psi_figure(points).data[0]
    assert list(trace.x) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    assert trace.y[1] is None and trace.connectgaps is False
    assert list(trace.text) == ["n=300", "n=5", "n=0", "n=0", "n=120"]
    few = psi_figure(psi_by_month(scores[300:305], {"m1": deciles}))
    assert "too few to measure PSI" in few.layout.annotations[-1].text


def test_console_money_carries_its_currency_sign() -> None:
    assert _money(123_456) == "¥1,234.56"
    assert _money(-5, "USD") == "-$0.05"
    assert _money(100, "XYZ") == "XYZ 1.00"
    assert _money(None) == "—"
