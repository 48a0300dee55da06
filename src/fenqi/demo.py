"""`fenqi demo`: the marketplace demo (build once, then serve the API, console and webhook
worker), and `fenqi demo --scripted`, the scripted scenario below.

The scripted demo: two shoppers on two products buy and repay part, on an embedded SQLite file.

Shopper 1 (Huabei-style) buys a ¥6,000 phone in 12 installments; shopper 2 (Baitiao-style)
buys ¥1,200 of clothes and pays in the interest-free cycle. On the first due date shopper 1 pays
the first installment and shopper 2 pays ¥500. Every step goes through the real services and
ledger; the demo prints each schedule with its annualized rate, the accounts and the trial
balance.
"""

from __future__ import annotations

import shutil
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from fenqi.clock import FixedClock, SystemClock
from fenqi.context import build_context
from fenqi.credit import service as credit
from fenqi.credit.plans import CYCLE, offer
from fenqi.errors import FenqiError
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.money import format_fen
from fenqi.pricing.quote import Quote
from fenqi.settings import Settings, get_settings
from fenqi.simulation.demo_build import DemoSpec, build, read_demo_file, write_demo_file
from fenqi.store.migrate import upgrade

START = date(2026, 1, 2)  # the day after a statement day: the longest interest-free period


def _schedule_table(title: str, q: Quote) -> Table:
    table = Table("period", "due date", "principal", "fee", "interest", "total", title=title)
    for line in q.schedule.lines:
        table.add_row(
            str(line.period),
            line.due_date.isoformat(),
            format_fen(line.principal_fen),
            format_fen(line.fee_fen),
            format_fen(line.interest_fen),
            format_fen(line.total_fen),
        )
    s = q.schedule
    table.add_row(
        "",
        "total",
        format_fen(s.principal_fen),
        format_fen(s.fee_fen),
        format_fen(s.interest_fen),
        format_fen(s.total_fen),
    )
    table.caption = (
        f"annualized rate (IRR method): nominal {q.rate.nominal_bp / 100:.2f}% · "
        f"effective {q.rate.effective_bp / 100:.2f}%"
    )
    return table


def run_scripted(database: str, fresh: bool = True) -> None:
    console = Console(width=110)
    path = Path(database)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    clock = FixedClock.on(START)
    settings = Settings(database_url=f"sqlite:///{path}")
    ctx = build_context(settings, clock)
    upgrade(ctx.engine)
    huabei, baitiao = ctx.product("huabei"), ctx.product("baitiao")
    cap = settings.apr_cap_bp
    console.rule(f"fenqi demo · business date {clock.today()} · database {path}")

    with ctx.engine.begin() as conn:
        a = credit.open_credit_account(conn, clock, huabei, "shopper-1", 1_000_000)
        b = credit.open_credit_account(conn, clock, baitiao, "shopper-2", 500_000)
        plan_a = offer(huabei, 600_000, 12, clock.today(), cap_bp=cap)
        hold_a = credit.authorize(conn, clock, a, "shop-digital", 600_000, "demo-auth-1")
        credit.capture(
            conn,
            clock,
            huabei,
            a,
            "shop-digital",
            hold_a.hold_entry_id,
            "order-1001",
            plan_a,
            "demo-capture-1",
        )
        plan_b = offer(baitiao, 120_000, CYCLE, clock.today(), cap_bp=cap)
        hold_b = credit.authorize(conn, clock, b, "shop-fashion", 120_000, "demo-auth-2")
        credit.capture(
            conn,
            clock,
            baitiao,
            b,
            "shop-fashion",
            hold_b.hold_entry_id,
            "order-2001",
            plan_b,
            "demo-capture-2",
        )

    console.print(
        _schedule_table(
            f"shopper-1 · {huabei.display_name} · ¥6,000.00 phone in 12 installments", plan_a.quote
        )
    )
    free_days = (plan_b.quote.schedule.lines[0].due_date - START).days + 1
    console.print(
        _schedule_table(
            f"shopper-2 · {baitiao.display_name} · ¥1,200.00 in the interest-free cycle "
            f"({free_days} days, both ends counted)",
            plan_b.quote,
        )
    )

    first_due = plan_a.quote.schedule.lines[0].due_date
    clock.advance(timedelta(days=(first_due - START).days))
    with ctx.engine.begin() as conn:
        pay_a = credit.repay(
            conn, clock, huabei, a, plan_a.quote.schedule.lines[0].total_fen, "demo-repay-1"
        )
        pay_b = credit.repay(conn, clock, baitiao, b, 50_000, "demo-repay-2")
    console.rule(f"business date {clock.today()}: repayments")
    for who, pay in (("shopper-1", pay_a), ("shopper-2", pay_b)):
        parts = ", ".join(f"{k} {format_fen(v)}" for k, v in pay.by_kind_fen.items() if v)
        console.print(f"{who} paid ¥{format_fen(pay.amount_fen)} → {parts}")

    summary = Table(
        "account",
        "product",
        "limit",
        "available",
        "owed",
        "next due",
        "amount due",
        title="credit accounts",
    )
    with ctx.engine.connect() as conn:
        for acct in (a, b):
            s = credit.account_summary(conn, acct, clock.today())
            summary.add_row(
                str(acct),
                s["product"],
                format_fen(s["limit_fen"]),
                format_fen(s["available_fen"] or 0),
                format_fen(s["owed_fen"]),
                s["next_due_date"] or "-",
                format_fen(s["next_due_fen"]),
            )
        tb = trial_balance(conn)
        mismatches = reconcile(conn)
    console.print(summary)
    tb_table = Table("code", "debits posted", "credits posted", "net debit", title="trial balance")
    for row in tb.rows:
        tb_table.add_row(
            str(row["code"]),
            format_fen(int(row["debits_posted"])),
            format_fen(int(row["credits_posted"])),
            format_fen(int(row["net_debit_posted"])),
        )
    totals = tb.totals["CNY"]
    tb_table.add_row(
        "total",
        format_fen(totals["debits_posted"]),
        format_fen(totals["credits_posted"]),
        format_fen(totals["debits_posted"] - totals["credits_posted"]),
    )
    console.print(tb_table)
    console.print(
        f"trial balance {'balanced (zero)' if tb.balanced else 'NOT BALANCED'}; "
        f"reconciliation: {mismatches if mismatches else 'every balance equals its postings'}"
    )
    ctx.engine.dispose()


