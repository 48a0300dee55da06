"""The simulated marketplace: reproducible by seed, through the services (the ledger balances
and reconciles on both databases), stress raises delinquency, a sane training table, what-if."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from fenqi.context import Context
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.credit.underwriting import MODEL_FEATURES
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.service import trial_balance
from fenqi.simulation import distributions as dist
from fenqi.simulation.market import SimConfig
from fenqi.simulation.runner import (
    TARGET,
    SimResult,
    funding_cost_fen,
    net_lent_by_day,
    run,
    write_training_csv,
)
from fenqi.simulation.whatif import Arm, comparison, run_arms, write_charts
from fenqi.store.engine import create_all, make_engine

MakeCtx = Callable[[Engine], Context]


def _run(make_ctx: MakeCtx, url: str, config: SimConfig) -> SimResult:
    engine = make_engine(url)
    create_all(engine)
    try:
        return run(make_ctx(engine), config)
    finally:
        engine.dispose()


def test_same_seed_same_figures(make_ctx: MakeCtx, tmp_path: Path) -> None:
    config = SimConfig(shoppers=120, months=2, seed=5)
    r1 = _run(make_ctx, f"sqlite:///{tmp_path / 'a.sqlite'}", config)
    r2 = _run(make_ctx, f"sqlite:///{tmp_path / 'b.sqlite'}", config)
    assert r1.metrics == r2.metrics
    assert vars(r1.counts) == vars(r2.counts)
    assert r1.training.equals(r2.training)
    other = _run(make_ctx, f"sqlite:///{tmp_path / 'c.sqlite'}", SimConfig(120, 1, seed=6))
    assert other.metrics != r1.metrics


def test_drives_services_and_ledger_balances(make_ctx: MakeCtx, db_engine: Engine) -> None:
    result = run(make_ctx(db_engine), SimConfig(shoppers=150, months=3, seed=3))
    c = result.counts
    assert c.applications == 150 and 0 < c.approved < 150
    assert c.purchases > 50 and c.repayments > 0 and c.refunds > 0
    assert result.checks == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    with db_engine.connect() as conn:  # and the sub-ledgers agree with the ledger
        deep = deep_reconcile(conn)
    assert deep.ok, [str(d) for d in deep.differences[:10]]
    m = result.metrics
    assert m["applications"] == c.applications and m["approved"] == c.approved
    assert m["lent_fen"] > 0 and m["outstanding_principal_fen"] > 0
    assert m["merchant_discount_fen"] > 0
    # funding is charged on what the ledger says was outstanding, day by day
    with db_engine.connect() as conn:
        by_day = net_lent_by_day(conn)
        receivable = sum(
            int(row["net_debit_posted"])
            for row in trial_balance(conn).rows
            if row["code"] == AccountCode.PRINCIPAL_RECEIVABLE.value
        )
    assert sum(by_day.values()) == receivable > 0
    days = 3 * 31
    assert 0 < m["funding_cost_fen"] <= m["lent_fen"] * dist.FUNDING_COST_BP * days // 3_650_000


def test_funding_cost_counts_each_day_outstanding() -> None:
    """100,000 fen lent on 1 March, 50,000 repaid on 31 March, the run ends on 30 April:
    100,000 x 60 + (-50,000) x 30 = 4,500,000 fen-days; at 4.5% a year that is
    4,500,000 x 450 / 3,650,000 = 554.79, so 554 fen. Lending after the end costs nothing."""
    start, end = date(2026, 3, 1), date(2026, 4, 30)
    lent = {start: 100_000, date(2026, 3, 31): -50_000, date(2026, 5, 2): 9_999_999}
    assert funding_cost_fen(lent, end, 450) == 554
    assert funding_cost_fen({}, end, 450) == 0
    assert funding_cost_fen({end: 100_000}, end, 450) == 0


def test_stress_raises_delinquency_and_training_table(make_ctx: MakeCtx, tmp_path: Path) -> None:
    calm = dist.shoppers(5_000, seed=1, stress=0.0)
    hard = dist.shoppers(5_000, seed=1, stress=2.0)
    assert np.mean(hard.p_default) > 2 * np.mean(calm.p_default)
    assert np.array_equal(calm.z, hard.z)  # the same people, in a worse economy
    base: dict[str, Any] = {
        "shoppers": 130,
        "months": 6,
        "seed": 11,
        "eod": False,
        "apply_window_share": 0.3,
    }
    normal = _run(make_ctx, f"sqlite:///{tmp_path / 'n.sqlite'}", SimConfig(**base))
    stressed = _run(make_ctx, f"sqlite:///{tmp_path / 's.sqlite'}", SimConfig(**base, stress=2.5))
    key = "delinquency_90_rate_bp"
    assert stressed.metrics[key] > normal.metrics[key]
    table = stressed.training
    assert list(table.columns[: len(MODEL_FEATURES) + 1]) == [*MODEL_FEATURES, TARGET]
    assert len(table) == stressed.counts.approved
    assert 0 < table[TARGET].mean() < 0.6
    csv = write_training_csv(table, tmp_path / "train.csv")
    assert csv.read_text().splitlines()[0] == ",".join([*MODEL_FEATURES, TARGET])


def test_whatif_stricter_flow_approves_fewer(
    tmp_path: Path, models_dir: Path, strict_flow: Path
) -> None:
    import fenqi.risk

    default = Path(fenqi.risk.__file__).parent / "flows" / "default.json"
    base = SimConfig(shoppers=150, months=1, seed=2, eod=False)
    results = run_arms(
        [Arm("default", flow_file=default), Arm("strict", flow_file=strict_flow)],
        base,
        tmp_path,
        models_dir,
    )
    rows = {row["metric"]: row for row in comparison(results)}
    assert rows["approval_rate_bp"]["strict"] < rows["approval_rate_bp"]["default"]
    assert results[0][1].metrics["applications"] == results[1][1].metrics["applications"]
    html = write_charts(results, tmp_path / "whatif.html").read_text()
    assert "Plotly" in html and 'src="https://cdn.plot.ly' not in html and "strict" in html


def test_whatif_compares_funding_mixes(tmp_path: Path, models_dir: Path) -> None:
    """The shipped co-lending program against own capital alone (the example folder): the same
    shoppers; partners fund part of the book in one arm and none in the other, so the platform
    uses more of its own capital there; each arm's funders hold its whole book."""
    from fenqi.funding.loader import CATALOG_DIR

    own_only = CATALOG_DIR.parent / "examples" / "own_only"
    base = SimConfig(shoppers=150, months=1, seed=2, eod=False)
    results = run_arms(
        [Arm("colending"), Arm("own", funding_dir=own_only)], base, tmp_path, models_dir
    )
    rows = {row["metric"]: row for row in comparison(results)}
    assert rows["lent_fen"]["colending"] == rows["lent_fen"]["own"] > 0
    assert rows["partner_share_bp"]["own"] == 0 < rows["partner_share_bp"]["colending"]
    assert rows["capital_used_fen"]["own"] > rows["capital_used_fen"]["colending"] > 0
    assert rows["capital_used_fen"]["own"] == rows["outstanding_principal_fen"]["own"]
    assert rows["partner_income_fen"]["own"] == 0
    for k in (1, 2):
        engine = make_engine(f"sqlite:///{tmp_path / f'arm-{k}.sqlite'}")
        with engine.connect() as conn:
            report = deep_reconcile(conn)
        engine.dispose()
        assert report.ok, report.differences[:3]
        assert report.checked["unfunded_plans"] == 0 < report.checked["funded_plans"]
