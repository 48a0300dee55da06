"""Templates (Jinja2, autoescaped), display filters, and Plotly figures as HTML fragments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from fenqi.money import format_fen
from fenqi.privacy.staff import Permission

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _fen(value: int | None) -> str:
    return "—" if value is None else format_fen(int(value))


SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def _money(value: int | None, currency: str | None = "CNY") -> str:
    """An amount in fen with its currency's sign, as the console shows money: ¥1,234.56
    (an unknown currency is written before the amount: XYZ 1,234.56)."""
    if value is None:
        return "—"
    code = currency or "CNY"
    sign = SYMBOLS.get(code, f"{code} ")
    shown = format_fen(int(value))
    return f"-{sign}{shown[1:]}" if shown.startswith("-") else f"{sign}{shown}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _bp(value: int | None) -> str:
    return "—" if value is None else f"{value / 100:.2f}%"


TEMPLATES.env.filters["fen"] = _fen
TEMPLATES.env.filters["money"] = _money
TEMPLATES.env.filters["pct"] = _pct
TEMPLATES.env.filters["bp"] = _bp
TEMPLATES.env.globals["P"] = Permission


def figure_html(fig: go.Figure, div_id: str) -> Markup:
    """The figure as a div and a script; plotly.js itself is served once by the console."""
    html = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return Markup(html)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
