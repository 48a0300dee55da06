"""Funder and program files: the shipped examples load; bad files are refused naming the file,
the field and the rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fenqi.funding.loader import CATALOG_DIR, FundingConfigError, load_funding_catalog
from fenqi.funding.model import FunderKind
from fenqi.products import load_catalog

PRODUCTS = load_catalog(2400)


def test_shipped_catalog_loads_with_examples_marked() -> None:
    catalog = load_funding_catalog(PRODUCTS, 3000)
    assert set(catalog.funders) == {
        "platform",
        "platform_usd",
        "platform_aud",
        "bank_example",
        "trust_example",
    }
    assert catalog.own.kind is FunderKind.OWN
    # own capital in every currency a product lends in: a plan no partner funds is the platform's
    assert {c: catalog.own_for(c).id for c in ("CNY", "USD", "AUD")} == {
        "CNY": "platform",
        "USD": "platform_usd",
        "AUD": "platform_aud",
    }
    program = catalog.programs["colending_example"]
    assert {s.funder: s.share_bp for s in program.shares} == {
        "bank_example": 5000,
        "trust_example": 2000,
        "platform": 3000,
    }
    assert all(f.example for f in catalog.funders.values())
    assert all(p.example for p in catalog.programs.values())
    for path in CATALOG_DIR.rglob("*.toml"):
        assert "EXAMPLE" in path.read_text() or "example" in path.read_text()
    assert [p.id for p in catalog.programs_for("huabei", "CNY")] == ["colending_example"]
    assert catalog.programs_for("pay_in_4", "CNY") == []


def _copy(tmp_path: Path) -> Path:
    """An operator folder: a copy of the shipped files, to break one at a time."""
    extra = tmp_path / "funding"
    shutil.copytree(CATALOG_DIR, extra)
    return extra


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "rule"),
    [
        (
            "programs/colending_example.toml",
            "share_bp = 2000",
            "share_bp = 2500",
            "shares",
            "must sum to 10000 bp",
        ),
        (
            "programs/colending_example.toml",
            'funder = "trust_example"\nshare_bp = 2000',
            'funder = "trust_example"\nshare_bp = 2100',
            "shares",
            "must sum",
        ),
        (
            "programs/colending_example.toml",
            "share_bp = 5000",
            "share_bp = 5500",
            "shares",
            "must sum",
        ),
        (
            "programs/colending_example.toml",
            'products = ["huabei", "baitiao"]',
            'products = ["huabei", "nope"]',
            "products[1]",
            "unknown product 'nope'",
        ),
        (
            "programs/colending_example.toml",
            'funder = "trust_example"',
            'funder = "trust_x"',
            "shares[1].funder",
            "unknown funder 'trust_x'",
        ),
        (
            "programs/colending_example.toml",
            'currency = "CNY"',
            'currency = "USD"',
            "products[0]",
            "lends in CNY, the program in USD",
        ),
        (
            "funders/bank_example.toml",
            'currency = "CNY"',
            'currency = "USD"',
            "shares[0].funder",
            "lends in USD",
        ),
        (
            "funders/bank_example.toml",
            "per_borrower_fen = 20_000_000",
            "per_borrower_fen = 0",
            "limits.per_borrower_fen",
            "greater than 0",
        ),
        (
            "funders/bank_example.toml",
            "min_age = 22",
            "min_age = 60",
            "eligibility",
            "min_age 60 is above max_age 55",
        ),
        (
            "funders/bank_example.toml",
            'products = ["huabei", "baitiao"]',
            'products = ["huabei", "nope"]',
            "eligibility.products[1]",
            "unknown product",
        ),
        (
            "funders/bank_example.toml",
            "yield_bp = 600",
            "yield_bp = 0",
            "cost.yield_bp",
            "promised_yield income rule needs a yield",
        ),
        (
            "funders/bank_example.toml",
            'id = "bank_example"',
            'id = "bank_other"',
            "id",
            "must match the file name",
        ),
    ],
)
def test_bad_files_are_refused_naming_file_field_rule(
    tmp_path: Path, file: str, old: str, new: str, field: str, rule: str
) -> None:
    extra = _copy(tmp_path)
    _edit(extra / file, old, new)
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert err.value.detail["field"] == field
    assert rule in err.value.detail["rule"]
    # a funder in another currency than its program is the program's error
    where = "colending_example.toml" if field.startswith("shares") else file.split("/")[-1]
    assert err.value.detail["source"].endswith(where)
    assert err.value.code == "funding_invalid"


def test_platform_share_under_the_floor_is_refused(tmp_path: Path) -> None:
    extra = _copy(tmp_path)
    program = extra / "programs/colending_example.toml"
    _edit(program, "share_bp = 5000", "share_bp = 5500")
    _edit(program, 'funder = "platform"\nshare_bp = 3000', 'funder = "platform"\nshare_bp = 2500')
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert err.value.detail["field"] == "shares"
    assert "under the regulatory floor of 3000 bp" in err.value.detail["rule"]
    # the floor is a setting: at 25% the same program loads
    assert load_funding_catalog(PRODUCTS, 2500, extra).programs["colending_example"]


def test_exactly_one_own_capital_funder(tmp_path: Path) -> None:
    extra = _copy(tmp_path)
    shutil.copy(extra / "funders/platform.toml", extra / "funders/platform2.toml")
    _edit(extra / "funders/platform2.toml", 'id = "platform"', 'id = "platform2"')
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert "exactly one funder of kind 'own'" in err.value.message


def test_own_capital_in_every_lending_currency(tmp_path: Path) -> None:
    """A currency a product lends in with no own capital is refused at load, not at a
    checkout (a USD purchase once failed with `funding_unavailable`)."""
    extra = _copy(tmp_path)
    _edit(extra / "funders/platform_usd.toml", 'currency = "USD"', 'currency = "AUD"')
    _edit(extra / "funders/platform_aud.toml", 'currency = "AUD"', 'currency = "USD"')
    assert load_funding_catalog(PRODUCTS, 3000, extra).own_for("USD").id == "platform_aud"
    _edit(extra / "funders/platform_aud.toml", 'currency = "USD"', 'currency = "CNY"')
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert "per currency" in err.value.message and "both lend CNY" in err.value.message
    products = {k: p for k, p in PRODUCTS.items() if p.currency != "USD"}
    _edit(extra / "funders/platform_aud.toml", 'kind = "own"', 'kind = "bank"')
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert "none lends USD" in err.value.message
    assert load_funding_catalog(products, 3000, extra).own_for("AUD").id == "platform_usd"


def test_not_toml_and_unknown_field(tmp_path: Path) -> None:
    extra = _copy(tmp_path)
    (extra / "funders/trust_example.toml").write_text("id = [")
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert "not valid TOML" in err.value.message
    extra = _copy(tmp_path / "b")
    _edit(extra / "funders/trust_example.toml", "[limits]", "[limits]\nsurprise = 1")
    with pytest.raises(FundingConfigError) as err:
        load_funding_catalog(PRODUCTS, 3000, extra)
    assert err.value.detail["field"] == "limits.surprise"
