"""The console over real HTTP on SQLite and PostgreSQL: sign-in, session cookie, CSRF, and what
each role may see and do (pages, links, reveal with a reason, webhook replay), with audit
entries for the sensitive actions. Data is made through the REST API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from fenqi.credit import service as credit
from fenqi.privacy.staff import create_staff
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.privacy import audit_log
from fenqi.store.schema.webhooks import webhook_deliveries
from support.api_server import STAFF_PASSWORD, Api, id_number, running_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(api: Api, username: str, role: str) -> httpx.Client:
    with api.ctx.engine.begin() as conn:
        create_staff(conn, api.clock, username, STAFF_PASSWORD, role)
    client = httpx.Client(base_url=api.base, timeout=60)
    form = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": username, "password": STAFF_PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def world(db_url: str, models_dir: Path, tmp_path: Path) -> Iterator[tuple[Api, dict[str, int]]]:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_console")
        good = api.apply(key, id_number(), "13812341234")
        assert good.status_code == 201 and good.json()["outcome"] == "approved", good.text
        bad = api.apply(key, id_number(seq="456"), "13912341234", other_lenders=7)
        assert bad.status_code == 201 and bad.json()["outcome"] == "declined", bad.text
        ids = {
            "customer": good.json()["customer_id"],
            "account": good.json()["credit_account_id"],
            "declined_decision": int(bad.json()["decision_id"].removeprefix("rd_")),
        }
        yield api, ids


def test_sign_in_session_cookie_and_csrf(world: tuple[Api, dict[str, int]]) -> None:
    api, _ = world
    anonymous = httpx.Client(base_url=api.base)
    r = anonymous.get("/console/dashboard?start=2026-01-01")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/dashboard%3Fstart%3D2026-01-01"

    with api.ctx.engine.begin() as conn:
        create_staff(conn, api.clock, "fin", STAFF_PASSWORD, "finance")
    form = anonymous.get("/console/login")
    token = csrf_of(form.text)
    no_csrf = anonymous.post("/console/login", data={"username": "fin", "password": STAFF_PASSWORD})
    assert no_csrf.status_code == 403
    wrong = anonymous.post(
        "/console/login", data={"username": "fin", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    ok = anonymous.post(
        "/console/login",
        data={
            "username": "fin",
            "password": STAFF_PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/",
        },
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/console"  # no open redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    home = anonymous.get("/console")
    assert home.status_code == 303 and home.headers["location"] == "/console/dashboard"

    # signing out needs the session's CSRF token, and ends the session in the database
    page = anonymous.get("/console/dashboard")
    assert anonymous.post("/console/logout").status_code == 403
    out = anonymous.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    anonymous.cookies.set("fenqi_console", ok.cookies["fenqi_console"], path="/console")
    assert anonymous.get("/console/dashboard").status_code == 303  # the old token is dead


def test_roles_decide_pages_links_and_actions(world: tuple[Api, dict[str, int]]) -> None:
    api, ids = world
    customer = ids["customer"]

    admin = sign_in(api, "root", "admin")
    dash = admin.get("/console/dashboard")
    assert dash.status_code == 200
    assert "50.0%" in dash.text  # one approved, one declined application today
    assert 'id="chart-vintages"' in dash.text and "Plotly.newPlot" in dash.text
    assert ">Decisions<" not in dash.text and ">Webhooks<" in dash.text
    assert admin.get("/console/decisions").status_code == 403  # admin runs, does not judge
    assert admin.get("/console/models").status_code == 403
    batch = admin.get("/console/batch")
    assert batch.status_code == 200 and "No end-of-day run yet" in batch.text

    # support finds shoppers (masked) but cannot reveal them
    support = sign_in(api, "helpdesk", "support")
    found = support.post(
        "/console/shoppers/search",
        data={"phone": "13812341234", "csrf_token": csrf_of(support.get("/console/shoppers").text)},
    )
    assert found.status_code == 200 and f"/console/shoppers/{customer}" in found.text
    assert "13812341234" not in found.text and "138****1234" in found.text
    account_page = support.get(f"/console/shoppers/{customer}")
    assert account_page.status_code == 200 and "张*" in account_page.text
    assert "Reveal" not in account_page.text and "/console/decisions/" not in account_page.text
    refused = support.post(
        f"/console/shoppers/{customer}/reveal",
        data={"reason": "curious", "csrf_token": csrf_of(account_page.text)},
    )
    assert refused.status_code == 403 and "张三" not in refused.text
    assert support.get("/console/dashboard").status_code == 403

    # a collector may reveal, with a reason, and the reveal is audited with it
    collector = sign_in(api, "caller", "collector")
    page = collector.get(f"/console/shoppers/{customer}")
    assert "Reveal" in page.text
    token = csrf_of(page.text)
    assert (
        collector.post(f"/console/shoppers/{customer}/reveal", data={"reason": "x"}).status_code
        == 403
    )  # no CSRF token
    no_reason = collector.post(
        f"/console/shoppers/{customer}/reveal", data={"reason": " ", "csrf_token": token}
    )
    assert no_reason.status_code == 400 and "张三" not in no_reason.text
    shown = collector.post(
        f"/console/shoppers/{customer}/reveal",
        data={"reason": "calling about a late payment"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert shown.status_code == 200 and "张三" in shown.text and "13812341234" in shown.text
    with api.ctx.engine.connect() as conn:
        reveals = conn.execute(
            select(audit_log.c.actor_id, audit_log.c.reason).where(
                audit_log.c.action == "customer.reveal_pii"
            )
        ).all()
    assert len(reveals) == 1 and reveals[0][1] == "calling about a late payment"

    # a risk analyst reads decisions and models, with the rule that declined
    analyst = sign_in(api, "quant", "risk_analyst")
    listing = analyst.get("/console/decisions?outcome=decline")
    assert listing.status_code == 200 and "P05_TOO_MANY_LENDERS" in listing.text
    detail = analyst.get(f"/console/decisions/{ids['declined_decision']}")
    assert detail.status_code == 200 and "P05_TOO_MANY_LENDERS" in detail.text
    assert "gbm-v0001" in detail.text and "default-credit-line@" in detail.text
    models = analyst.get("/console/models")
    assert models.status_code == 200 and "gbm-v0001" in models.text and "deciding" in models.text
    assert 'id="chart-scores"' in models.text
    assert analyst.get("/console/decisions/999999").text.count("There is no decision") == 1
    assert analyst.get("/console/webhooks").status_code == 403


def test_account_actions_follow_roles_and_are_audited(
    world: tuple[Api, dict[str, int]],
) -> None:
    api, ids = world
    customer, account = ids["customer"], ids["account"]

    # support may freeze (with a reason) but not change a limit
    support = sign_in(api, "desk", "support")
    page = support.get(f"/console/shoppers/{customer}")
    assert f'data-testid="status-form-{account}"' in page.text
    assert f'data-testid="limit-form-{account}"' not in page.text
    token = csrf_of(page.text)
    status_url = f"/console/accounts/{account}/status"
    no_reason = support.post(
        status_url, data={"action": "freeze", "reason": " ", "csrf_token": token}
    )
    assert no_reason.status_code == 400 and "Say why you freeze it." in no_reason.text
    odd = support.post(status_url, data={"action": "delete", "reason": "x", "csrf_token": token})
    assert odd.status_code == 400 and "Choose one of freeze, unfreeze, close." in odd.text
    done = support.post(
        status_url,
        data={"action": "freeze", "reason": "shopper reports a lost phone", "csrf_token": token},
    )
    assert done.status_code == 200 and done.headers["HX-Refresh"] == "true"
    again = support.post(
        status_url, data={"action": "freeze", "reason": "twice", "csrf_token": token}
    )
    assert again.status_code == 409 and "is frozen; cannot freeze" in again.text
    limit_url = f"/console/accounts/{account}/limit"
    refused = support.post(limit_url, data={"limit_yuan": "1", "reason": "x", "csrf_token": token})
    assert refused.status_code == 403
    assert "frozen" in support.get(f"/console/shoppers/{customer}").text

    # a risk analyst sets limits; the amount is read in yuan and must be one
    analyst = sign_in(api, "limits", "risk_analyst")
    token = csrf_of(analyst.get(f"/console/shoppers/{customer}").text)
    bad = analyst.post(
        limit_url, data={"limit_yuan": "12.345", "reason": "review", "csrf_token": token}
    )
    assert bad.status_code == 400 and "more than two decimals" in bad.text
    ok = analyst.post(
        limit_url,
        data={"limit_yuan": "8,000.50", "reason": "income verified", "csrf_token": token},
    )
    assert ok.status_code == 200, ok.text

    # a collector sees neither form and may do neither
    collector = sign_in(api, "dunning", "collector")
    page = collector.get(f"/console/shoppers/{customer}")
    assert "status-form-" not in page.text and "limit-form-" not in page.text
    token = csrf_of(page.text)
    assert (
        collector.post(
            status_url, data={"action": "unfreeze", "reason": "x", "csrf_token": token}
        ).status_code
        == 403
    )

    with api.ctx.engine.connect() as conn:
        row = conn.execute(
            select(credit_accounts.c.status, credit_accounts.c.limit_fen).where(
                credit_accounts.c.id == account
            )
        ).one()
        assert tuple(row) == ("frozen", 800_050)
        summary = credit.account_summary(conn, account, api.clock.today())
        assert summary["limit_fen"] == 800_050
        audited = conn.execute(
            select(audit_log.c.action, audit_log.c.reason, audit_log.c.detail)
            .where(
                audit_log.c.target_kind == "credit_account",
                audit_log.c.target_id == str(account),
            )
            .order_by(audit_log.c.id)
        ).all()
    assert [(a, r) for a, r, _ in audited] == [
        ("account.freeze", "shopper reports a lost phone"),
        ("account.change_limit", "income verified"),
    ]
    detail = audited[1][2]
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["new_limit_fen"] == 800_050


def test_webhook_replay_is_audited(world: tuple[Api, dict[str, int]]) -> None:
    api, _ = world
    admin = sign_in(api, "ops", "admin")
    page = admin.get("/console/webhooks")
    assert page.status_code == 200 and "application.decided" in page.text
    token = csrf_of(page.text)
    event_id = re.findall(r"<code>(evt_[^<]+)</code>", page.text)[0]
    replay_url = f"/console/webhooks/events/{event_id}/replay"
    busy = admin.post(replay_url, headers={"X-CSRF-Token": token})
    assert busy.status_code == 200 and "Not replayed" in busy.text  # still pending
    with api.ctx.engine.begin() as conn:  # the worker gave up on every delivery
        conn.execute(update(webhook_deliveries).values(status="dead"))
    done = admin.post(replay_url, headers={"X-CSRF-Token": token})
    assert done.status_code == 200 and "queued again" in done.text
    with api.ctx.engine.connect() as conn:
        audited = (
            conn.execute(
                select(audit_log.c.target_id).where(audit_log.c.action == "webhooks.replay")
            )
            .scalars()
            .all()
        )
    assert audited == [event_id]
    after = admin.get("/console/webhooks")
    card = r'<div class="label">(\w+)</div><div class="value">(\d+)</div>'
    counts = dict(re.findall(card, after.text))  # two events died, one is queued again
    assert counts == {"pending": "1", "delivering": "0", "delivered": "0", "dead": "2"}
    audit_page = admin.get("/console/audit?target_kind=webhook_event")
    assert audit_page.status_code == 200 and event_id in audit_page.text
