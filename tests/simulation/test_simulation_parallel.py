"""Parallel workers on PostgreSQL make the same marketplace as one process, on one ledger."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fenqi.context import Context
from fenqi.simulation.market import SimConfig
from fenqi.simulation.parallel import run_parallel
from fenqi.simulation.runner import run
from fenqi.store.engine import create_all, make_engine


def test_two_workers_same_figures_as_one_process(
    make_ctx: Callable[[Engine], Context], db_engine: Engine, tmp_path: Path
) -> None:
    config = SimConfig(shoppers=150, months=1, seed=8)
    ctx = make_ctx(db_engine)
    if db_engine.dialect.name == "sqlite":
        with pytest.raises(ValueError, match="PostgreSQL"):
            run_parallel(ctx, config, 2)
        return
    parallel = run_parallel(ctx, config, 2)
    single_engine = make_engine(f"sqlite:///{tmp_path / 'one.sqlite'}")
    create_all(single_engine)
    try:
        single = run(make_ctx(single_engine), config)
    finally:
        single_engine.dispose()
    assert parallel.checks == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    assert vars(parallel.counts) == vars(single.counts)
    assert parallel.metrics == single.metrics
    assert parallel.training.drop(columns="credit_account_id").sort_values(
        ["age", "spend_12m_fen"]
    ).reset_index(drop=True).equals(
        single.training.drop(columns="credit_account_id")
        .sort_values(["age", "spend_12m_fen"])
        .reset_index(drop=True)
    )
