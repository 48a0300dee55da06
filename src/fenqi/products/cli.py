"""`fenqi products ...`: list the catalog, check a product file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fenqi.cli_support import clean_errors, print_json, table_console

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@clean_errors
def list_products(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The products in the catalog (shipped templates and FENQI_CATALOG_DIR)."""
    from fenqi.clock import SystemClock
    from fenqi.products.catalog_loader import load_catalog
    from fenqi.settings import get_settings

    settings = get_settings()
    today = SystemClock(settings.timezone).today()
    catalog = load_catalog(settings.apr_cap_bp, settings.catalog_dir, on=today)
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "display_name": p.display_name,
            "kind": p.kind.value,
            "currency": p.currency,
            "limit_min_fen": p.limits.min_fen,
            "limit_max_fen": p.limits.max_fen,
            "method": p.installments.method.value,
            "terms": [
                {
                    "count": t.count,
                    "total_fee_bp": t.total_fee_bp,
                    "annual_rate_bp": t.annual_rate_bp,
                }
                for t in p.installments.terms
            ],
            "max_interest_free_days": p.billing.max_interest_free_days,
            "tiers": [t.name for t in p.tiers],
        }
        for p in catalog.values()
    ]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "kind", "currency", "terms", "fee / rate (bp)", "free days")
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["currency"],
            "/".join(str(t["count"]) for t in r["terms"]),
            "/".join(str(t["total_fee_bp"] or t["annual_rate_bp"]) for t in r["terms"]),
            str(r["max_interest_free_days"]),
        )
    table_console().print(table)


@app.command("check")
@clean_errors
def check(path: Path = typer.Argument(..., help="A product TOML file.")) -> None:
    """Validate a product file: exit 0 if valid, non-zero with the file, field and rule if not."""
    from fenqi.clock import SystemClock
    from fenqi.products.catalog_loader import load_product_file
    from fenqi.settings import get_settings

    settings = get_settings()
    today = SystemClock(settings.timezone).today()  # held to the rate regime in force today
    product = load_product_file(path, settings.apr_cap_bp, on=today)
    typer.echo(
        f"ok: {path} defines product {product.name!r} "
        f"({len(product.installments.terms)} plans within the rate cap)"
    )
