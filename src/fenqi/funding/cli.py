"""`fenqi funding ...`: list funders and programs, check a file, show exposure against limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fenqi.cli_support import clean_errors, print_json

app = typer.Typer(no_args_is_help=True)


def _catalog(extra_files: tuple[Path, ...] = ()) -> Any:
    from fenqi.funding.loader import load_funding_catalog
    from fenqi.products.catalog_loader import load_catalog
    from fenqi.settings import get_settings

    settings = get_settings()
    products = load_catalog(settings.apr_cap_bp, settings.catalog_dir)
    return load_funding_catalog(
        products, settings.funding_platform_floor_bp, settings.funding_dir, extra_files
    )


def _limit(fen: int | None) -> str:
    from fenqi.money import format_fen

    return "-" if fen is None else format_fen(fen)


@app.command("list")
@clean_errors
def list_funding(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Funders and co-lending programs (shipped examples and FENQI_FUNDING_DIR)."""
    catalog = _catalog()
    if as_json:
        print_json(
            {
                "platform_floor_bp": catalog.platform_floor_bp,
                "funders": [f.model_dump(mode="json") for f in catalog.funders.values()],
                "programs": [p.model_dump(mode="json") for p in catalog.programs.values()],
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    funders = Table(
        "funder",
        "kind",
        "currency",
        "yield bp",
        "total limit",
        "per borrower",
        "per day",
        "example",
        title="funders",
    )
    for f in catalog.funders.values():
        funders.add_row(
            f.id,
            f.kind.value,
            f.currency,
            str(f.cost.yield_bp),
            _limit(f.limits.total_outstanding_fen),
            _limit(f.limits.per_borrower_fen),
            _limit(f.limits.new_per_day_fen),
            "yes" if f.example else "",
        )
    console.print(funders)
    programs = Table(
        "program",
        "products",
        "shares",
        "losses",
        "fallback",
        "priority",
        "example",
        title=f"programs (platform floor {catalog.platform_floor_bp / 100:g}%)",
    )
    for p in catalog.programs.values():
        programs.add_row(
            p.id,
            ",".join(p.products),
            " ".join(f"{s.funder} {s.share_bp / 100:g}%" for s in p.shares),
            p.losses.value,
            p.fallback.value,
            str(p.priority),
            "yes" if p.example else "",
        )
    console.print(programs)


@app.command("check")
@clean_errors
def check(path: Path = typer.Argument(..., help="A funder or program TOML file.")) -> None:
    """Validate a funder or program file with the catalog it joins: exit 0 if valid, non-zero
    with the file, field and rule if not."""
    from fenqi.funding.loader import parse_file
    from fenqi.funding.model import Program

    item = parse_file(path)
    _catalog((path,))
    what = "program" if isinstance(item, Program) else "funder"
    typer.echo(f"ok: {path} defines {what} {item.id!r}")


@app.command("exposure")
@clean_errors
def exposure_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each funder's principal outstanding, today's new lending and largest borrower against
    its limits."""
    from fenqi.cli_support import context
    from fenqi.funding.service import exposure

    catalog = _catalog()
    with context() as ctx, ctx.engine.connect() as conn:
        rows = exposure(conn, catalog)
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    from fenqi.money import format_fen

    table = Table(
        "funder",
        "kind",
        "outstanding",
        "limit",
        "lent on",
        "that day",
        "day limit",
        "largest borrower",
        "borrower limit",
    )
    for r in rows:
        table.add_row(
            r["funder"],
            r["kind"],
            format_fen(r["outstanding_fen"]),
            _limit(r["limit_total_fen"]),
            r["lent_on"] or "-",
            format_fen(r["lent_on_day_fen"]),
            _limit(r["limit_per_day_fen"]),
            format_fen(r["largest_borrower_fen"]),
            _limit(r["limit_per_borrower_fen"]),
        )
    Console().print(table)


@app.command("settle")
@clean_errors
def settle_cmd(
    day: str = typer.Option(..., "--date", help="The business date, e.g. 2026-11-26."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write each funder's settlement figures for a date (again if run before) and check them
    against the ledger: exit 1 if they disagree."""
    from dataclasses import asdict

    from fenqi.cli_support import context, parse_date
    from fenqi.funding.settlement import check_against_ledger, settle_day

    business_date = parse_date(day)
    assert business_date is not None
    catalog = _catalog()
    with context() as ctx, ctx.engine.begin() as conn:
        figures = settle_day(conn, ctx.clock, catalog, business_date)
        mismatches = check_against_ledger(conn, catalog, business_date)
    rows = [asdict(f) for f in figures]
    if as_json:
        print_json({"date": business_date, "funders": rows, "ledger_mismatches": mismatches})
    else:
        from rich.console import Console
        from rich.table import Table

        from fenqi.money import format_fen

        table = Table(
            "funder",
            "disbursed",
            "principal in",
            "income",
            "losses",
            "recoveries",
            "due to funder",
            title=f"settlement {business_date}",
        )
        for f in figures:
            table.add_row(
                f.funder_id,
                *(
                    format_fen(v)
                    for v in (
                        f.disbursed_fen,
                        f.principal_collected_fen,
                        f.income_collected_fen,
                        f.losses_fen,
                        f.recoveries_fen,
                        f.due_to_funder_fen,
                    )
                ),
            )
        Console().print(table)
        typer.echo("agrees with the ledger" if not mismatches else f"LEDGER DIFFERS: {mismatches}")
    if mismatches:
        raise typer.Exit(1)
