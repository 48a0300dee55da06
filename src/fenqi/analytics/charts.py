"""Plotly figures for the console and reports (amounts shown in yuan, computed from fen)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from fenqi.analytics.portfolio import PortfolioSummary, RollRates, Vintage

LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 320,
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "legend": {"orientation": "h", "y": -0.2},
}


def _yuan(fen: int) -> float:
    return fen / 100


def balances_figure(series: list[dict[str, Any]]) -> go.Figure:
    x = [s["date"].isoformat() for s in series]
    fig = go.Figure()
    for key, name in (
        ("outstanding_fen", "Outstanding"),
        ("m1_plus_fen", "M1+"),
        ("m3_plus_fen", "M3+"),
    ):
        fig.add_trace(
            go.Scatter(x=x, y=[_yuan(s[key]) for s in series], name=name, mode="lines+markers")
        )
    fig.update_layout(title="Principal outstanding at month end (yuan)", **LAYOUT)
    fig.update_xaxes(type="category")  # month-end dates as written, not a month-start axis
    return fig


def buckets_figure(summary: PortfolioSummary) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[b.bucket for b in summary.buckets],
            y=[_yuan(b.principal_fen) for b in summary.buckets],
            text=[f"{b.accounts} acc." for b in summary.buckets],
            name="principal",
        )
    )
    fig.update_layout(title=f"Arrears buckets on {summary.end} (yuan)", **LAYOUT)
    return fig


def vintage_figure(vintages: list[Vintage]) -> go.Figure:
    fig = go.Figure()
    for v in vintages:
        fig.add_trace(
            go.Scatter(
                x=v.months_on_book,
                y=[s * 100 for s in v.share_ever_30_plus],
                name=f"{v.cohort} ({v.accounts})",
                mode="lines+markers",
            )
        )
    fig.update_layout(
        title="Vintages: accounts ever 30+ days past due (%)",
        xaxis_title="months on book",
        **LAYOUT,
    )
    return fig


def roll_rate_figure(rates: RollRates) -> go.Figure:
    z = [[(s * 100 if s is not None else None) for s in row] for row in rates.shares]
    text = [[("" if s is None else f"{s:.1f}%") for s in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=rates.buckets,
            y=rates.buckets,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig.update_layout(
        title="Roll rates month end to month end (% of row)",
        xaxis_title="to",
        yaxis_title="from",
        yaxis_autorange="reversed",
        **LAYOUT,
    )
    return fig


def score_histogram_figure(scores: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    by_model: dict[str, list[int]] = {}
    for s in scores:
        by_model.setdefault(f"{s['model_id']} ({s['variant']})", []).append(s["score"])
    for name, values in sorted(by_model.items()):
        fig.add_trace(go.Histogram(x=values, name=name, opacity=0.7, nbinsx=40))
    fig.update_layout(title="Score distribution of decisions", barmode="overlay", **LAYOUT)
    return fig


def psi_figure(points: list[dict[str, Any]], min_decisions: int = 100) -> go.Figure:
    """PSI by month per model, each point labelled with its number of decisions; a month with
    too few decisions (psi None) is a gap, never joined across."""
    fig = go.Figure()
    models = sorted({p["model_id"] for p in points})
    for model_id in models:
        mine = [p for p in points if p["model_id"] == model_id]
        fig.add_trace(
            go.Scatter(
                x=[p["month"] for p in mine],
                y=[p["psi"] for p in mine],
                name=model_id,
                mode="lines+markers+text",
                text=[f"n={p['n']:,}" for p in mine],
                textposition="top center",
                customdata=[p["n"] for p in mine],
                hovertemplate="%{x}: PSI %{y:.3f} from %{customdata:,} decisions<extra></extra>",
                connectgaps=False,
            )
        )
    for level, label in ((0.1, "watch"), (0.25, "review")):
        fig.add_hline(y=level, line_dash="dot", annotation_text=label)
    if points and all(p["psi"] is None for p in points):
        fig.add_annotation(
            text=f"no month has {min_decisions:,} decisions yet: too few to measure PSI",
            xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
        )  # fmt: skip
    fig.update_xaxes(type="category")  # every month on the axis, the empty ones too
    fig.update_layout(title="PSI of decision scores vs training, by month", **LAYOUT)
    return fig
