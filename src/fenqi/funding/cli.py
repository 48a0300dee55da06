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

    from fenqi.cli_support import context, live_only, parse_date
    from fenqi.funding.settlement import check_against_ledger, settle_day

    business_date = parse_date(day)
    assert business_date is not None
    catalog = _catalog()
    with context() as ctx, ctx.engine.begin() as conn:
        live_only(ctx, "fenqi funding settle")
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


@app.command("export")
@clean_errors
def export_cmd(
    partner: str = typer.Option(..., "--partner", help="The funder's id, e.g. bank_example."),
    day: str = typer.Option(..., "--date", help="The business date, e.g. 2026-11-26."),
    out_dir: Path = typer.Option(Path("funding-files"), "--out", help="Folder for the files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write the partner's loan-level file for a date, as CSV and Parquet (loan id,
    disbursement, balance, status, DPD, repayments of the day; a control total row last)."""
    from fenqi.cli_support import context, live_only, parse_date
    from fenqi.errors import FenqiError
    from fenqi.funding.files import export_files

    business_date = parse_date(day)
    assert business_date is not None
    catalog = _catalog()
    if partner not in catalog.funders:
        raise FenqiError(
            f"--partner: no such funder {partner!r}; known: {', '.join(catalog.funders)}",
            code="unknown_funder",
        )
    with context() as ctx, ctx.engine.connect() as conn:
        live_only(ctx, "fenqi funding export")
        out = export_files(conn, partner, business_date, out_dir)
    figures = {
        "partner": partner,
        "date": business_date,
        "csv": str(out.csv_path),
        "parquet": str(out.parquet_path),
        "loans": out.loans,
        **out.totals,
    }
    if as_json:
        print_json(figures)
        return
    from fenqi.money import format_fen

    typer.echo(f"{out.csv_path}\n{out.parquet_path}")
    typer.echo(
        f"{out.loans} loans; disbursed {format_fen(out.totals['disbursement_fen'])}, balance "
        f"{format_fen(out.totals['balance_fen'])}, principal repaid "
        f"{format_fen(out.totals['principal_repaid_fen'])} (reversed "
        f"{format_fen(out.totals['principal_reversed_fen'])}), income "
        f"{format_fen(out.totals['income_repaid_fen'])} (reversed "
        f"{format_fen(out.totals['income_reversed_fen'])})"
    )


@app.command("verify-file")
@clean_errors
def verify_file_cmd(
    path: Path = typer.Argument(..., help="A partner file (.csv or .parquet)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check a partner file against the ledger to the fen: exit 0 if every row and the control
    total agree; non-zero naming the first row and column that do not."""
    from fenqi.cli_support import context
    from fenqi.funding.files import verify_file

    with context() as ctx, ctx.engine.connect() as conn:
        result = verify_file(conn, path)
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"ok: {path}: {result['loans']} loans of {result['funder']} on {result['date']} "
            "agree with the ledger to the fen"
        )


@app.command("payout")
@clean_errors
def payout_cmd(
    partner: str = typer.Option(..., "--partner", help="The funder's id."),
    key: str = typer.Option(..., "--key", help="An idempotency key for this payout."),
    receive: bool = typer.Option(
        False, "--receive", help="Record the partner paying its disbursements instead."
    ),
) -> None:
    """Pay a partner all the cash due to it (Dr funder_cash_due / Cr cash), or with --receive
    record it paying its part of the disbursements (Dr cash / Cr funder_settlement)."""
    from fenqi.cli_support import context
    from fenqi.funding.payouts import pay_funder, receive_from_funder
    from fenqi.money import format_fen

    catalog = _catalog()
    with context() as ctx, ctx.engine.begin() as conn:
        if receive:
            got = receive_from_funder(conn, ctx.clock, catalog, partner, f"cli:{key}")
            typer.echo(f"received {format_fen(got['received_fen'])} from {partner}")
        else:
            paid = pay_funder(conn, ctx.clock, catalog, partner, f"cli:{key}")
            typer.echo(f"paid {format_fen(paid['paid_fen'])} to {partner}")


@app.command("statement")
@clean_errors
def statement_cmd(
    partner: str = typer.Option(..., "--partner", help="The funder's id."),
    month: str = typer.Option(..., "--month", help="The month, e.g. 2026-01."),
) -> None:
    """A partner's monthly statement (JSON): opening and closing principal and cash due, the
    month's daily settlement figures and totals, payouts and receipts."""
    from fenqi.cli_support import context
    from fenqi.funding.payouts import monthly_statement

    catalog = _catalog()
    with context() as ctx, ctx.engine.connect() as conn:
        print_json(monthly_statement(conn, catalog, partner, month))


@app.command("partner-sim")
def partner_sim_cmd(
    port: int = typer.Option(8765, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    max_amount_fen: int | None = typer.Option(None, "--max-amount-fen"),
    decline_region: list[str] = typer.Option([], "--decline-region"),
    hang: bool = typer.Option(False, "--hang", help="Never answer (shows the timeout)."),
) -> None:
    """A small partner bank's decision endpoint for the demo: POST /decisions. Point a
    funder's `[approval] mode = "http"` at http://HOST:PORT/decisions."""
    import uvicorn

    from fenqi.funding.approval import partner_simulator

    typer.echo(f"partner simulator on http://{host}:{port}/decisions", err=True)
    uvicorn.run(
        partner_simulator(max_amount_fen, tuple(decline_region), hang),
        host=host,
        port=port,
        log_level="warning",
    )
