"""What-if: the same simulated population under two (or more) decision flows, products or
funding mixes (co-lending programs: `Arm.funding_dir`).

Each arm runs on its own fresh database (each is a whole platform with its own ledger), with
the same seed, so the shoppers, their demand and their hidden risk are identical; only the
decisions and their consequences differ. The comparison is a table and Plotly charts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fenqi.funding import wiring
from fenqi.funding.loader import load_funding_catalog
from fenqi.funding.model import FundingCatalog
from fenqi.simulation.market import SimConfig
from fenqi.simulation.runner import SimResult, run, simulation_context

ARMS_MAX = 6
# metric, label, unit ("bp" rates, "fen" money, "" counts)
COMPARED: tuple[tuple[str, str, str], ...] = (
    ("approval_rate_bp", "approval rate", "bp"),
    ("lent_fen", "lent (net of refunds)", "fen"),
    ("outstanding_principal_fen", "outstanding principal", "fen"),
    ("fee_income_fen", "fee, interest and penalty income (cash)", "fen"),
    ("merchant_discount_fen", "merchant discount income", "fen"),
    ("delinquency_90_rate_bp", "ever 90+ days past due (share of borrowers)", "bp"),
    ("bad_debt_rate_bp", "bad-debt rate (90+ principal / lent)", "bp"),
    ("funding_cost_fen", "funding cost (own capital's cost + partners' yield)", "fen"),
    ("profit_fen", "profit (after funding cost and the platform's share of bad debt)", "fen"),
    ("capital_used_fen", "own capital used (principal outstanding at the end)", "fen"),
    ("partner_share_bp", "partners' share of lending", "bp"),
    ("partner_income_fen", "partners' income", "fen"),
    ("partner_yield_bp", "partners' yield a year", "bp"),
)


@dataclass(frozen=True)
class Arm:
    name: str
    flow_file: Path | None = None
    product: str | None = None
    # a folder of funder and program files (`funders/`, `programs/`) overriding the shipped
    # ones by id, as FENQI_FUNDING_DIR does: a funding mix to compare (docs/funding.md)
    funding_dir: Path | None = None


def run_arms(
    arms: Sequence[Arm],
    base: SimConfig,
    workdir: Path,
    models_dir: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[tuple[Arm, SimResult]]:
    if not 2 <= len(arms) <= ARMS_MAX:
        raise ValueError(f"what-if needs 2..{ARMS_MAX} arms")
    check_flows(arms)
    if any(a.funding_dir is not None for a in arms):
        from fenqi.products.catalog_loader import load_catalog
        from fenqi.settings import get_settings

        cfg = get_settings()
        check_funding(
            arms, load_catalog(cfg.apr_cap_bp, cfg.catalog_dir), cfg.funding_platform_floor_bp
        )
    out = []
    for k, arm in enumerate(arms):
        db = workdir / f"arm-{k + 1}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        ctx = simulation_context(
            f"sqlite:///{db}",
            models_dir=models_dir,
            keys_file=workdir / "keys.json",
            start=base.start,
            flow_file=arm.flow_file,
        )
        config = SimConfig(**{**vars(base), "product": arm.product or base.product})

        def tick(day: int, days: int, name: str = arm.name) -> None:
            if progress:
                progress(name, day, days)

        try:
            with wiring.using(_funding_of(ctx, arm)):
                out.append((arm, run(ctx, config, tick)))
        finally:
            ctx.engine.dispose()
    return out


def _funding_of(ctx: Any, arm: Arm) -> FundingCatalog | None:
    """The arm's funding catalog: the shipped funders and programs, its folder over them."""
    if not ctx.settings.funding_enabled:
        return None
    return load_funding_catalog(
        ctx.catalog, ctx.settings.funding_platform_floor_bp, arm.funding_dir
    )


def check_funding(arms: Sequence[Arm], catalog: Any, floor_bp: int) -> None:
    """Load every arm's funding folder before any arm runs (a program under the floor, shares
    not adding up ... refused with the file, field and rule)."""
    for arm in arms:
        if arm.funding_dir is not None:
            load_funding_catalog(catalog, floor_bp, arm.funding_dir)


def check_flows(arms: Sequence[Arm]) -> None:
    """Load every arm's flow as the risk engine does (`fenqi.risk.flow.load_flow`: JSON, graph,
    expressions, outputs on probe applications) before any arm runs: a broken flow would
    otherwise decide nothing, every application would be refused with `risk.bad_flow`, and the
    comparison would show zeros."""
    from fenqi.risk.flow import load_flow

    for arm in arms:
        if arm.flow_file is not None:
            load_flow(arm.flow_file)


def comparison(results: Sequence[tuple[Arm, SimResult]]) -> list[dict[str, Any]]:
    """One row per metric: its value in each arm."""
    return [
        {
            "metric": key,
            "label": label,
            "unit": unit,
            **{arm.name: r.metrics[key] for arm, r in results},
        }
        for key, label, unit in COMPARED
    ]


def format_value(value: int, unit: str) -> str:
    if unit == "bp":
        return f"{value / 100:.2f}%"
    if unit == "fen":
        return f"¥{value / 100:,.0f}"
    return f"{value:,}"


def write_charts(results: Sequence[tuple[Arm, SimResult]], path: Path) -> Path:
    """Rates and money side by side, one bar per arm, in a self-contained HTML file."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rates = [m for m in COMPARED if m[2] == "bp"]
    money = [m for m in COMPARED if m[2] == "fen"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("rates (%)", "money (¥)"))
    for arm, r in results:
        fig.add_trace(
            go.Bar(
                name=arm.name,
                x=[label for _, label, _ in rates],
                y=[r.metrics[key] / 100 for key, _, _ in rates],
                legendgroup=arm.name,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                name=arm.name,
                x=[label for _, label, _ in money],
                y=[r.metrics[key] / 100 for key, _, _ in money],
                legendgroup=arm.name,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    first = results[0][1].config
    fig.update_layout(
        barmode="group",
        title=f"what-if: {first.shoppers:,} shoppers, {first.months} months, seed {first.seed}, "
        f"stress {first.stress}",
        height=600,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
