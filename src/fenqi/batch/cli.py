"""`fenqi eod --date YYYY-MM-DD`: run end of day (catching up missed dates first)."""

from __future__ import annotations

import typer

from fenqi.cli_support import clean_errors, context, parse_date, print_json


@clean_errors
def eod(
    on: str = typer.Option(..., "--date", help="Business date YYYY-MM-DD (not after today)."),
    executor: str = typer.Option("local", help="local (in process) or dask."),
    scheduler: str | None = typer.Option(
        None, help="Dask scheduler address (tcp://host:8786); default: a local cluster."
    ),
    allow_future: bool = typer.Option(
        False,
        "--allow-future",
        help="Run a date after today's business date (a test database only: it bills, ages "
        "and charges accounts before their day).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accrue, bill, age arrears, charge late fees and charge off, for a business date.

    Missed dates are run first, in order. A date already done is reported and not run again;
    one run at a time per database (a second is refused while the first runs)."""
    from fenqi.batch.eod import check_business_date, last_done, run_eod

    business_date = parse_date(on)
    assert business_date is not None
    with context() as ctx:
        check_business_date(ctx, business_date, allow_future)
        results = run_eod(
            ctx, business_date, executor=executor, scheduler=scheduler, progress=not as_json
        )
        if not results:
            through = last_done(ctx)
            typer.echo(
                f"nothing to run: end of day is done through {through}, and {business_date} "
                "is not after it",
                err=True,
            )
    if as_json:
        print_json(results)
        return
    for day, figures in results.items():
        typer.echo(
            f"{day}: "
            + ", ".join(
                f"{step} {f['rows']} rows / {f['amount_fen']} fen"
                if isinstance(f, dict)
                else str(f)
                for step, f in figures.items()
            )
        )
