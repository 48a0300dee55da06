"""Where partitions run: in this process with a progress bar, or on a Dask cluster.

A Dask task gets only plain values (the database URL, settings, the plan); each worker builds
its own engine and context and runs the same `run_partition` as the local executor.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fenqi.batch.partitions import RunPlan, run_partition
from fenqi.batch.steps import STEPS
from fenqi.context import Context


def run_local(ctx: Context, plan: RunPlan, progress: bool) -> None:
    total = len(plan.partitions) * len(STEPS)
    with Progress(
        TextColumn(f"end of day {plan.business_date}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
        console=Console(stderr=True),  # standard output is the run's figures
    ) as bar:
        task = bar.add_task("steps", total=total)
        for part in plan.partitions:
            run_partition(ctx, plan, part, on_step=lambda _name: bar.advance(task))


def _remote(url: str, settings: dict[str, Any], plan: RunPlan, index: int, now_iso: str) -> int:
    from datetime import datetime

    from fenqi.clock import FixedClock
    from fenqi.context import build_context
    from fenqi.settings import Settings

    ctx = build_context(Settings(**settings), FixedClock(datetime.fromisoformat(now_iso)))
    try:
        run_partition(ctx, plan, plan.partitions[index])
    finally:
        ctx.engine.dispose()
    return index


def run_dask(ctx: Context, plan: RunPlan, scheduler: str | None) -> None:
    from distributed import Client

    settings = ctx.settings.model_dump(mode="json")
    url = ctx.engine.url.render_as_string(hide_password=False)
    settings["database_url"] = url
    client = (
        Client(scheduler)
        if scheduler
        else Client(processes=False, n_workers=2, threads_per_worker=1)
    )
    try:
        futures = [
            client.submit(_remote, url, settings, plan, i, ctx.clock.now().isoformat(), pure=False)
            for i in range(len(plan.partitions))
        ]
        client.gather(futures)
    finally:
        client.close()
