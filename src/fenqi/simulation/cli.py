"""`fenqi simulate` and `fenqi whatif`: the simulated marketplace from the command line."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer

from fenqi.cli_support import clean_errors, parse_date, print_json, table_console

app = typer.Typer(no_args_is_help=True)

DEFAULT_DATABASE = "sqlite:///.fenqi/simulation.sqlite"
START = "2026-01-01"


@contextmanager
def _bar(label: str) -> Iterator[Any]:
    """Days done, time taken and an estimate of the time left, on standard error (so that
    `--json` output on standard output stays clean): a bar on a terminal, plain lines in a
    log."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not sys.stderr.isatty():  # a log (nohup, a service): a plain line now and then
        yield _plain_progress(
            label, time.monotonic, lambda line: print(line, file=sys.stderr, flush=True)
        )
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(label, total=None)

        def tick(day: int, days: int) -> None:
            bar.update(task, completed=day, total=days)

        yield tick


PLAIN_PROGRESS_SECONDS = 60.0


def _plain_progress(
    label: str, now: Callable[[], float], say: Callable[[str], None]
) -> Callable[[int, int], None]:
    """Progress for a log: the days done, the time taken and an estimate of the time left,
    at most once a minute and on the last day (a rich bar on a file shows only its end)."""
    started = now()
    first: list[int] = []
    last = [started]

    def tick(day: int, days: int) -> None:
        if not first:
            first.append(day)  # a resumed run starts past its first day
            return
        t = now()
        if day < days and t - last[0] < PLAIN_PROGRESS_SECONDS:
            return
        last[0] = t
        spent = t - started
        done = day - first[0]
        left = spent / done * (days - day) if done else 0.0
        say(f"{label}: day {day}/{days}, {_clock(spent)} taken, about {_clock(left)} left")

    return tick


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _fresh_sqlite(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)


def _one_tokio_worker() -> None:
    """zen-engine builds a Tokio runtime for every decision it evaluates, with a worker thread
    per core that it starts and joins each time; a simulation evaluates one decision at a time
    in one thread, so one worker is all it uses (≈ 0.1 ms less a decision on a quiet machine,
    ≈ 0.4 ms with the other core busy). Set for this command's own process only, unless the
    user set it; the API server and library callers keep Tokio's default."""
    os.environ.setdefault("TOKIO_WORKER_THREADS", "1")


