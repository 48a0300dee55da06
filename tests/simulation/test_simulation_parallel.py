"""Parallel workers on PostgreSQL make the same marketplace as one process, on one ledger."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from fenqi.context import Context
from fenqi.simulation.market import SimConfig
from fenqi.simulation.parallel import run_parallel
from fenqi.simulation.runner import SimResult


def test_two_workers_same_figures_as_one_process(
    make_ctx: Callable[[Engine], Context],
    db_engine: Engine,
    run_on_sqlite: Callable[[SimConfig, str], SimResult],
) -> None:
    config = SimConfig(shoppers=150, months=1, seed=8)
    ctx = make_ctx(db_engine)
    if db_engine.dialect.name == "sqlite":
        with pytest.raises(ValueError, match="PostgreSQL"):
            run_parallel(ctx, config, 2)
        return
    parallel = run_parallel(ctx, config, 2)
    single = run_on_sqlite(config, "one.sqlite")
    assert parallel.checks == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    assert vars(parallel.counts) == vars(single.counts)
    assert parallel.metrics == single.metrics
    assert (
        parallel.training.drop(columns="credit_account_id")
        .sort_values(["age", "spend_12m_fen"])
        .reset_index(drop=True)
        .equals(
            single.training.drop(columns="credit_account_id")
            .sort_values(["age", "spend_12m_fen"])
            .reset_index(drop=True)
        )
    )
