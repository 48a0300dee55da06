"""The `fenqi` command line (Typer). Each area adds its own sub-command group.

Heavy imports (models, database drivers) happen inside commands, so `fenqi --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fenqi.batch.cli import eod as eod_command
from fenqi.bureau.cli import app as bureau_app
from fenqi.cli_support import clean_errors, context, parse_date, print_json, table_console
from fenqi.compliance.cli import app as compliance_app
from fenqi.funding.cli import app as funding_app
from fenqi.ledger.cli import app as ledger_app
from fenqi.privacy.cli import app as staff_app
from fenqi.products.cli import app as products_app
from fenqi.risk.cli import app as risk_app
from fenqi.simulation.cli import simulate, whatif
from fenqi.webhooks.cli import app as webhooks_app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from fenqi.context import Context

app = typer.Typer(
    help="fenqi: e-commerce consumer finance (buy now, pay later).\n\n"
    "Commands work on the database at FENQI_DATABASE_URL (default sqlite:///.fenqi/fenqi.sqlite; "
    "`fenqi demo` keeps its own in .fenqi/demo.sqlite), name it on standard error, and never "
    "create it: `fenqi db upgrade` does.",
    no_args_is_help=True,
)
app.add_typer(products_app, name="products", help="Credit products: list, check a file.")
app.add_typer(ledger_app, name="ledger", help="Ledger: trial balance, reconciliation, accounts.")
app.add_typer(funding_app, name="funding", help="Funders, co-lending programs, settlement.")
app.add_typer(risk_app, name="risk", help="Risk engine: train, evaluate, report, decide.")
app.add_typer(staff_app, name="staff", help="Staff users and roles.")
app.add_typer(bureau_app, name="bureau", help="Credit bureau: serve, seed, report, reconcile.")
app.add_typer(webhooks_app, name="webhooks", help="Webhook deliveries: worker, list, replay.")
app.add_typer(
    compliance_app,
    name="compliance",
    help="Rate regimes, regulatory reports, bureau disputes, data-subject requests.",
)
app.command("eod")(eod_command)
app.command("simulate", help="Simulate a marketplace through fenqi's services.")(simulate)
app.command("whatif", help="Compare decision flows or products on one simulated population.")(
    whatif
)
db_app = typer.Typer(no_args_is_help=True)
app.add_typer(db_app, name="db", help="Database schema (Alembic migrations).")


@db_app.command("upgrade")
@clean_errors
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Create or migrate the database at FENQI_DATABASE_URL (SQLite file by default)."""
    from fenqi.store.books import claim_book
    from fenqi.store.migrate import current, upgrade

    with context(create=True) as ctx:
        upgrade(ctx.engine, revision)
        if revision == "head":
            claim_book(ctx.engine, ctx.settings.mode, ctx.clock)  # live, or test (FENQI_MODE)
            if ctx.settings.mode == "live":
                _prepare_test_book(ctx, upgrade_db=True)
        typer.echo(
            f"database at revision {current(ctx.engine)}: "
            f"{ctx.engine.url.render_as_string(hide_password=True)}"
        )


