"""`fenqi compliance ...`: rate regimes, regulatory reports, credit-report disputes and
data-subject requests from the command line (the operator acts as `system:cli`, audited)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from fenqi.cli_support import clean_errors, context, print_json

app = typer.Typer(no_args_is_help=True)
CLI = ("system", "cli", "cli")


def _show(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo("  ".join(f"{c}={r.get(c)}" for c in columns))
    typer.echo(f"{len(rows)} row(s)")


@app.command()
@clean_errors
def regimes(
    on: str | None = typer.Option(None, "--date", help="Date (default today)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The rate regimes, which are in use (FENQI_RATE_REGIMES) and their caps on a date."""
    from fenqi.clock import SystemClock
    from fenqi.compliance.regimes import all_regimes, selected
    from fenqi.settings import get_settings

    day = date.fromisoformat(on) if on else SystemClock(get_settings().timezone).today()
    in_use = {r.name for r in selected()}
    setting = get_settings().apr_cap_bp
    rows = [
        {
            "name": r.name,
            "in_use": r.name in in_use,
            "in_force": r.in_force(day),
            "currencies": ",".join(r.currencies),
            "cap_bp": r.cap_on(day, setting) if r.in_force(day) else None,
            "method": r.method,
            "from": r.effective_from.isoformat(),
            "to": r.effective_to.isoformat() if r.effective_to else None,
            "source": r.source,
        }
        for r in all_regimes().values()
    ]
    _show(rows, as_json, ("name", "in_use", "in_force", "currencies", "cap_bp", "method", "from"))


@app.command()
@clean_errors
def report(
    name: str = typer.Argument(..., help="overdue | rates | disputes | bureau | exposure"),
    month: str = typer.Option(..., help="Month YYYY-MM (as of its last day)."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the rows as CSV here."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A regulatory report for a month, from the ledger (same month, same figures)."""
    from fenqi.compliance.reports import build

    with context() as ctx, ctx.engine.connect() as conn:
        grace = {n: p.billing.grace_days for n, p in ctx.catalog.items()}
        rep = build(
            conn,
            name,
            month,
            grace_of=grace,
            cap_fen=ctx.settings.borrower_exposure_cap_fen,
            zone=ctx.settings.timezone,
        )
    if csv_out is not None:
        csv_out.write_text(rep.csv(), encoding="utf-8")
    if as_json:
        print_json(rep.to_dict())
        return
    for row in rep.rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))
    for k, v in rep.totals.items():
        typer.echo(f"{k:>32}: {v}")


