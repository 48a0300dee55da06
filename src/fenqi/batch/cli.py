"""`fenqi eod --date YYYY-MM-DD`: run end of day (catching up missed dates first)."""

from __future__ import annotations

import typer

from fenqi.cli_support import clean_errors, context, parse_date, print_json


@clean_errors
def eod(
    on: str = typer.Option(..., "--date", help="Business date YYYY-MM-DD."),
    executor: str = typer.Option("local", help="local (in process) or dask."),
    scheduler: str | None = typer.Option(
        None, help="Dask scheduler address (tcp://host:8786); default: a local cluster."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accrue, bill, age arrears, charge late fees and charge off, for a business date."""
    from fenqi.batch.eod import run_eod

    business_date = parse_date(on)
    assert business_date is not None
    with context() as ctx:
        results = run_eod(
            ctx, business_date, executor=executor, scheduler=scheduler, progress=not as_json
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