@app.command()
@clean_errors
def quote(
    product: str = typer.Option(..., help="Product name (see `fenqi products list`)."),
    amount: int = typer.Option(..., help="Purchase amount in fen (integer)."),
    terms: int = typer.Option(..., help="Number of periods (0 = pay in the free cycle)."),
    on: str | None = typer.Option(None, "--date", help="Purchase date YYYY-MM-DD (default today)."),
    tier: str | None = typer.Option(None, help="Customer tier (fee discount)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A plan's schedule, totals and annualized rate (IRR) in basis points."""
    from fenqi.clock import SystemClock
    from fenqi.credit.plans import offer
    from fenqi.products.catalog_loader import load_product
    from fenqi.settings import get_settings

    settings = get_settings()
    spec = load_product(product, settings.apr_cap_bp, settings.catalog_dir)
    purchase_date = parse_date(on) or SystemClock(settings.timezone).today()
    plan = offer(spec, amount, terms, purchase_date, cap_bp=settings.apr_cap_bp, tier=tier)
    data = {**plan.quote.to_dict(), "plan": plan.kind}
    if as_json:
        print_json(data)
        return
    from rich.table import Table

    from fenqi.money import format_fen

    table = Table(
        "period",
        "due date",
        "principal",
        "fee",
        "interest",
        "total",
        title=f"{spec.display_name}: {format_fen(amount)} {spec.currency}, "
        f"{data['plan']} {plan.quote.terms}",
    )
    for line in data["schedule"]:
        table.add_row(
            str(line["period"]),
            line["due_date"],
            *(
                format_fen(line[k])
                for k in ("principal_fen", "fee_fen", "interest_fen", "total_fen")
            ),
        )
    t = data["totals"]
    table.add_row(
        "",
        "total",
        *(format_fen(t[k]) for k in ("principal_fen", "fee_fen", "interest_fen", "total_fen")),
    )
    table_console().print(table)
    r = data["annualized_rate"]
    typer.echo(
        f"annualized rate (IRR): nominal {r['nominal_bp'] / 100:.2f}%, "
        f"effective {r['effective_bp'] / 100:.2f}%"
    )


@app.command("rotate-keys")
@clean_errors
def rotate_keys() -> None:
    """Re-encrypt personal data and webhook signing secrets under the active key (after adding
    a key to FENQI_DATA_KEYS and making it FENQI_DATA_KEY_ACTIVE); older keys stay listed until
    this has run. Webhook secrets stored in plain text by older versions are sealed too. The
    test book, when there is one, is done too: it is sealed with the same keys."""
    with context() as ctx:
        books = [("", ctx)]
        test = _existing_test_book(ctx)
        if test is not None:  # the test book's personal data is sealed with the same keys
            books.append(("test book: ", test))
        for label, book in books:
            count, secrets, responses = _rotate_book(book)
            typer.echo(
                f"{label}re-encrypted {count} customers and {secrets} webhook secrets "
                f"under key {ctx.keys.active_key_id}"
            )
            typer.echo(f"{label}re-sealed {responses} stored idempotent responses")
        if test is not None:
            test.engine.dispose()


def _rotate_book(ctx: Context) -> tuple[int, int, int]:
    """Re-encrypt one book's customers, seal its webhook secrets, re-seal its stored responses."""
    from fenqi.privacy.crypto import reencrypt_rows
    from fenqi.privacy.stored_responses import purge_expired, reseal
    from fenqi.store.schema.parties import customers
    from fenqi.webhooks.endpoints import seal_secrets

    with ctx.engine.connect() as conn:
        count = reencrypt_rows(
            conn,
            ctx.keys,
            customers,
            "id",
            "key_id",
            {
                "name_enc": "customers.name",
                "id_number_enc": "customers.id_number",
                "phone_enc": "customers.phone",
            },
        )
    with ctx.engine.begin() as conn:
        secrets = seal_secrets(conn, ctx.keys)
    with ctx.engine.begin() as conn:  # stored idempotent responses: expired go, sealed re-seal
        purge_expired(conn, ctx.clock.now(), ctx.settings.idempotency_window_hours)
        responses = reseal(conn, ctx.keys)
    return count, secrets, responses


def _existing_test_book(ctx: Context) -> Context | None:
    """The test book's context when this is the live book and the test book exists, migrated
    (never created here)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    url = ctx.settings.test_book_url() if ctx.livemode else None
    if url is None:
        return None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).is_file():
        return None
    test = ctx.test_mode
    if test is None or "customers" not in inspect(test.engine).get_table_names():
        return None
    return test


@app.command("purge-idempotency-keys")
@clean_errors
def purge_idempotency_keys() -> None:
    """Delete stored idempotent responses older than FENQI_IDEMPOTENCY_WINDOW_HOURS (24 h by
    default); a key used again after that runs as a new request."""
    from fenqi.privacy.stored_responses import purge_expired

    with context() as ctx, ctx.engine.begin() as conn:
        gone = purge_expired(conn, ctx.clock.now(), ctx.settings.idempotency_window_hours)
    typer.echo(
        f"deleted {gone} stored responses older than {ctx.settings.idempotency_window_hours} h"
    )


@clean_errors
def _prepare_database(upgrade_db: bool, workers: int) -> None:
    """Say which database; migrate it, or check that it exists and is migrated; refuse more
    workers than its connections allow."""
    from fenqi.store.migrate import upgrade

    with context(create=upgrade_db) as ctx:
        if upgrade_db:
            upgrade(ctx.engine)
        _prepare_test_book(ctx, upgrade_db)
        _check_connection_budget(ctx.engine, workers)
        # the starter risk model is trained here, once, if the registry has none: never in a
        # request, not by each worker at once (docs/performance.md), and never by the credit
        # service itself (fenqi.simulation.starter; issue 22)
        from fenqi.simulation.starter import ensure_starter_model

        if ensure_starter_model(ctx.settings.models_dir, ctx.clock):
            typer.echo(f"risk: trained the starter model in {ctx.settings.models_dir}", err=True)
        ctx.underwriter  # noqa: B018


def _prepare_test_book(ctx: Context, upgrade_db: bool) -> None:
    """Claim the live book; migrate the test book (test-mode keys' own database) and claim it,
    or say that test mode is off (docs/api.md, "Test mode")."""
    from fenqi.cli_support import check_database
    from fenqi.store.books import claim_book
    from fenqi.store.migrate import upgrade

    if ctx.settings.mode != "live":
        typer.echo("error: fenqi serve runs on the live book; unset FENQI_MODE", err=True)
        raise typer.Exit(2)
    claim_book(ctx.engine, "live", ctx.clock)
    test = ctx.test_mode
    if test is None:
        typer.echo("test mode: off (set FENQI_TEST_DATABASE_URL to enable it)", err=True)
        return
    url = test.engine.url.render_as_string(hide_password=True)
    if not upgrade_db and _existing_test_book(ctx) is None:
        # --no-upgrade-db and no test book yet: serve without test mode rather than fail
        import os

        from fenqi.settings import get_settings

        os.environ["FENQI_TEST_MODE"] = "false"  # read by the workers' settings
        get_settings.cache_clear()
        typer.echo(f"test mode: off (no test book at {url}: `fenqi db upgrade` makes it)", err=True)
        return
    try:
        if upgrade_db:
            upgrade(test.engine)
        else:
            check_database(test.engine, url)
        claim_book(test.engine, "test", ctx.clock)
    finally:
        test.engine.dispose()
    typer.echo(f"test mode: test book at {url}", err=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    upgrade_db: bool = typer.Option(True, help="Apply migrations before starting."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    access_log: bool = typer.Option(True, help="Log every request."),
) -> None:
    """Run the REST API (uvicorn) on FENQI_DATABASE_URL (SQLite file by default), creating or
    migrating the database first unless --no-upgrade-db (then it must exist, migrated)."""
    import uvicorn

    _prepare_database(upgrade_db, workers)
    uvicorn.run(
        "fenqi.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )


def _check_connection_budget(engine: Engine, workers: int) -> None:
    """Refuse to start more workers than the database has connections for (each worker may
    open FENQI_DB_POOL_SIZE + FENQI_DB_MAX_OVERFLOW): past max_connections, a burst of
    requests fails with "too many clients" instead of queueing (docs/api.md)."""
    from fenqi.store.engine import connection_budget

    budget = connection_budget(engine, workers)
    if budget is None:
        return
    needed, allowed = budget
    if needed > allowed:
        typer.echo(
            f"error: {workers} worker(s) × {needed // workers} connections (FENQI_DB_POOL_SIZE + "
            f"FENQI_DB_MAX_OVERFLOW) = {needed}, more than the {allowed} the database allows "
            "(max_connections less superuser_reserved_connections). Lower the pool settings or "
            "the workers, or raise max_connections; leave room for `fenqi eod` and the webhook "
            "worker.",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(
        f"database connections: up to {needed} of {allowed} for {workers} worker(s)", err=True
    )


@app.command()
def demo(
    scripted: bool = typer.Option(False, "--scripted", help="Run the scripted scenario instead."),
    database: str = typer.Option(
        ".fenqi/scripted-demo.sqlite", help="SQLite file for the scripted scenario."
    ),
    fresh: bool = typer.Option(True, help="Scripted scenario: start from an empty file."),
    host: str = typer.Option("127.0.0.1", help="Interface to serve the demo on."),
    port: int = typer.Option(8000, help="Port."),
    rebuild: bool = typer.Option(False, help="Build the marketplace again from scratch."),
    shoppers: int = typer.Option(20_000, min=100, max=1_000_000, help="Marketplace shoppers."),
    months: int = typer.Option(6, min=1, max=24, help="Months of history to simulate."),
    take_up: float = typer.Option(0.15, min=0.01, max=1.0, help="Share who apply for credit."),
    serve_it: bool = typer.Option(True, "--serve/--no-serve", help="Serve after building."),
) -> None:
    """Build a simulated marketplace (once) and serve the API, console and demo shop."""
    if scripted:
        from fenqi.demo import run_scripted

        run_scripted(database, fresh=fresh)
        return
    from fenqi.demo import run_marketplace_demo
    from fenqi.simulation.demo_build import DemoSpec

    run_marketplace_demo(
        host=host,
        port=port,
        rebuild=rebuild,
        spec=DemoSpec(shoppers=shoppers, months=months, take_up=take_up),
        serve=serve_it,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