@app.command()
@clean_errors
def disputes(
    status: str | None = typer.Option(None, help="open | corrected | confirmed"),
    overdue: bool = typer.Option(False, help="Only open disputes past their answer date."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Credit-report disputes (异议) and their answer dates."""
    from fenqi.bureau.disputes import list_disputes

    with context() as ctx, ctx.engine.connect() as conn:
        rows = list_disputes(conn, status=status, overdue_on=ctx.clock.today() if overdue else None)
    _show(rows, as_json, ("id", "credit_account_id", "record_as_of", "item", "status", "due_on"))


@app.command("dispute-open")
@clean_errors
def dispute_open(
    account: int = typer.Option(..., help="Credit account id."),
    item: str = typer.Option(..., help="balance | status | past_due | days_past_due | ..."),
    claim: str = typer.Option(..., help="What the shopper says is wrong."),
    as_of: str | None = typer.Option(None, help="The reported record's date (default latest)."),
) -> None:
    """Open a dispute for a shopper who raised it by phone or letter."""
    from fenqi.bureau.disputes import Actor, open_dispute

    with context() as ctx, ctx.engine.begin() as conn:
        d = open_dispute(
            conn,
            ctx.clock,
            Actor(*CLI),
            account_id=account,
            item=item,
            claim=claim,
            record_as_of=date.fromisoformat(as_of) if as_of else None,
            answer_days=ctx.settings.bureau_dispute_days,
        )
    print_json(d)


@app.command("dispute-resolve")
@clean_errors
def dispute_resolve(
    dispute_id: int = typer.Argument(...),
    outcome: str = typer.Option(..., help="corrected | confirmed"),
    note: str = typer.Option(..., help="The reason (the shopper is told)."),
    status: str | None = typer.Option(None, help="Corrected status (with --outcome corrected)."),
    dpd: int | None = typer.Option(None, help="Corrected days past due."),
    past_due_fen: int | None = typer.Option(None, help="Corrected amount past due."),
) -> None:
    """Close a dispute; `corrected` sends the correction record to the bureau when one is
    configured (FENQI_BUREAU_URL)."""
    from fenqi.bureau.disputes import Actor, resolve_dispute

    fix = {
        k: v
        for k, v in (("status", status), ("dpd", dpd), ("past_due_fen", past_due_fen))
        if v is not None
    }
    with context() as ctx, ctx.engine.begin() as conn:
        grace = {n: p.billing.grace_days for n, p in ctx.catalog.items()}
        d = resolve_dispute(
            conn,
            ctx.clock,
            ctx.keys,
            Actor(*CLI),
            dispute_id,
            outcome,
            note,
            grace_of=grace,
            client=ctx.bureau,
            fix=fix,
        )
    print_json(d)


@app.command()
@clean_errors
def requests(
    status: str | None = typer.Option(None, help="open | completed | scheduled | refused"),
    overdue: bool = typer.Option(False, help="Only open requests past their answer date."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Data-subject requests (PIPL) and their answer dates."""
    from fenqi.privacy.rights import list_requests

    with context() as ctx, ctx.engine.connect() as conn:
        rows = list_requests(conn, status=status, overdue_on=ctx.clock.today() if overdue else None)
    _show(rows, as_json, ("id", "customer_id", "kind", "status", "due_on", "erase_on"))


@app.command()
@clean_errors
def export(
    customer: int = typer.Option(..., help="Customer id."),
    html: Path | None = typer.Option(None, help="Also write a readable page here (mode 0600)."),
) -> None:
    """Answer an access request: everything held about the customer, decrypted, as JSON."""
    import os

    from fenqi.privacy.rights import render_html, request_access

    with context() as ctx, ctx.engine.begin() as conn:
        _, data = request_access(
            conn, ctx.clock, ctx.keys, CLI, customer, due_days=ctx.settings.privacy_request_days
        )
    if html is not None:
        html.write_text(render_html(data), encoding="utf-8")
        os.chmod(html, 0o600)
    print_json(data)


@app.command()
@clean_errors
def correct(
    customer: int = typer.Option(...),
    field: str = typer.Option(..., help="phone | income_band | name"),
    value: str = typer.Option(...),
) -> None:
    """Correct one field of a customer's data (audited; the value is not logged)."""
    from fenqi.privacy.rights import correct as do

    with context() as ctx, ctx.engine.begin() as conn:
        req = do(
            conn,
            ctx.clock,
            ctx.keys,
            CLI,
            customer,
            field,
            value,
            due_days=ctx.settings.privacy_request_days,
        )
    print_json(req)


@app.command()
@clean_errors
def delete(customer: int = typer.Option(...)) -> None:
    """A deletion request: refused while an account is open or owes; else scheduled."""
    from fenqi.bureau.reporting import ledger_owed_as_of
    from fenqi.privacy.rights import Refused, request_deletion

    refused: Refused | None = None
    with context() as ctx, ctx.engine.begin() as conn:
        owed, _ = ledger_owed_as_of(conn, ctx.clock.today())
        try:
            req = request_deletion(
                conn,
                ctx.clock,
                ctx.keys,
                CLI,
                customer,
                due_days=ctx.settings.privacy_request_days,
                owed_fen=owed,
                retention_years=ctx.settings.record_retention_years,
            )
        except Refused as exc:  # the refusal was recorded and audited: commit it, then say no
            refused = exc
    if refused is not None:
        raise refused
    print_json(req)


@app.command()
@clean_errors
def withdraw(
    customer: int = typer.Option(...),
    kind: str = typer.Option(..., help="bureau_inquiry | bureau_monitoring | marketing | ..."),
) -> None:
    """Withdraw a consent on the customer's behalf (letter, phone)."""
    from fenqi.privacy.rights import withdraw as do

    with context() as ctx, ctx.engine.begin() as conn:
        req = do(conn, ctx.clock, CLI, customer, kind, due_days=ctx.settings.privacy_request_days)
    print_json(req)


@app.command()
@clean_errors
def retention() -> None:
    """The retention job: anonymize customers whose kept records are past their date, drop
    stored bureau reports past theirs."""
    from fenqi.privacy.rights import run_retention

    with context() as ctx, ctx.engine.begin() as conn:
        print_json(run_retention(conn, ctx.clock, ctx.keys))


@app.command("breach-report")
@clean_errors
def breach_report(
    key_id: str | None = typer.Option(None, help="A data key's id."),
    table: str | None = typer.Option(None, help="A table's name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The subjects (masked) whose data a given key sealed or a given table held."""
    from fenqi.privacy.rights import breach_report as report_

    with context() as ctx, ctx.engine.connect() as conn:
        rows = report_(conn, ctx.keys, key_id=key_id, table=table)
    _show(rows, as_json, ("customer_id", "name", "phone", "id_number"))


from fenqi.compliance import complaints_cli  # noqa: E402  (the complaints register)

app.command("complaint-open")(complaints_cli.complaint_open)
app.command("complaint-close")(complaints_cli.complaint_close)
app.command("complaints")(complaints_cli.complaints)
