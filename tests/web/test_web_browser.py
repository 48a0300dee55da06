"""End to end in Debian's Chromium (Playwright): sign in to the console, see the dashboard's
charts drawn with data, buy on the demo shop in 6 installments (through the step-up check a
large first purchase asks for), find the plan in the wallet, repay, and see the repayment on
the shopper's page in the console. Every wait is for an element, never a sleep."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fenqi.money import format_fen
from fenqi.privacy.staff import create_staff
from support.api_server import STAFF_PASSWORD, Api, id_number, running_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 30_000

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/ensure-chromium.sh (make test does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def write_demo_file(folder: Path, api: Api, key: str, shoppers: list[dict[str, int]]) -> None:
    """What `fenqi demo` writes: the shop's key and the shoppers the demo pages may act for."""
    (folder / ".fenqi").mkdir(exist_ok=True)
    (folder / ".fenqi" / "demo.json").write_text(
        json.dumps(
            {
                "database_url": "",
                "shop": {"id": "m_demo", "api_key": key},
                "staff": [{"username": "ana", "password": STAFF_PASSWORD, "role": "admin"}],
                "shoppers": shoppers,
            }
        )
    )


def test_console_shop_wallet_round_trip(
    browser: object,
    models_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo file is read from ./.fenqi/demo.json
    db_url = f"sqlite:///{tmp_path / 'fenqi.sqlite'}"
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_demo")
        # someone bought earlier, so the dashboard has a book to draw
        earlier = api.apply(key, id_number(seq="777"), "13712341234").json()
        o = api.post(
            "/v1/orders",
            key,
            {
                "credit_account_id": earlier["credit_account_id"],
                "amount_fen": 150_000,
                "terms": 3,
                "currency": "CNY",
                "merchant_order_ref": "EARLY-1",
            },
        )
        assert o.status_code == 201, o.text
        assert api.post(f"/v1/orders/{o.json()['id']}/captures", key, {}).status_code == 201
        buyer = api.apply(key, id_number(), "13812341234").json()
        assert buyer["outcome"] == "approved", buyer
        write_demo_file(
            tmp_path,
            api,
            key,
            [
                {
                    "customer_id": buyer["customer_id"],
                    "credit_account_id": buyer["credit_account_id"],
                }
            ],
        )
        with api.ctx.engine.begin() as conn:
            create_staff(conn, api.clock, "ana", STAFF_PASSWORD, "admin")

        context = browser.new_context()  # type: ignore[attr-defined]
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        expect = sync_api.expect

        # sign in; the console sends us to the page we asked for
        page.goto(f"{api.base}/console/dashboard")
        expect(page).to_have_url(re.compile(r"/console/login"))
        page.fill("#username", "ana")
        page.fill("#password", STAFF_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/console/dashboard"))
        expect(page.get_by_test_id("outstanding")).to_have_text(
            f"¥{format_fen(150_000)}", timeout=TIMEOUT_MS
        )
        # Plotly drew the charts: SVG paths for the points, lines and bars, with data in them
        for chart in ("#chart-balances", "#chart-vintages"):
            page.locator(f"{chart} .main-svg .scatterlayer .points path").first.wait_for()
        lines = page.locator("#chart-balances .scatterlayer path.js-line")
        assert lines.count() == 3  # outstanding, M1+, M3+
        assert len(lines.first.get_attribute("d") or "") > 20  # a drawn line, not one point
        page.locator("#chart-buckets .main-svg .bars path").first.wait_for()

        # the demo shop: quote, pick 6 installments, confirm the step-up, buy
        page.goto(f"{api.base}/shop?sku=phone-5g")
        page.get_by_role("button", name="Pay later with fenqi").click()
        six = page.get_by_test_id("plan-6")
        six.wait_for()
        label = page.locator("label", has=six)
        expect(label).to_contain_text("6 ×")
        expect(label).to_contain_text("annualized rate (IRR)")
        six.check()
        page.get_by_role("button", name="Buy now").click()
        page.get_by_test_id("step-up").wait_for()
        page.get_by_role("button", name="I confirm this purchase").click()
        expect(page.get_by_test_id("order-done")).to_contain_text("in 6 installments")

        # the wallet shows the plan; pay the first installment
        page.get_by_role("link", name="See it in your wallet").click()
        page.get_by_role("button", name="Open wallet").click()
        plan = page.get_by_test_id("plan").filter(has_text="6 installments")
        expect(plan).to_have_count(1)
        expect(plan.locator("tbody tr")).to_have_count(6)
        amount = page.get_by_test_id("repay-amount").input_value()
        assert float(amount) > 0
        page.get_by_test_id("repay").click()
        expect(page.get_by_test_id("paid")).to_contain_text(f"¥{amount}")

        # back in the console, the repayment is on the shopper's account and in the ledger
        page.goto(f"{api.base}/console/shoppers/{buyer['customer_id']}")
        account = buyer["credit_account_id"]
        expect(page.get_by_test_id(f"repayments-{account}")).to_contain_text(amount)
        expect(page.get_by_test_id(f"ledger-{account}")).to_contain_text("repayment")
        expect(page.get_by_test_id("masked")).not_to_contain_text("13812341234")
        context.close()

        # support freezes the account from its page: a refusal shows in place, a change reloads
        with api.ctx.engine.begin() as conn:
            create_staff(conn, api.clock, "sam", STAFF_PASSWORD, "support")
        context = browser.new_context()  # type: ignore[attr-defined]
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{api.base}/console/shoppers/{buyer['customer_id']}")
        page.fill("#username", "sam")
        page.fill("#password", STAFF_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        form = page.get_by_test_id(f"status-form-{account}")
        form.get_by_label("action").select_option("unfreeze")
        form.get_by_label("status reason").fill("checking")
        form.get_by_role("button", name="Apply").click()
        expect(page.get_by_role("alert")).to_contain_text("is active; cannot unfreeze")
        form = page.get_by_test_id(f"status-form-{account}")
        form.get_by_label("action").select_option("freeze")
        form.get_by_label("status reason").fill("shopper reports a lost phone")
        form.get_by_role("button", name="Apply").click()
        expect(page.locator("h2", has_text=f"Credit account {account}")).to_contain_text("frozen")
        context.close()


def test_api_docs_render_with_the_network_cut_off(
    browser: object, models_dir: Path, tmp_path: Path
) -> None:
    """Swagger UI draws the API from the package's files: every request to another host fails."""
    with running_api(f"sqlite:///{tmp_path / 'f.sqlite'}", models_dir, tmp_path) as api:
        page = browser.new_page()  # type: ignore[attr-defined]
        elsewhere: list[str] = []

        def only_local(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if url.startswith(api.base):
                route.continue_()  # type: ignore[attr-defined]
            else:
                elsewhere.append(url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_local)
        page.goto(f"{api.base}/docs")
        title = page.wait_for_selector(".swagger-ui .info .title", timeout=TIMEOUT_MS)
        assert "fenqi" in title.inner_text()
        page.wait_for_selector(".opblock", timeout=TIMEOUT_MS)  # the operations are listed
        assert elsewhere == []


def test_console_funding_page_shows_concentration_by_region(
    browser: object, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The funding page in Chromium: each funder's top provinces in the region table."""
    from fenqi.funding import wiring
    from funding.test_funding_ops import NEXT, books

    monkeypatch.setattr(wiring, "_configured", lambda: None)  # books() allocates by hand
    db_url = f"sqlite:///{tmp_path / 'fenqi.sqlite'}"
    with running_api(db_url, models_dir, tmp_path, start=NEXT) as api:
        books(api.ctx.engine)
        with api.ctx.engine.begin() as conn:
            create_staff(conn, api.clock, "ana", STAFF_PASSWORD, "admin")
        page = browser.new_page()  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{api.base}/console/funding?date={NEXT.isoformat()}")
        page.fill("#username", "ana")
        page.fill("#password", STAFF_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        row = page.locator('[data-testid="funding-regions"] tr[data-funder="bank_example"]')
        sync_api.expect(row).to_have_count(1)
        sync_api.expect(row.locator("td").nth(1)).to_have_text("31")
        sync_api.expect(row.locator("td").nth(2)).to_have_text(f"¥{format_fen(60_000)}")
        sync_api.expect(row.locator("td").nth(3)).to_have_text("100.00%")