@app.command()
@clean_errors
def simulate(
    shoppers: int = typer.Option(1_000, min=1, max=20_000_000, help="Shoppers in the market."),
    months: int = typer.Option(6, min=1, max=36, help="Months to simulate."),
    seed: int = typer.Option(1, help="Random seed: the same seed, the same marketplace."),
    stress: float = typer.Option(0.0, help="Economic stress: added to the default log-odds."),
    product: str = typer.Option("huabei", help="Credit product every shopper applies for."),
    database: str = typer.Option(DEFAULT_DATABASE, help="Database URL (SQLite or PostgreSQL)."),
    fresh: bool = typer.Option(True, help="Delete a SQLite file first."),
    start: str = typer.Option(START, help="First simulated day (YYYY-MM-DD)."),
    models_dir: Path = typer.Option(Path(".fenqi/models"), help="Risk model registry."),
    training_table: Path | None = typer.Option(
        None, help="Write the training table (features + bad_90dpd_12m) to this CSV."
    ),
    eod: bool = typer.Option(True, help="Run the end-of-day batch each day (when present)."),
    workers: int = typer.Option(1, min=1, max=64, help="Processes (PostgreSQL only)."),
    take_up: float = typer.Option(1.0, min=0.001, max=1.0, help="Share who apply for credit."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Go on with the simulation in --database after its last finished day, with the "
        "options it was started with (the others given here are not used).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Simulate a marketplace through fenqi's services; print figures and throughput.

    Each simulated day is committed with a checkpoint, so a stopped run (Ctrl-C, a kill, a
    reboot) goes on with `--resume` from the day after the last one it finished."""
    from fenqi.simulation.market import SimConfig, Stopped
    from fenqi.simulation.runner import resume as resume_run
    from fenqi.simulation.runner import run, simulation_context, write_training_csv

    if resume and workers > 1:
        raise ValueError("--resume: a run with --workers has no checkpoints; run it again")
    _one_tokio_worker()
    first = parse_date(start) or date(2026, 1, 1)
    config = SimConfig(
        shoppers=shoppers,
        months=months,
        seed=seed,
        stress=stress,
        product=product,
        start=first,
        eod=eod,
        take_up=take_up,
    )
    if fresh and not resume:
        _fresh_sqlite(database)
    from fenqi.settings import get_settings

    ctx = simulation_context(
        database, models_dir=models_dir, keys_file=get_settings().keys_file, start=first
    )
    parallel = workers > 1 and not resume
    try:
        # a long run's progress shows, with --json too (it goes to stderr)
        with _bar("simulating") as tick, _stoppable(parallel) as stop:
            if resume:
                result = resume_run(ctx, tick, stop)
            elif parallel:
                from fenqi.simulation.parallel import run_parallel

                result = run_parallel(ctx, config, workers, tick)
            else:
                result = run(ctx, config, tick, stop)
    except (KeyboardInterrupt, Stopped):
        _stopped(ctx, database, models_dir, parallel)
        raise typer.Exit(130) from None
    finally:
        ctx.engine.dispose()
    data = result.to_dict()
    if training_table is not None:
        data["training_table"] = str(write_training_csv(result.training, training_table))
    if as_json:
        print_json(data)
        return
    _print_result(data)


@contextmanager
def _stoppable(parallel: bool) -> Iterator[Callable[[], bool]]:
    """Ctrl-C and SIGTERM (a kill, a shutdown) ask the run to stop: it stops between two
    service calls, so the day under way is undone whole and the days done stay, with their
    checkpoint. A second Ctrl-C stops at once. A parallel run keeps no checkpoint: the first
    signal stops it at once."""
    import signal

    asked: list[int] = []

    def ask(signum: int, _frame: Any) -> None:
        if parallel or asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(asked)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(ctx: Any, database: str, models_dir: Path, parallel: bool) -> None:
    """Say where a stopped run is and how to go on with it, on standard error."""
    from fenqi.simulation import checkpoint
    from fenqi.simulation.market import SimConfig

    if parallel:
        typer.echo("stopped: a run with --workers keeps no checkpoint; run it again", err=True)
        return
    try:
        with ctx.engine.connect() as conn:
            saved = checkpoint.load(conn)
    except checkpoint.NothingToResume:
        typer.echo("stopped before the first simulated day was done", err=True)
        return
    days = SimConfig.from_json(saved.config).days
    typer.echo(
        f"stopped: {saved.day + 1} of {days} simulated days are done and kept; go on with\n"
        f"  fenqi simulate --resume --database {database} --models-dir {models_dir}",
        err=True,
    )


def metric_label(key: str) -> tuple[str, str]:
    """What a metric is called in a table, and its unit: the value is shown in yuan (¥) or as a
    percentage, so the key's `_fen` / `_bp` suffix (the JSON's unit) is not its label."""
    from fenqi.simulation.whatif import COMPARED

    for known, label, unit in COMPARED:
        if known == key:
            return label, unit
    for suffix, unit in (("_fen", "fen"), ("_bp", "bp")):
        if key.endswith(suffix):
            return key.removesuffix(suffix).replace("_", " "), unit
    return key.replace("_", " "), ""


def _print_result(data: dict[str, Any]) -> None:
    from rich.table import Table

    from fenqi.simulation.whatif import format_value

    table = Table("figure", "value", title="simulated portfolio")
    for key, value in data["metrics"].items():
        label, unit = metric_label(key)
        table.add_row(label, format_value(int(value), unit))
    console = table_console()
    console.print(table)
    t = data["throughput"]
    console.print(
        f"{data['shoppers']:,} shoppers × {data['months']} months in {data['seconds']:.1f} s "
        f"({data['cpu_seconds']:.1f} s CPU): "
        f"{t['shoppers_per_s']:,} shoppers/s, {t['purchases_per_s']:,} purchases/s, "
        f"{t['service_calls_per_s']:,} service calls/s"
    )
    checks = data["checks"]
    console.print(
        f"ledger: trial balance {'zero' if checks['trial_balance_zero'] else 'NOT ZERO'}, "
        f"{checks['reconciliation_mismatches']} reconciliation mismatches"
    )
    if "training_table" in data:
        console.print(f"training table: {data['training_table']}")


def whatif(
    flow: list[Path] = typer.Option(None, help="Decision flow (JDM JSON); give two or more."),
    product: list[str] = typer.Option(None, help="Product name; give two or more (or one flow)."),
    funding: list[Path] = typer.Option(
        None,
        help="A folder of funder/program files (a funding mix); give two or more to compare "
        "(the shipped catalog with no folder: give 'shipped').",
    ),
    shoppers: int = typer.Option(1_000, min=1, max=1_000_000),
    months: int = typer.Option(6, min=1, max=36),
    seed: int = typer.Option(1),
    stress: float = typer.Option(0.0),
    models_dir: Path = typer.Option(Path(".fenqi/models"), help="Risk model registry."),
    out: Path = typer.Option(Path("whatif.html"), help="HTML file with the charts."),
    workdir: Path | None = typer.Option(None, help="Where each arm's database goes (temp)."),
    eod: bool = typer.Option(True, help="Run the end-of-day batch each day (when present)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the same population under two decision flows (or products, or funding mixes) and
    compare: approval, losses, profit after funding cost, capital used, partners' yield."""
    from fenqi.simulation.market import SimConfig
    from fenqi.simulation.whatif import Arm, comparison, run_arms, write_charts

    _one_tokio_worker()
    flows, products, mixes = list(flow or []), list(product or []), list(funding or [])
    if sum(len(x) >= 2 for x in (flows, products, mixes)) > 1 or (len(flows) >= 2 and products):
        raise typer.BadParameter("compare flows, products or funding mixes, one at a time")
    if len(mixes) >= 2:
        arms = [
            Arm(
                f"{k + 1}:{m.name}",
                flow_file=flows[0] if flows else None,
                product=products[0] if products else None,
                funding_dir=None if str(m) == "shipped" else m,
            )
            for k, m in enumerate(mixes)
        ]
        for m in mixes:
            if str(m) != "shipped" and not m.is_dir():
                raise typer.BadParameter(f"no such funding folder: {m}")
    elif len(flows) >= 2:
        arms = [Arm(f"{k + 1}:{f.stem}", flow_file=f) for k, f in enumerate(flows)]
    elif len(products) >= 2:
        only = flows[0] if flows else None
        arms = [Arm(f"{k + 1}:{p}", flow_file=only, product=p) for k, p in enumerate(products)]
    else:
        raise typer.BadParameter("give --flow, --product or --funding twice (or more) to compare")
    for f in flows:
        if not f.is_file():
            raise typer.BadParameter(f"no such flow file: {f}")
    base = SimConfig(shoppers=shoppers, months=months, seed=seed, stress=stress, eod=eod)
    with tempfile.TemporaryDirectory(prefix="fenqi-whatif-") as tmp:
        where = workdir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if as_json:
            results = run_arms(arms, base, where, models_dir)
        else:
            from rich.progress import Progress

            with Progress() as bar:
                tasks = {a.name: bar.add_task(a.name, total=base.days) for a in arms}
                results = run_arms(
                    arms,
                    base,
                    where,
                    models_dir,
                    lambda name, day, _days: bar.update(tasks[name], completed=day),
                )
    rows = comparison(results)
    html = write_charts(results, out)
    if as_json:
        print_json(
            {
                "arms": [{"name": a.name, **r.to_dict()} for a, r in results],
                "comparison": rows,
                "charts": str(html),
            }
        )
        return
    from rich.table import Table

    from fenqi.simulation.whatif import format_value

    table = Table("metric", *(a.name for a, _ in results), title="what-if")
    for row in rows:
        table.add_row(row["label"], *(format_value(row[a.name], row["unit"]) for a, _ in results))
    console = table_console()
    console.print(table)
    console.print(f"charts: {html}")


whatif = clean_errors(whatif)
