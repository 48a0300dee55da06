"""Screenshots of the console, the demo shop and the wallet for the README (docs/images/).

Builds a small simulated marketplace (the same `fenqi demo` build, smaller) into a temporary
SQLite file on fixed dates, serves the API and console on a free port, and photographs the main
pages in Debian's Chromium with Playwright:

    .venv/bin/python scripts/screenshots.py [--shoppers 10000] [--out docs/images]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

from fenqi.api.app import create_app
from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.settings import Settings
from fenqi.simulation.demo_build import DemoSpec, build, write_demo_file
from fenqi.store.engine import create_all
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.risk import risk_decisions

TODAY = date(2026, 6, 30)  # fixed, so the pictures do not depend on when they are taken
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}


def build_marketplace(home: Path, shoppers: int, months: int) -> tuple[Any, dict[str, Any]]:
    settings = Settings(
        database_url=f"sqlite:///{home / 'demo.sqlite'}",
        models_dir=home / "models",
        keys_file=home / "keys.json",
        demo_file=home / "demo.json",
    )
    clock = FixedClock.on(TODAY - timedelta(days=round(months * 30.4)), 8)
    ctx = build_context(settings, clock)
    create_all(ctx.engine)
    started = time.perf_counter()
    demo = build(
        ctx,
        DemoSpec(shoppers=shoppers, months=months, take_up=0.2),
        TODAY,
        say=lambda message: print(f"· {message}", flush=True),
        tick=lambda day, days: None,
    )
    write_demo_file(settings.demo_file, demo)
    print(f"built in {time.perf_counter() - started:.0f} s: {demo['built']['counts']}")
    return ctx, demo


def load_or_build(home: Path, shoppers: int, months: int) -> tuple[Any, dict[str, Any]]:
    if (home / "demo.json").is_file():
        demo = json.loads((home / "demo.json").read_text())
        settings = Settings(
            database_url=demo["database_url"],
            models_dir=home / "models",
            keys_file=home / "keys.json",
            demo_file=home / "demo.json",
        )
        return build_context(settings, FixedClock.on(TODAY, 9)), demo
    return build_marketplace(home, shoppers, months)


def serve(ctx: Any) -> tuple[uvicorn.Server, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "server did not start"
    return server, f"http://127.0.0.1:{port}"


def sign_in(page: Page, base: str, demo: dict[str, Any], role: str) -> None:
    login = next(s for s in demo["staff"] if s["role"] == role)
    page.context.clear_cookies()
    page.goto(f"{base}/console/login")
    page.fill("#username", login["username"])
    page.fill("#password", login["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/**")


def shoot(page: Page, out: Path, name: str, full_page: bool = True) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shoppers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="Keep the built marketplace in this folder and reuse it on the next run.",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        ctx, demo = load_or_build(home, args.shoppers, args.months)
        with ctx.engine.connect() as conn:
            late = conn.execute(
                select(credit_accounts.c.customer_ref)
                .where(credit_accounts.c.days_past_due > 0)
                .order_by(credit_accounts.c.days_past_due)
                .limit(1)
            ).scalar()
            declined = conn.execute(
                select(risk_decisions.c.id)
                .where(risk_decisions.c.outcome == "decline")
                .order_by(risk_decisions.c.score.desc())
                .limit(1)
            ).scalar()
        customer = late or demo["shoppers"][0]["customer_id"]
        server, base = serve(ctx)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                page.set_default_timeout(60_000)
                sign_in(page, base, demo, "admin")
                page.goto(f"{base}/console/dashboard")
                page.locator("#chart-rolls .main-svg").first.wait_for()
                shoot(page, args.out, "console-dashboard")
                page.goto(f"{base}/console/shoppers/{customer}")
                shoot(page, args.out, "console-shopper", full_page=False)
                page.goto(f"{base}/console/batch")
                shoot(page, args.out, "console-batch", full_page=False)
                page.goto(f"{base}/console/webhooks")
                shoot(page, args.out, "console-webhooks", full_page=False)
                sign_in(page, base, demo, "risk_analyst")
                page.goto(f"{base}/console/models")
                page.locator("#chart-psi .main-svg").first.wait_for()
                shoot(page, args.out, "console-models")
                if declined is not None:
                    page.goto(f"{base}/console/decisions/{declined}")
                    shoot(page, args.out, "console-decision", full_page=False)
                page.context.clear_cookies()
                page.goto(f"{base}/shop?sku=phone-5g")
                page.get_by_role("button", name="Pay later with fenqi").click()
                page.get_by_test_id("plans").wait_for()
                shoot(page, args.out, "shop-checkout")
                page.goto(f"{base}/wallet")
                page.get_by_role("button", name="Open wallet").click()
                page.get_by_test_id("available").first.wait_for()
                shoot(page, args.out, "wallet", full_page=False)
                browser.close()
        finally:
            server.should_exit = True
            ctx.engine.dispose()


if __name__ == "__main__":
    main()
