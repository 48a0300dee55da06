"""`fenqi bureau report --events --date D`: the day's event records (see bureau/events.py)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import typer

from fenqi.cli_support import context, live_only, print_json


def _day(on: str | None, events: bool, month: str | None) -> date:
    if not events or month is not None:
        raise typer.BadParameter("--date goes with --events (and --events without --month)")
    if on is None:
        raise typer.BadParameter("--events: give --date YYYY-MM-DD")
    try:
        return date.fromisoformat(on)
    except ValueError:
        raise typer.BadParameter("--date: YYYY-MM-DD") from None


def report_events(
    on: str | None, out: Path, send: bool, as_json: bool, *, events: bool, month: str | None
) -> None:
    from fenqi.bureau.events import build, mark_sent, unsent_files
    from fenqi.bureau.reporting import write_files

    day = _day(on, events, month)
    with context() as ctx:
        live_only(ctx, "fenqi bureau report --events")
        if send and ctx.bureau is None:
            raise ValueError("--send: FENQI_BUREAU_URL is not set")
        grace = {name: p.billing.grace_days for name, p in ctx.catalog.items()}
        with ctx.engine.begin() as conn:
            run = build(conn, ctx.clock, ctx.keys, day, grace_of=grace, zone=ctx.settings.timezone)
        written = {}
        if run.report is not None:
            out.mkdir(parents=True, exist_ok=True)
            for fmt, text in write_files(run.report, ctx.clock).items():
                path = out / f"fenqi-events-{fmt}-{day.isoformat()}.txt"
                path.write_text(text, encoding="utf-8" if fmt == "pboc" else "ascii")
                os.chmod(path, 0o600)  # the files hold identity numbers in clear
                written[fmt] = str(path)
        sent = {}
        if send and ctx.bureau is not None:
            for fmt, (text, accounts) in unsent_files(run, ctx.clock).items():
                result = ctx.bureau.submit(fmt, text)
                with ctx.engine.begin() as conn:
                    mark_sent(conn, day, accounts, str(result.submission_id), ctx.clock.now())
                sent[fmt] = {"submission_id": result.submission_id, "records": result.records}
    summary = {**run.summary(), "written": written, "sent": sent}
    if as_json:
        print_json(summary)
    else:
        for k, v in summary.items():
            typer.echo(f"{k:>28}: {v}")
    if run.differences:
        raise typer.Exit(1)