# ---------------------------------------------------------------- the marketplace demo


def run_marketplace_demo(
    *,
    host: str,
    port: int,
    rebuild: bool,
    spec: DemoSpec,
    serve: bool = True,
) -> dict[str, Any]:
    """Build the demo (unless built), then serve it until Ctrl-C. Returns the demo file."""
    from fenqi.cli_support import table_console

    console = table_console()  # `make demo | tee demo.log` keeps the tables whole
    settings = demo_settings()
    demo = None if rebuild else read_demo_file(settings.demo_file)
    db = Path(make_url(settings.database_url).database or "")
    if demo is None or not db.is_file():
        demo = _build(console, settings, spec)
    else:
        console.print(f"reusing the demo built through {demo['built']['through']} ({db})")
        _catch_up(console, settings)
    _print_logins(console, demo, host, port)
    if serve:
        bureau_url, stop_bureau = start_bureau(settings, host, port + 1)
        console.print(f"bureau:    {bureau_url} (credit reference service, seeded; `fenqi bureau`)")
        try:
            _serve(
                settings.model_copy(
                    update={"bureau_url": bureau_url, "bureau_token": DEMO_BUREAU_TOKEN}
                ),
                host,
                port,
            )
        finally:
            stop_bureau()
    return demo


DEMO_BUREAU_TOKEN = "demo-bureau-token"  # the demo's own local bureau, development only
DEMO_BUREAU_SUBJECTS = 1000


def start_bureau(settings: Settings, host: str, port: int) -> tuple[str, Any]:
    """The credit reference service (fenqi.bureau.server) beside the demo's API, on its own
    SQLite file beside the demo database, seeded with the synthetic population's borrowing at
    other lenders (idempotent). Returns its address and a function that stops it."""
    import threading

    import uvicorn

    from fenqi.bureau.server.app import create_bureau_app
    from fenqi.bureau.server.seed import seed_population
    from fenqi.store.engine import make_engine

    home = settings.demo_file.parent
    engine = make_engine(f"sqlite:///{home / 'demo-bureau.sqlite'}")
    clock = SystemClock(settings.timezone)
    seeded = seed_population(engine, clock, DEMO_BUREAU_SUBJECTS, 7)
    app = create_bureau_app(engine, clock, {DEMO_BUREAU_TOKEN: settings.bureau_lender_id})
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="bureau", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    Console().print(
        f"bureau seeded: {seeded.subjects} subjects, {seeded.accounts} accounts at other "
        f"lenders, {seeded.multi_lender_subjects} owing two or more (多头借贷)"
    )

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        engine.dispose()

    return f"http://{host}:{port}", stop


def demo_settings() -> Settings:
    """The demo's own database and model registry, beside the demo file."""
    base = get_settings()
    home = base.demo_file.parent
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{home / 'demo.sqlite'}",
            "models_dir": home / "demo-models",
            "cookie_secure": False,  # served on http://localhost
            # the demo's shops receive their webhooks on the demo's own server (127.0.0.1)
            "webhook_allow_private_networks": True,
            "test_database_url": None,  # its test book beside it: demo.test.sqlite
            "mode": "live",
        }
    )


