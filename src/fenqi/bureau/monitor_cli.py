"""`fenqi bureau monitor`: the post-loan monitoring run (registered on `fenqi bureau`)."""

from __future__ import annotations

from datetime import date

import typer

from fenqi.cli_support import clean_errors, context, live_only, print_json


@clean_errors
def monitor(
    on: str | None = typer.Option(
        None, "--date", help="Run date YYYY-MM-DD (default today in the business zone)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-inquire at the bureau the open accounts due for post-loan monitoring (every
    FENQI_BUREAU_MONITORING_INTERVAL_DAYS per account, at most FENQI_BUREAU_MONITORING_DAILY_CAP
    a date, only under a bureau_monitoring consent in force). Idempotent per account and date: a
    rerun inquires again only what the bureau did not answer. Exits 1 when some failed."""
    from fenqi.bureau.monitoring import run

    try:
        run_date = date.fromisoformat(on) if on else None
    except ValueError:
        raise typer.BadParameter("--date: YYYY-MM-DD") from None
    with context() as ctx:
        live_only(ctx, "fenqi bureau monitor")
        if ctx.bureau is None:
            raise ValueError("fenqi bureau monitor: FENQI_BUREAU_URL is not set")
        s = ctx.settings
        result = run(
            ctx.engine,
            ctx.clock,
            ctx.keys,
            ctx.bureau,
            run_date or ctx.clock.today(),
            interval_days=s.bureau_monitoring_interval_days,
            daily_cap=s.bureau_monitoring_daily_cap,
            retention_days=s.bureau_report_retention_days,
            zone=s.timezone,
        )
    summary = result.summary()
    if as_json:
        print_json(summary)
    else:
        for k, v in summary.items():
            typer.echo(f"{k:>12}: {v}")
    if summary["unavailable"] or summary["error"]:
        raise typer.Exit(1)
