"""Shipped product templates: they load, reproduce their cited terms, and bad copies are refused.

The figures asserted here are the published ones each template cites in its comments (see
docs/products.md for the table of figures and sources).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fenqi.pricing.due_dates import max_interest_free_days
from fenqi.pricing.quote import plan_pricing, quote
from fenqi.products import ProductError, load_catalog, load_product_file
from fenqi.products.catalog_loader import CATALOG_DIR, REFERENCE_DATE
from fenqi.products.model import FeeMethod, ProductKind

CAP_BP = 2400
SHIPPED = sorted(CATALOG_DIR.glob("*.toml"))
EXPECTED = {
    "huabei",
    "baitiao",
    "renxingfu",
    "weipinhua",
    "naquhua",
    "gome",
    "pay_in_4",
    "affirm_loan",
}


def test_catalog_ships_every_template() -> None:
    assert {p.stem for p in SHIPPED} == EXPECTED
    assert set(load_catalog(CAP_BP)) == EXPECTED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_template_loads_and_cites_sources(path: Path) -> None:
    product = load_product_file(path, CAP_BP)
    assert product.name == path.stem
    assert product.sources, f"{path.name} has no sources"
    text = path.read_text(encoding="utf-8")
    for url in product.sources:
        assert re.match(r"^https?://\S+$", url), url
        # every listed source is also cited next to a figure, by its host and path
        cited = url.split("://", 1)[1].split("/", 1)[0]
        assert text.count(cited) >= 2, f"{url} is listed but never cited in a comment"
    assert "accessed 2026-11-26" in text


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_plan_quotes_within_the_cap(path: Path) -> None:
    product = load_product_file(path, CAP_BP)
    amount = max(product.limits.min_fen, product.installments.min_amount_fen, 100_000)
    amount = min(amount, product.limits.max_fen)
    for term in product.installments.terms:
        q = quote(product, amount, term.count, REFERENCE_DATE, cap_bp=CAP_BP)
        assert 0 <= q.rate.nominal_bp <= CAP_BP
        assert q.schedule.principal_fen == amount


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_declared_interest_free_days_match_the_billing_cycle(path: Path) -> None:
    product = load_product_file(path, CAP_BP)
    if product.kind is ProductKind.REVOLVING:
        # longest period: a purchase on the statement day of a 31-day month
        assert product.billing.max_interest_free_days == max_interest_free_days(
            product, date(2025, 1, product.billing.statement_day or 1)
        )
    else:
        assert product.billing.max_interest_free_days == 0


def test_huabei_reproduces_the_cited_terms() -> None:
    huabei = load_catalog(CAP_BP)["huabei"]
    # wodefinance.com/Creditcardoverdue/ouyuzyaesn.html: 2.5 / 4.5 / 6.5 / 8.8 for 3 / 6 / 9 / 12
    assert {t.count: t.total_fee_bp for t in huabei.installments.terms} == {
        3: 250,
        6: 450,
        9: 650,
        12: 880,
    }
    assert huabei.installments.method is FeeMethod.EQUAL_PRINCIPAL_EQUAL_FEE
    assert (huabei.billing.statement_day, huabei.billing.due_day) == (1, 10)
    assert huabei.billing.max_interest_free_days == 41
    assert huabei.revolving.allowed and huabei.revolving.daily_rate_bp == 5  # 0.05% a day
    assert huabei.late_fee.daily_rate_bp == 5  # 0.05% a day overdue
    assert huabei.minimum_payment.principal_bp == 1000  # 10% of the bill
    assert (huabei.limits.min_fen, huabei.limits.max_fen) == (50_000, 5_000_000)  # ¥500–¥50,000
    # the reference table's vectors for the 3/6/9-period fees (../shared/reference/products.md)
    rates = {n: quote(huabei, 100_000, n, REFERENCE_DATE, cap_bp=CAP_BP).rate for n in (3, 6, 9)}
    assert [(rates[n].nominal_bp, rates[n].effective_bp) for n in (3, 6, 9)] == [
        (1494, 1600),
        (1527, 1638),
        (1534, 1647),
    ]


def test_baitiao_tiers_span_the_published_monthly_fee_range() -> None:
    baitiao = load_catalog(CAP_BP)["baitiao"]
    assert sorted(t.count for t in baitiao.installments.terms) == [3, 6, 12, 24]
    # 3 periods: 1.2% a month at the base price, 0.5% a month for the best tier
    assert plan_pricing(baitiao, 3).total_fee_bp == 360
    assert plan_pricing(baitiao, 3, tier="T1").total_fee_bp == 150
    for term in baitiao.installments.terms:  # never above the published 1.2% a month
        assert term.total_fee_bp <= 120 * term.count


def test_weipinhua_reproduces_the_cited_fees() -> None:
    weipinhua = load_catalog(CAP_BP)["weipinhua"]
    # xinyongdi.cn/xiaodai/5872.html: 3 periods 1.3% each, 6/12/24 periods 1.1% each
    assert {t.count: t.total_fee_bp for t in weipinhua.installments.terms} == {
        3: 390,
        6: 660,
        12: 1320,
        24: 2640,
    }


def test_pay_in_4_is_four_fee_free_payments_two_weeks_apart() -> None:
    product = load_catalog(CAP_BP)["pay_in_4"]
    assert product.kind is ProductKind.PAY_IN_N
    assert [t.count for t in product.installments.terms] == [4]
    assert product.billing.first_payment_days_after_purchase == 0
    assert product.billing.interval_days == 14
    purchase = date(2025, 3, 5)
    q = quote(product, 10_001, 4, purchase, cap_bp=CAP_BP)
    dates = [line.due_date for line in q.schedule.lines]
    assert dates == [purchase + timedelta(days=14 * i) for i in range(4)]
    assert q.schedule.fee_fen == 0 and q.schedule.interest_fen == 0
    assert [line.principal_fen for line in q.schedule.lines] == [2500, 2500, 2500, 2501]
    assert q.rate.nominal_bp == 0
    # Afterpay AU: A$10 a missed payment, never more than 25% of the order
    assert product.late_fee.fixed_fen == 1000
    assert product.late_fee.cap_bp_of_purchase == 2500


def test_affirm_has_a_zero_percent_plan_and_no_late_fees() -> None:
    product = load_catalog(CAP_BP)["affirm_loan"]
    assert product.kind is ProductKind.INSTALLMENT_LOAN
    assert product.installments.method is FeeMethod.SIMPLE_INTEREST
    assert sorted(t.count for t in product.installments.terms) == [3, 6, 12]
    rates = {t.count: t.annual_rate_bp for t in product.installments.terms}
    assert 0 in rates.values()
    assert all(r <= CAP_BP for r in rates.values())
    zero = next(n for n, r in rates.items() if r == 0)
    q = quote(product, 100_000, zero, REFERENCE_DATE, cap_bp=CAP_BP)
    assert q.schedule.interest_fen == 0 and q.schedule.total_fen == 100_000
    late = product.late_fee
    assert (late.daily_rate_bp, late.fixed_fen) == (Decimal(0), 0)
    assert product.early_payoff.penalty_bp == 0


# --- broken copies are refused whole, naming the file, the field and the rule -------------------


def _broken_copy(tmp_path: Path, old: str, new: str, name: str = "huabei") -> Path:
    text = (CATALOG_DIR / f"{name}.toml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "rule"),
    [
        (
            "statement_day = 1",
            "statement_day = 40",
            "billing.statement_day",
            "less than or equal to 28",
        ),
        (
            "{ count = 12, total_fee_bp = 880 }",
            "{ count = 12, total_fee_bp = 3000 }",
            "installments.terms[3]",
            "over the cap of 24.00%",
        ),
        ("due_day = 10", "due_dya = 10", "billing.due_dya", "Extra inputs are not permitted"),
        (
            "allowed = true\ndaily_rate_bp = 5",
            "allowed = true\ndaily_rate_bp = 7",
            "revolving.daily_rate_bp",
            "25.55% a year, over the cap of 24.00%",
        ),
        ("max_fen = 5000000", "max_fen = 10000", "limits", "is above max_fen"),
        ('method = "equal_principal_equal_fee"', 'method = "flat"', "installments.method", "Input"),
    ],
    ids=[
        "statement_day",
        "fee_over_cap",
        "misspelled_key",
        "revolving_over_cap",
        "limits",
        "method",
    ],
)
def test_broken_copy_is_refused(tmp_path: Path, old: str, new: str, field: str, rule: str) -> None:
    path = _broken_copy(tmp_path, old, new)
    with pytest.raises(ProductError) as caught:
        load_product_file(path, CAP_BP)
    err = caught.value
    assert str(path) in err.message
    assert err.detail["field"] == field
    assert rule in err.detail["rule"]
    assert err.message == f"{path}: {field}: {err.detail['rule']}"


def test_name_must_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my_huabei.toml"
    path.write_text((CATALOG_DIR / "huabei.toml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProductError, match=r"my_huabei\.toml: name: must match the file name"):
        load_product_file(path, CAP_BP)


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    path = _broken_copy(tmp_path, "due_day = 10", "due_day = ")
    with pytest.raises(ProductError, match=r"\(file\): not valid TOML"):
        load_product_file(path, CAP_BP)


def test_a_lower_cap_refuses_a_shipped_template(tmp_path: Path) -> None:
    # Weipinhua's published 3-period fee is 23.25% IRR-annualized: a 20% cap refuses it.
    with pytest.raises(
        ProductError, match=r"weipinhua\.toml: installments\.terms\[0\]: .*cap of 20"
    ):
        load_product_file(CATALOG_DIR / "weipinhua.toml", 2000)


def test_nothing_half_loads(tmp_path: Path) -> None:
    """An operator folder with one good override and one bad file loads nothing."""
    good = tmp_path / "baitiao.toml"
    good.write_text((CATALOG_DIR / "baitiao.toml").read_text(encoding="utf-8"), encoding="utf-8")
    _broken_copy(tmp_path, "statement_day = 1", "statement_day = 40")
    with pytest.raises(ProductError, match="statement_day"):
        load_catalog(CAP_BP, tmp_path)


def test_operator_copy_overrides_the_shipped_template(tmp_path: Path) -> None:
    # the 7.5% 12-period Huabei version, as docs/products.md tells an operator to make it
    _broken_copy(tmp_path, "total_fee_bp = 880", "total_fee_bp = 750")
    huabei = load_catalog(CAP_BP, tmp_path)["huabei"]
    assert huabei.installments.term(12) is not None
    q = quote(huabei, 100_000, 12, REFERENCE_DATE, cap_bp=CAP_BP)
    assert (q.rate.nominal_bp, q.rate.effective_bp) == (1357, 1444)  # reference table vector


def test_templates_are_valid_toml_with_no_unknown_tables() -> None:
    for path in SHIPPED:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert data["name"] == path.stem
