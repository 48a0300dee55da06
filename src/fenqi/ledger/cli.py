"""`fenqi ledger ...`: trial balance, reconciliation, an account's balance and history."""

from __future__ import annotations

from dataclasses import asdict

import typer

from fenqi.cli_support import clean_errors, context, print_json, table_console

app = typer.Typer(no_args_is_help=True)


@app.command("trial-balance")
@clean_errors
def trial_balance_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Sum of debits and credits per account code; exits 1 if the books do not balance."""
    from fenqi.ledger.service import trial_balance

    with context() as ctx, ctx.engine.connect() as conn:
        tb = trial_balance(conn)
    if as_json:
        print_json({"balanced": tb.balanced, "totals": tb.totals, "accounts": tb.rows})
    else:
        from rich.table import Table

        table = Table(
            "currency",
            "code",
            "accounts",
            "debits posted",
            "credits posted",
            "debits pending",
            "credits pending",
        )
        for r in tb.rows:
            table.add_row(
                *(
                    str(r[k])
                    for k in (
                        "currency",
                        "code",
                        "accounts",
                        "debits_posted",
                        "credits_posted",
                        "debits_pending",
                        "credits_pending",
                    )
                )
            )
        table_console().print(table)
        typer.echo("balanced" if tb.balanced else "NOT BALANCED")
    if not tb.balanced:
        raise typer.Exit(1)


@app.command("reconcile")
@clean_errors
def reconcile_cmd(
    as_json: bool = typer.Option(False, "--json"),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also check the sub-ledgers against the ledger: plans and their lines against "
        "each account's receivables, orders against plans, shops' payables against orders "
        "and payouts, credit balances.",
    ),
) -> None:
    """Recompute every balance from its postings; exits 1 and lists accounts that differ.
    With --deep, also the sub-ledgers (exits 1 and prints each difference)."""
    from fenqi.ledger.service import reconcile

    with context() as ctx, ctx.engine.connect() as conn:
        bad = reconcile(conn)
        report = None
        if deep:
            from fenqi.credit.reconciliation import deep_reconcile

            report = deep_reconcile(conn)
    failed = bool(bad) or (report is not None and not report.ok)
    if as_json:
        out: dict[str, object] = {"ok": not failed, "mismatches": bad}
        if report is not None:
            out["deep"] = report.to_dict()
        print_json(out)
    else:
        typer.echo(
            "reconciled: every balance equals the sum of its postings"
            if not bad
            else f"{len(bad)} accounts differ: {bad}"
        )
        if report is not None:
            checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
            if report.ok:
                typer.echo(f"sub-ledgers agree with the ledger ({checked})")
            else:
                typer.echo(f"{len(report.differences)} sub-ledger differences ({checked}):")
                for d in report.differences:
                    typer.echo(f"  {d}")
    if failed:
        raise typer.Exit(1)


@app.command("account")
@clean_errors
def account_cmd(account_id: int = typer.Argument(...), limit: int = typer.Option(50)) -> None:
    """One account's balances and its postings, as JSON."""
    from fenqi.ledger.service import get_balance, history

    with context() as ctx, ctx.engine.connect() as conn:
        bal = get_balance(conn, account_id)
        lines = history(conn, account_id, limit=limit)
    print_json({"balance": {**asdict(bal), "available_fen": bal.available_fen}, "history": lines})
