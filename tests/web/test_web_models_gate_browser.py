"""The console's model page shows the promotion gate's decisions and their reasons (issue 23), in
Debian's Chromium through Playwright: a weak challenger refused by the gate stays a challenger,
and the page says why."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from fenqi.clock import FixedClock
from fenqi.credit.underwriting import MODEL_FEATURES
from fenqi.privacy.staff import create_staff
from fenqi.risk.promotion import GatePolicy, champion_of, crown_current, promote_if_better
from fenqi.risk.train import train_model
from fenqi.simulation.population import applicants
from support.api_server import STAFF_PASSWORD, running_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
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


def test_model_page_shows_why_the_gate_kept_a_challenger(
    browser: object, models_dir: Path, tmp_path: Path
) -> None:
    clock = FixedClock.on(date(2026, 1, 2))
    registry = tmp_path / "registry"
    shutil.copytree(models_dir, registry)
    champion = crown_current(registry)
    assert champion is not None
    weak = train_model(
        applicants(1500, 3)[[MODEL_FEATURES[0], "bad"]],
        "bad",
        "scorecard",
        registry,
        clock,
        holdout=0.0,
    )
    sample = applicants(3000, 99)[[*MODEL_FEATURES, "bad"]]
    result = promote_if_better(
        registry, weak.path, sample, "bad", clock, policy=GatePolicy(bads_min=10)
    )
    assert not result["promoted"] and champion_of(registry) == champion
    reason = next(r for r in result["reasons"] if "is not above the champion's" in r)

    with running_api(f"sqlite:///{tmp_path / 'f.sqlite'}", registry, tmp_path) as api:
        with api.ctx.engine.begin() as conn:
            create_staff(conn, api.clock, "quant", STAFF_PASSWORD, "risk_analyst")
        context = browser.new_context()  # type: ignore[attr-defined]
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        expect = sync_api.expect
        expect.set_options(timeout=TIMEOUT_MS)
        page.goto(f"{api.base}/console/models")
        expect(page).to_have_url(re.compile(r"/console/login"))
        page.fill("#username", "quant")
        page.fill("#password", STAFF_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/console/models"))

        decision = page.get_by_test_id(f"gate-{weak.model_id}")
        decision.wait_for()  # the page has loaded (Plotly is large)
        expect(decision).to_contain_text("stays challenger")
        expect(decision).to_contain_text(champion.name)
        expect(decision.locator("ul.reasons li")).to_contain_text([reason])
        # the registry table: the champion decides, the refused challenger says so
        row = page.locator("tr", has_text=weak.model_id).first
        expect(row).to_contain_text("challenger: gate refused")
        expect(page.locator("tr", has_text=champion.name).first).to_contain_text("deciding")
        context.close()
