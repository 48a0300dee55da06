"""Portfolio analytics: balances, delinquency, bad debt, vintages, roll rates, decision
monitoring, and the Plotly figures that show them. Functions take a Connection and dates;
none reads the clock."""

from fenqi.analytics.portfolio import (
    PortfolioSummary,
    RollRates,
    Vintage,
    balance_series,
    load_book,
    portfolio_summary,
    roll_rates,
    vintage_curves,
)

__all__ = [
    "PortfolioSummary",
    "RollRates",
    "Vintage",
    "balance_series",
    "load_book",
    "portfolio_summary",
    "roll_rates",
    "vintage_curves",
]