def _build(console: Console, settings: Settings, spec: DemoSpec) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    for url in (settings.database_url, settings.test_book_url()):
        db = Path(make_url(url).database or "") if url else None
        for suffix in ("", "-wal", "-shm") if db else ():
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(settings.models_dir, ignore_errors=True)
    settings.demo_file.unlink(missing_ok=True)
    today = SystemClock(settings.timezone).today()  # the interface may read the clock
    clock = FixedClock.on(today - timedelta(days=round(spec.months * 30.4)), 8)
    ctx = build_context(settings, clock)
    upgrade(ctx.engine)
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("building the demo marketplace", total=None)
        demo = build(
            ctx,
            spec,
            today,
            say=lambda message: bar.console.print(f"· {message}"),
            tick=lambda day, days: bar.update(task, completed=day, total=days),
        )
    ctx.engine.dispose()
    demo["built"]["total_seconds"] = round(time.perf_counter() - started, 1)
    write_demo_file(settings.demo_file, demo)
    counts = demo["built"]["counts"]
    console.print(
        f"built in {demo['built']['total_seconds']:.0f} s: {counts['applications']:,} "
        f"applications, {counts['approved']:,} accounts, {counts['purchases']:,} purchases, "
        f"{counts['repayments']:,} repayments, {counts['eod_runs']} end-of-day runs; "
        f"model {demo['built']['model']}; ledger {demo['built']['ledger']}"
    )
    return demo


def _catch_up(console: Console, settings: Settings) -> None:
    """Run the end-of-day batch for the days since the demo was last used."""
    from fenqi.simulation.market import load_eod

    run_eod = load_eod()
    if run_eod is None:
        return
    ctx = build_context(settings)
    try:
        run_eod(ctx, ctx.clock.today() - timedelta(days=1))
    except FenqiError as exc:
        console.print(f"end-of-day catch-up skipped: {exc}")
    finally:
        ctx.engine.dispose()


def _print_logins(console: Console, demo: dict[str, Any], host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    table = Table("role", "username", "password", title="demo staff logins")
    for s in demo["staff"]:
        table.add_row(s["role"], s["username"], s["password"])
    console.print(table)
    shoppers = Table(
        "customer", "credit account", "phone (synthetic)", title="demo shoppers (shop and wallet)"
    )
    for s in demo.get("shoppers", []):
        shoppers.add_row(
            str(s["customer_id"]), str(s["credit_account_id"]), s.get("phone") or "(rebuild)"
        )
    console.print(shoppers)
    console.print("  find one in the console: Shoppers → search by phone")
    console.print(f"console:   {base}/console")
    console.print(f"demo shop: {base}/shop")
    console.print(f"wallet:    {base}/wallet")
    console.print(f"webhooks:  {base}/shop/webhooks (what the demo's shops received)")
    console.print(f"API docs:  {base}/docs")
    console.print(f"demo file: {get_settings().demo_file} (shop API key, shoppers)")
    console.print(
        'test mode: POST /v1/api-keys {"mode": "test"} with the shop\'s key gives a '
        "sk_test_ key (its own book: docs/api.md, Test mode)"
    )
    console.print(
        "command line on the demo's data (another terminal, this folder):\n"
        f"  export FENQI_DATABASE_URL={demo_settings().database_url}\n"
        "  fenqi ledger trial-balance"
    )


def _serve(settings: Settings, host: str, port: int) -> None:
    import threading

    import uvicorn

    from fenqi.api.app import create_app
    from fenqi.privacy.masking import install_log_redaction
    from fenqi.store.books import claim_book
    from fenqi.web.demo_webhooks import connect_shops, replay_unsent
    from fenqi.webhooks.endpoints import endpoint_resolver
    from fenqi.webhooks.worker import run_worker

    install_log_redaction()
    ctx = build_context(settings)
    with ctx.engine.begin() as conn:
        connected = connect_shops(conn, ctx, host, port)
        replayed = replay_unsent(conn, ctx)
    if connected:
        Console().print(f"webhooks: {connected} shops now deliver to the demo receiver")
    if replayed:
        Console().print(f"webhooks: {replayed} events that had no endpoint are sent again")
    stop = threading.Event()
    claim_book(ctx.engine, "live", ctx.clock)
    books = [ctx.engine]
    if ctx.test_mode is not None:  # the test book (test API keys), migrated beside the demo's
        upgrade(ctx.test_mode.engine)
        claim_book(ctx.test_mode.engine, "test", ctx.clock)
        books.append(ctx.test_mode.engine)
    workers = [
        threading.Thread(
            target=run_worker,
            args=(engine, ctx.clock, endpoint_resolver(ctx.keys), ctx.settings, stop),
            name="webhook-worker",
            daemon=True,
        )
        for engine in books
    ]
    for worker in workers:
        worker.start()
    try:
        uvicorn.run(create_app(ctx), host=host, port=port, log_level="warning")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=5)
        ctx.engine.dispose()
