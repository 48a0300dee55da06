"""`fenqi bureau ...`: run the bureau service, seed it, report a month, reconcile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from fenqi.cli_support import clean_errors, context, live_only, print_json

app = typer.Typer(no_args_is_help=True)

DEFAULT_BUREAU_DB = "sqlite:///.fenqi/bureau.sqlite"
DEFAULT_TOKENS = "fenqi:dev-bureau-token"


def parse_tokens(text: str) -> dict[str, str]:
    """'lender:token,lender:token' → {token: lender}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        lender, sep, token = part.partition(":")
        if not sep or not lender or len(token) < 8:
            raise ValueError(
                "--tokens: each entry is lender:token, the token at least 8 characters"
            )
        out[token] = lender
    return out


def _bureau_engine(url: str) -> Any:
    from sqlalchemy.engine import make_url

    from fenqi.store.engine import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


DB_OPTION = typer.Option(
    None,
    "--database-url",
    help=f"The bureau's own database (FENQI_BUREAU_DATABASE_URL; default {DEFAULT_BUREAU_DB}; "
    "a PostgreSQL URL with options=-csearch_path%3D<schema> keeps it in its own schema).",
)


def _db(url: str | None) -> str:
    return url or os.environ.get("FENQI_BUREAU_DATABASE_URL") or DEFAULT_BUREAU_DB


@app.command()
@clean_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8700, help="Port."),
    database_url: str | None = DB_OPTION,
    tokens: str | None = typer.Option(
        None, help="lender:token,... (FENQI_BUREAU_TOKENS; default a development token)."
    ),
) -> None:
    """Run the credit reference service (a test double of a bureau), on its own database."""
    import uvicorn

    from fenqi.bureau.server.app import create_bureau_app
    from fenqi.clock import SystemClock
    from fenqi.settings import get_settings

    url = _db(database_url)
    token_map = parse_tokens(tokens or os.environ.get("FENQI_BUREAU_TOKENS") or DEFAULT_TOKENS)
    typer.secho(f"bureau database: {url}", err=True, fg=typer.colors.BRIGHT_BLACK)
    app_ = create_bureau_app(_bureau_engine(url), SystemClock(get_settings().timezone), token_map)
    uvicorn.run(app_, host=host, port=port, log_level="info")


@app.command()
@clean_errors
def seed(
    n: int = typer.Option(1000, "--n", min=1, help="Synthetic subjects."),
    seed_: int = typer.Option(7, "--seed", help="Population seed (as `fenqi simulate`)."),
    database_url: str | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Seed the bureau's database with the synthetic population's borrowing elsewhere."""
    from fenqi.bureau.server.seed import seed_population
    from fenqi.clock import SystemClock
    from fenqi.settings import get_settings

    url = _db(database_url)
    summary = seed_population(_bureau_engine(url), SystemClock(get_settings().timezone), n, seed_)
    out = {
        "database": url,
        "subjects": summary.subjects,
        "accounts": summary.accounts,
        "multi_lender_subjects": summary.multi_lender_subjects,
        "delinquent_subjects": summary.delinquent_subjects,
        "inquiries": summary.inquiries,
        "example_subject": summary.subject_ids[0],
    }
    if as_json:
        print_json(out)
        return
    for k, v in out.items():
        typer.echo(f"{k:>22}: {v}")


@app.command()
@clean_errors
def report(
    month: str | None = typer.Option(
        None, help="Reporting month YYYY-MM (records as of its last day)."
    ),
    out: Path = typer.Option(Path(".fenqi/bureau-files"), help="Folder for the files."),
    send: bool = typer.Option(False, help="Send the files to the bureau (FENQI_BUREAU_URL)."),
    as_json: bool = typer.Option(False, "--json"),
    events: bool = typer.Option(
        False, "--events", help="The day's event records (opened, closed, charged off, paid off)."
    ),
    on: str | None = typer.Option(None, "--date", help="With --events: the day YYYY-MM-DD."),
) -> None:
    """Build the month's account records from the ledger and arrears, write one validated file
    per format (PBOC-style for CNY, Metro 2 for USD), optionally send them. With --events
    --date D: the records of the accounts with an event that day (sent once)."""
    from fenqi.bureau.records import parse_month
    from fenqi.bureau.reporting import build_records, write_files

    if events or on:
        from fenqi.bureau.events_cli import report_events

        return report_events(on, out, send, as_json, events=events, month=month)
    if month is None:
        raise typer.BadParameter("--month: YYYY-MM (or --events --date YYYY-MM-DD)")
    as_of = parse_month(month)
    with context() as ctx:
        live_only(ctx, "fenqi bureau report")
        grace = {name: p.billing.grace_days for name, p in ctx.catalog.items()}
        with ctx.engine.begin() as conn:
            run = build_records(
                conn, ctx.clock, ctx.keys, as_of, grace_of=grace, zone=ctx.settings.timezone
            )
            files = write_files(run, ctx.clock)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for fmt, text in files.items():
            path = out / f"fenqi-{fmt}-{month}.txt"
            path.write_text(text, encoding="utf-8" if fmt == "pboc" else "ascii")
            os.chmod(path, 0o600)  # the files hold identity numbers in clear
            written[fmt] = str(path)
        sent = {}
        if send:
            if ctx.bureau is None:
                raise ValueError("--send: FENQI_BUREAU_URL is not set")
            for fmt, text in files.items():
                result = ctx.bureau.submit(fmt, text)
                sent[fmt] = {"submission_id": result.submission_id, "records": result.records}
    summary = {**run.summary(), "written": written, "sent": sent}
    if as_json:
        print_json(summary)
        return
    for k, v in summary.items():
        typer.echo(f"{k:>24}: {v}")


@app.command()
@clean_errors
def reconcile(
    month: str = typer.Option(..., help="Reporting month YYYY-MM."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare the balances reported for the month with the ledger's at its last day; exits
    1 when they differ."""
    from fenqi.bureau.records import parse_month
    from fenqi.bureau.reporting import reconcile as recon

    as_of = parse_month(month)
    with context() as ctx, ctx.engine.connect() as conn:
        diffs = recon(conn, as_of)
    if as_json:
        print_json(
            {
                "as_of": as_of.isoformat(),
                "differences": [
                    {
                        "credit_account_id": d.credit_account_id,
                        "reported_fen": d.reported_fen,
                        "ledger_fen": d.ledger_fen,
                        "what": d.what,
                    }
                    for d in diffs
                ],
            }
        )
    else:
        typer.echo(f"as of {as_of}: {len(diffs)} difference(s)")
        for d in diffs:
            typer.echo(
                f"  account {d.credit_account_id}: reported {d.reported_fen}, "
                f"ledger {d.ledger_fen} ({d.what})"
            )
    if diffs:
        raise typer.Exit(1)


from fenqi.bureau.monitor_cli import monitor  # noqa: E402

app.command()(monitor)
