"""Rate regimes: which annualized-rate cap a product is held to, by currency, kind and date.

The regimes are data (`regimes.toml`, beside this module), each with effective dates, the
currencies and product kinds it covers, its cap (a figure, the setting `FENQI_APR_CAP_BP`, or
4 × the one-year LPR in force on the date, `lpr.toml`) and the rate it is measured on:

- `irr`: the nominal IRR-annualized rate fenqi discloses (PBOC Announcement [2021] No. 3);
- `reg_z`: the APR by Regulation Z's actuarial method (12 CFR 1026, Appendix J), for USD.

`FENQI_RATE_REGIMES` names the regimes in use (default `cn_window_24,us_reg_z_36`). On a date,
of the regimes in use that cover the product's currency and kind and are in force, the lowest
cap applies; when none covers it (e.g. AUD), the setting `FENQI_APR_CAP_BP` is fenqi's own cap.
Quotes use the purchase date, product loading the loading date. Pure: no storage.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from fenqi.errors import FenqiError
from fenqi.pricing.annualized import AnnualizedRate
from fenqi.pricing.schedule import Schedule

HERE = Path(__file__).parent
DAYS_PER_MONTH_FRACTION = 30  # Appendix J: a fraction of a month counts 30 days per month


class RegimeError(FenqiError):
    code = "rate_regime_invalid"
    http_status = 422


@dataclass(frozen=True, slots=True)
class Regime:
    name: str
    description: str
    currencies: tuple[str, ...]
    kinds: tuple[str, ...]
    effective_from: date
    effective_to: date | None
    cap: str  # fixed | setting | 4xLPR
    cap_bp: int | None
    method: str  # irr | reg_z
    source: str

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    def covers(self, currency: str, kind: str, on: date) -> bool:
        return currency in self.currencies and kind in self.kinds and self.in_force(on)

    def cap_on(self, on: date, setting_bp: int) -> int:
        if self.cap == "setting":
            return setting_bp
        if self.cap == "4xLPR":
            return 4 * lpr_on(on)
        assert self.cap_bp is not None
        return self.cap_bp


@dataclass(frozen=True, slots=True)
class CapInForce:
    """The cap a plan is held to, and the rate it was measured on (for disclosure)."""

    regime: str | None  # None: no regime covers it, fenqi's own cap (the setting)
    cap_bp: int
    method: str
    rate_bp: int  # the plan's rate by `method`
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.regime,
            "cap_bp": self.cap_bp,
            "method": self.method,
            "rate_bp": self.rate_bp,
            "source": self.source,
        }


def _regime(raw: dict[str, Any]) -> Regime:
    cap = raw.get("cap_bp")
    kind = "setting" if cap == "setting" else str(raw.get("cap", "fixed"))
    if kind not in ("fixed", "setting", "4xLPR") or (kind == "fixed" and not isinstance(cap, int)):
        raise RegimeError(f"regime {raw.get('name')}: cap_bp (int or 'setting') or cap = '4xLPR'")
    if raw.get("method") not in ("irr", "reg_z"):
        raise RegimeError(f"regime {raw.get('name')}: method is irr or reg_z")
    end = raw.get("effective_to")
    return Regime(
        name=str(raw["name"]),
        description=str(raw["description"]),
        currencies=tuple(raw["currencies"]),
        kinds=tuple(raw["kinds"]),
        effective_from=date.fromisoformat(raw["effective_from"]),
        effective_to=date.fromisoformat(end) if end else None,
        cap=kind,
        cap_bp=cap if isinstance(cap, int) else None,
        method=str(raw["method"]),
        source=str(raw.get("source", "")),
    )


@lru_cache(maxsize=1)
def all_regimes() -> dict[str, Regime]:
    data = tomllib.loads((HERE / "regimes.toml").read_text(encoding="utf-8"))
    return {r.name: r for r in (_regime(x) for x in data["regime"])}


@lru_cache(maxsize=1)
def lpr_fixings() -> tuple[tuple[date, int], ...]:
    data = tomllib.loads((HERE / "lpr.toml").read_text(encoding="utf-8"))
    return tuple(sorted((date.fromisoformat(d), int(bp)) for d, bp in data["fixings"]))


def lpr_on(on: date) -> int:
    """The one-year LPR in force on a date (bp): the last fixing on or before it."""
    found = [bp for d, bp in lpr_fixings() if d <= on]
    if not found:
        first = lpr_fixings()[0][0]
        raise RegimeError(f"no LPR before {first.isoformat()} (the reformed LPR began then)")
    return found[-1]


def selected(names: str | None = None) -> tuple[Regime, ...]:
    """The regimes in use: `names` (comma-separated), else FENQI_RATE_REGIMES, else the
    default."""
    if names is None:
        from fenqi.settings import get_settings

        names = get_settings().rate_regimes
    known = all_regimes()
    out = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name not in known:
            raise RegimeError(
                f"FENQI_RATE_REGIMES: no regime {name!r}; known: {', '.join(sorted(known))}"
            )
        out.append(known[name])
    return tuple(out)


def _to_bp(rate: float) -> int:
    return int((Decimal(repr(rate)) * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _unit_periods(start: date, due: date, periods_per_year: float) -> tuple[int, float]:
    """Appendix J: whole unit periods counted back from the payment date, and the fraction
    left (for a month: days ÷ 30)."""
    if round(periods_per_year) == 12:
        months = (due.year - start.year) * 12 + due.month - start.month
        if due.day < start.day:
            months -= 1
        back = _months_back(due, months)
        return months, (back - start).days / DAYS_PER_MONTH_FRACTION
    unit = 365 / periods_per_year
    days = (due - start).days
    whole = math.floor(days / unit + 1e-9)
    return whole, (days - whole * unit) / unit


def _months_back(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    import calendar

    return date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def reg_z_apr_bp(schedule: Schedule, periods_per_year: float = 12) -> int:
    """The APR by Regulation Z's actuarial method (Appendix J, general equation):
    amount = Σ payment_k ÷ ((1 + f_k·i)(1 + i)^t_k), APR = i × unit periods a year; solved
    by bisection (the sum falls as i rises)."""
    if schedule.total_fen <= schedule.principal_fen:
        return 0
    terms = [
        (line.total_fen, *_unit_periods(schedule.start_date, line.due_date, periods_per_year))
        for line in schedule.lines
    ]

    def present(i: float) -> float:
        return sum(p / ((1 + f * i) * (1 + i) ** t) for p, t, f in terms)

    lo, hi = 0.0, 1.0
    while present(hi) > schedule.principal_fen:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if present(mid) > schedule.principal_fen:
            lo = mid
        else:
            hi = mid
    return _to_bp((lo + hi) / 2 * periods_per_year)


def plain_cap_bp(currency: str, kind: str, on: date, setting_bp: int) -> int:
    """The lowest cap in force for a product (for a rate stated directly, like a revolving
    daily rate)."""
    caps = [r.cap_on(on, setting_bp) for r in selected() if r.covers(currency, kind, on)]
    return min(caps) if caps else setting_bp


def cap_in_force(
    currency: str,
    kind: str,
    on: date,
    setting_bp: int,
    schedule: Schedule,
    rate: AnnualizedRate,
    *,
    regimes: tuple[Regime, ...] | None = None,
) -> CapInForce:
    """The lowest cap of the regimes in use covering this product on `on`, with the plan's
    rate measured the regime's way."""
    pool = regimes if regimes is not None else selected()
    covering = [r for r in pool if r.covers(currency, kind, on)]
    if not covering:
        return CapInForce(None, setting_bp, "irr", rate.nominal_bp, "FENQI_APR_CAP_BP")
    ppy = float(rate.periods_per_year)
    found = []
    for r in covering:
        measured = reg_z_apr_bp(schedule, ppy) if r.method == "reg_z" else rate.nominal_bp
        found.append(CapInForce(r.name, r.cap_on(on, setting_bp), r.method, measured, r.source))
    return min(found, key=lambda c: c.cap_bp - c.rate_bp)  # the one with the least headroom
