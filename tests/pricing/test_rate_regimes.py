"""Rate regimes as dated data: the cap in force by currency, kind and date; the LPR × 4 line;
Regulation Z's actuarial APR for USD; quotes and product loading refused over the cap."""

from __future__ import annotations

from datetime import date

import pytest

from fenqi.compliance.regimes import (
    RegimeError,
    all_regimes,
    cap_in_force,
    lpr_on,
    reg_z_apr_bp,
    selected,
)
from fenqi.pricing.annualized import annualized_rate
from fenqi.pricing.cap import RateCapExceeded
from fenqi.pricing.quote import quote
from fenqi.pricing.schedule import Schedule, ScheduleLine
from fenqi.products.catalog_loader import ProductError, load_catalog, parse_product


def _monthly(principal: int, payment: int, n: int, start: date) -> Schedule:
    lines = []
    for k in range(1, n + 1):
        y, m = divmod(start.month - 1 + k, 12)
        lines.append(ScheduleLine(k, date(start.year + y, m + 1, start.day), 0, 0, 0))
    # put the whole payment in principal/interest so that totals are right
    lines = [
        ScheduleLine(x.period, x.due_date, principal // n, 0, payment - principal // n)
        for x in lines
    ]
    return Schedule(start, principal, tuple(lines))


def test_lpr_is_dated_data() -> None:
    assert lpr_on(date(2020, 8, 20)) == 385
    assert lpr_on(date(2024, 10, 20)) == 335
    assert lpr_on(date(2024, 10, 21)) == 310
    assert lpr_on(date(2026, 1, 1)) == 300
    with pytest.raises(RegimeError):
        lpr_on(date(2019, 1, 1))


def test_the_regime_in_force_depends_on_date_currency_and_selection() -> None:
    regimes = all_regimes()
    flat = _monthly(120_000, 11_000, 12, date(2026, 1, 5))  # about 18% by IRR
    rate = annualized_rate(flat)
    pool = tuple(regimes[n] for n in ("cn_window_24", "cn_guidance_20", "us_reg_z_36"))
    # before the 20% guidance only the 24% window applies; after it, the lower cap binds
    before = cap_in_force("CNY", "revolving", date(2025, 12, 1), 2400, flat, rate, regimes=pool)
    after = cap_in_force("CNY", "revolving", date(2026, 1, 5), 2400, flat, rate, regimes=pool)
    assert (before.regime, before.cap_bp) == ("cn_window_24", 2400)
    assert (after.regime, after.cap_bp) == ("cn_guidance_20", 2000)
    # a US product is held to its own line, measured as a Regulation Z APR
    us = cap_in_force("USD", "installment_loan", date(2026, 1, 5), 2400, flat, rate, regimes=pool)
    assert (us.regime, us.cap_bp, us.method) == ("us_reg_z_36", 3600, "reg_z")
    # no regime for AUD: fenqi's own cap (the setting)
    au = cap_in_force("AUD", "pay_in_n", date(2026, 1, 5), 2400, flat, rate, regimes=pool)
    assert (au.regime, au.cap_bp) == (None, 2400)
    # private lending: 24% until 2020-08-19, then 4 × the LPR of the contract date
    private = (regimes["cn_private_2015"], regimes["cn_private_lpr4"])
    old = cap_in_force("CNY", "revolving", date(2020, 8, 19), 9999, flat, rate, regimes=private)
    new = cap_in_force("CNY", "revolving", date(2026, 1, 5), 9999, flat, rate, regimes=private)
    assert (old.cap_bp, new.cap_bp) == (2400, 1200)
    with pytest.raises(RegimeError):
        selected("cn_window_24,no_such_regime")


def test_reg_z_apr_matches_the_textbook_figure() -> None:
    # $1,000 repaid in 12 monthly payments of $90.26: 15.00% APR (an amortization table)
    s = _monthly(100_000, 9_026, 12, date(2026, 1, 15))
    assert abs(reg_z_apr_bp(s) - 1500) <= 1
    # an odd first period (45 days to the first payment) lowers the APR a little
    odd = Schedule(
        date(2025, 12, 31),
        100_000,
        tuple(
            ScheduleLine(x.period, x.due_date, x.principal_fen, 0, x.interest_fen) for x in s.lines
        ),
    )
    assert reg_z_apr_bp(odd) < reg_z_apr_bp(s)
    assert reg_z_apr_bp(_monthly(100_000, 100_000 // 12 + 1, 12, date(2026, 1, 15))) < 10


def test_quotes_disclose_the_regime_and_refuse_above_it(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = load_catalog(2400)
    q = quote(catalog["affirm_loan"], 100_000, 12, date(2026, 3, 5), cap_bp=2400)
    assert q.to_dict()["regime"]["name"] == "us_reg_z_36"
    assert q.to_dict()["regime"]["method"] == "reg_z"
    huabei = catalog["huabei"]
    q = quote(huabei, 100_000, 12, date(2026, 3, 5), cap_bp=2400)
    assert q.to_dict()["regime"] == {
        "name": "cn_window_24",
        "cap_bp": 2400,
        "method": "irr",
        "rate_bp": q.rate.nominal_bp,
        "source": q.regime.source,
    }
    # huabei's 12-period plan is about 15.9% by IRR: refused under a 15% cap
    with pytest.raises(RateCapExceeded) as refused:
        quote(huabei, 100_000, 12, date(2026, 3, 5), cap_bp=1500)
    assert refused.value.detail["regime"] == "cn_window_24"
    assert "cn_window_24" in refused.value.message


def test_product_loading_uses_the_regime_in_force_on_the_loading_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fenqi.settings import get_settings

    catalog = load_catalog(2400)
    data = catalog["huabei"].model_dump(mode="json")
    # a 22%-ish plan: fine under the 24% window, refused once the 20% guidance is in force
    terms = data["installments"]["terms"]
    terms[-1]["total_fee_bp"] = 1250
    parse_product(data, "test", 2400, on=date(2026, 1, 5))
    monkeypatch.setenv("FENQI_RATE_REGIMES", "cn_window_24,cn_guidance_20")
    get_settings.cache_clear()
    try:
        parse_product(data, "test", 2400, on=date(2025, 12, 1))
        with pytest.raises(ProductError) as refused:
            parse_product(data, "test", 2400, on=date(2026, 1, 5))
        assert "cn_guidance_20" in refused.value.message
    finally:
        monkeypatch.delenv("FENQI_RATE_REGIMES")
        get_settings.cache_clear()
