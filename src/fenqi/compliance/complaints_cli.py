"""`fenqi compliance complaint-open | complaint-close | complaints`: the complaints register
from the command line (the operator acts as `system:cli`; refusals are audited too)."""

from __future__ import annotations

from datetime import date
from typing import Any

import typer

from fenqi.cli_support import clean_errors, context, print_json

ACTOR = ("system", "cli")


def _done(result: dict[str, Any] | Exception) -> None:
    if isinstance(result, Exception):
        raise result  # clean_errors prints it; its audit entry is committed already
    print_json(result)


@clean_errors
def complaint_open(
    customer: int = typer.Option(..., help="Customer id."),
    channel: str = typer.Option(..., help="phone | letter | email | app | in_person | ..."),
    category: str = typer.Option(..., help="billing | repayment | collection | ..."),
    text: str = typer.Option(..., help="What the customer complains about."),
    due_on: str | None = typer.Option(None, help="Answer date YYYY-MM-DD (default +15 days)."),
) -> None:
    """Record a complaint a customer made."""
    from fenqi.compliance import complaints as cp

    due = date.fromisoformat(due_on) if due_on else None
    with context() as ctx:
        with ctx.engine.begin() as conn:
            result = cp.attempt(
                conn,
                ctx.clock,
                ACTOR,
                ("customer", customer),
                lambda: cp.open_complaint(
                    conn,
                    ctx.clock,
                    ACTOR,
                    customer_id=customer,
                    channel=channel,
                    category=category,
                    text=text,
                    due_on=due,
                ),
            )
        _done(result)


@clean_errors
def complaint_close(
    complaint_id: int = typer.Argument(...),
    outcome: str = typer.Option(..., help="upheld | partly_upheld | rejected | withdrawn"),
    note: str = typer.Option(..., help="The answer given to the customer."),
) -> None:
    """Close a complaint with its outcome."""
    from fenqi.compliance import complaints as cp

    with context() as ctx:
        with ctx.engine.begin() as conn:
            result = cp.attempt(
                conn,
                ctx.clock,
                ACTOR,
                ("complaint", complaint_id),
                lambda: cp.close_complaint(conn, ctx.clock, ACTOR, complaint_id, outcome, note),
            )
        _done(result)


@clean_errors
def complaints(
    status: str | None = typer.Option(None, help="open | closed"),
    overdue: bool = typer.Option(False, help="Only open complaints past their answer date."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The complaints register, newest first."""
    from fenqi.compliance import complaints as cp

    with context() as ctx, ctx.engine.connect() as conn:
        rows = cp.list_complaints(
            conn, status=status, overdue_on=ctx.clock.today() if overdue else None
        )
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(
            f"#{r['id']} customer={r['customer_id']} {r['channel']}/{r['category']} "
            f"{r['status']} due={r['due_on']} outcome={r['outcome']}"
        )
    typer.echo(f"{len(rows)} complaint(s)")
