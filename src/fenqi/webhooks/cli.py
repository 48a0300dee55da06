"""`fenqi webhooks ...`: run the delivery worker, list deliveries, replay an event, set an
endpoint."""

from __future__ import annotations

import typer

from fenqi.cli_support import clean_errors, context, print_json, table_console

app = typer.Typer(no_args_is_help=True)


@app.command("worker")
@clean_errors
def worker_cmd(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    poll: float = typer.Option(1.0, "--poll", min=0.05, help="Seconds between idle polls."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="Deliveries per round."),
) -> None:
    """Deliver due webhooks to shops' endpoints (until Ctrl-C, or once with --once)."""
    import logging
    import signal
    import threading

    import httpx

    from fenqi.webhooks.endpoints import endpoint_resolver
    from fenqi.webhooks.worker import deliver_due, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with context() as ctx:
        resolve_endpoint = endpoint_resolver(ctx.keys)
        if once:
            with httpx.Client(follow_redirects=False) as client:
                stats = deliver_due(
                    ctx.engine,
                    ctx.clock,
                    resolve_endpoint,
                    client,
                    limit=limit,
                    settings=ctx.settings,
                )
        else:
            stop = threading.Event()

            def on_signal(_signum: int, _frame: object) -> None:
                stop.set()

            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            stats = run_worker(
                ctx.engine, ctx.clock, resolve_endpoint, ctx.settings, stop, poll, limit=limit
            )
    typer.echo(
        f"claimed {stats.claimed}, delivered {stats.delivered}, retried {stats.retried}, "
        f"dead {stats.dead} (no endpoint {stats.no_endpoint})"
    )


@app.command("list")
@clean_errors
def list_cmd(
    status: str | None = typer.Option(
        None, "--status", help="pending | delivering | delivered | dead"
    ),
    merchant: str | None = typer.Option(None, "--merchant", help="Only this merchant id."),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    after: int = typer.Option(0, "--after", min=0, help="Cursor: the last id of the page before."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Deliveries in id order (a page; pass the last id as --after for the next)."""
    from fenqi.webhooks.outbox import DeliveryStatus, list_deliveries

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise ValueError(
            f"--status: {status!r} is not one of {', '.join(s.value for s in DeliveryStatus)}"
        )
    with context() as ctx, ctx.engine.connect() as conn:
        rows = list_deliveries(
            conn, merchant_id=merchant, status=status, limit=limit, after_id=after
        )
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    from rich.table import Table

    table = Table("id", "event", "type", "merchant", "status", "attempts", "next attempt", "error")
    for r in rows:
        table.add_row(
            str(r.id),
            r.event_id,
            r.event_type,
            r.merchant_id,
            r.status.value,
            str(r.attempts),
            r.next_attempt_at.isoformat(timespec="seconds"),
            r.last_error or (str(r.last_status_code) if r.last_status_code else ""),
        )
    table_console().print(table)


@app.command("replay")
@clean_errors
def replay_cmd(event_id: str = typer.Argument(..., help="The event id, evt_...")) -> None:
    """Queue a delivered or dead-lettered event again (a new delivery), audited as the CLI."""
    from fenqi.credit.operations import CLI, replay_webhook_event

    with context() as ctx, ctx.engine.begin() as conn:
        delivery_id = replay_webhook_event(conn, ctx.clock, CLI, event_id)
    typer.echo(f"event {event_id} queued again as delivery {delivery_id}")


@app.command("set-endpoint")
@clean_errors
def set_endpoint_cmd(
    merchant: str = typer.Argument(..., help="Merchant id."),
    url: str = typer.Argument(..., help="The shop's https URL that receives events."),
    secret_stdin: bool = typer.Option(
        False, "--secret-stdin", help="Read the signing secret from stdin instead of making one."
    ),
) -> None:
    """Set a shop's endpoint. A new signing secret is generated and printed once, unless one is
    given on stdin (never on the command line, where other users could see it)."""
    import sys

    from fenqi.webhooks.endpoints import new_secret, set_endpoint

    secret = sys.stdin.readline().strip() if secret_stdin else new_secret()
    with context() as ctx, ctx.engine.begin() as conn:
        set_endpoint(
            conn,
            ctx.clock,
            merchant,
            url,
            secret,
            ctx.keys,
            allow_private=ctx.settings.webhook_allow_private_networks,
        )
    typer.echo(f"endpoint for {merchant}: {url}")
    if not secret_stdin:
        typer.echo(f"signing secret (shown once): {secret}")


@app.command("purge")
@clean_errors
def purge_cmd(
    days: int = typer.Option(30, "--days", min=1, help="Keep events younger than this."),
    include_dead: bool = typer.Option(False, "--include-dead", help="Also delete dead letters."),
) -> None:
    """Delete old events whose deliveries are finished (delivered; dead too if asked)."""
    from datetime import timedelta

    from fenqi.webhooks.outbox import purge_finished

    # A bound on the loop: at most this many batches of 1,000 per run.
    batches_max = 1000
    total = 0
    with context() as ctx:
        cutoff = ctx.clock.now() - timedelta(days=days)
        for _ in range(batches_max):
            with ctx.engine.begin() as conn:
                purged = purge_finished(conn, created_before=cutoff, include_dead=include_dead)
            total += purged
            if purged == 0:
                break
    typer.echo(f"purged {total} events created before {cutoff.isoformat(timespec='seconds')}")
