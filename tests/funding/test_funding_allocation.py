"""Pure funding rules: splits add up exactly, eligibility, income by rule (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fenqi.funding.allocation import (
    Borrower,
    CashKind,
    Tranche,
    age_on,
    ineligible_reasons,
    split_event,
    split_income,
    split_principal,
    split_pro_rata,
)
from fenqi.funding.model import Cost, Eligibility, Funder, FunderKind, IncomeRule, IncomeShare

FUNDERS = ["a", "b", "c", "d"]


@st.composite
def shares(draw: st.DrawFn) -> list[tuple[str, int]]:
    """2 to 4 funders whose shares (bp) sum to 10,000."""
    n = draw(st.integers(2, 4))
    cuts = sorted(
        draw(st.lists(st.integers(1, 9_999), min_size=n - 1, max_size=n - 1, unique=True))
    )
    bounds = [0, *cuts, 10_000]
    return [(FUNDERS[i], bounds[i + 1] - bounds[i]) for i in range(n)]


@given(st.integers(0, 10**12), shares())
def test_principal_split_adds_up_and_follows_shares(
    principal: int, sh: list[tuple[str, int]]
) -> None:
    parts = split_principal(principal, sh)
    own = split_principal(principal, sh, round_up="a")
    assert sum(own.values()) == principal
    assert own.get("a", 0) * 10_000 >= principal * sh[0][1]  # never under its share
    for funder, bp in sh:  # the others share what is left after the rounding up
        assert abs(own.get(funder, 0) - principal * bp / 10_000) < 2
    assert sum(parts.values()) == principal
    for funder, bp in sh:
        exact = principal * bp / 10_000
        assert abs(parts.get(funder, 0) - exact) < 1
    assert split_principal(principal, sh) == parts  # deterministic


def test_principal_split_example() -> None:
    assert split_principal(10_001, [("bank", 5000), ("trust", 2000), ("platform", 3000)]) == {
        "bank": 5001,
        "trust": 2000,
        "platform": 3000,
    }
    assert split_principal(1, [("bank", 7000), ("platform", 3000)]) == {"bank": 1}
    # own capital rounded up: a loan never leaves the platform under its share
    shares = [("bank", 5000), ("trust", 2000), ("platform", 3000)]
    assert split_principal(10_001, shares, round_up="platform") == {
        "bank": 5000,
        "trust": 2000,
        "platform": 3001,
    }
    assert split_principal(1, [("bank", 7000), ("platform", 3000)], "platform") == {"platform": 1}


@given(
    st.dictionaries(st.sampled_from(FUNDERS), st.integers(0, 10**9), min_size=1),
    st.data(),
)
def test_pro_rata_adds_up_and_never_passes_a_funders_outstanding(
    outstanding: dict[str, int], data: st.DataObject
) -> None:
    total = sum(outstanding.values())
    amount = data.draw(st.integers(0, total))
    if amount and not total:
        return
    parts = split_pro_rata(amount, outstanding)
    assert sum(parts.values()) == amount
    assert all(0 < p <= outstanding[f] for f, p in parts.items())
    if amount == total:
        assert parts == {f: w for f, w in outstanding.items() if w}


@given(st.lists(st.integers(1, 10**7), min_size=2, max_size=4), st.data())
def test_random_lives_keep_every_tranche_within_bounds(
    principals: list[int], data: st.DataObject
) -> None:
    """Any sequence of repayments, charge-offs and recoveries: outstanding plus charged off
    plus repaid is each tranche's principal; recoveries never pass what was charged off."""
    tranches = {FUNDERS[i]: Tranche(FUNDERS[i], p) for i, p in enumerate(principals)}
    repaid = dict.fromkeys(tranches, 0)
    for _ in range(data.draw(st.integers(0, 8))):
        kind = data.draw(st.sampled_from(list(CashKind)))
        ts = list(tranches.values())
        room = (
            sum(t.charged_off_fen - t.recovered_fen for t in ts)
            if kind is CashKind.RECOVERY
            else sum(t.outstanding_fen for t in ts)
        )
        amount = data.draw(st.integers(0, room))
        parts = split_event(kind, amount, ts)
        assert sum(parts.values()) == amount
        for f, p in parts.items():
            t = tranches[f]
            if kind is CashKind.RECOVERY:
                tranches[f] = Tranche(f, t.outstanding_fen, t.charged_off_fen, t.recovered_fen + p)
            elif kind.is_loss:
                tranches[f] = Tranche(
                    f, t.outstanding_fen - p, t.charged_off_fen + p, t.recovered_fen
                )
            else:
                tranches[f] = Tranche(f, t.outstanding_fen - p, t.charged_off_fen, t.recovered_fen)
                repaid[f] += p
    for i, p in enumerate(principals):
        t = tranches[FUNDERS[i]]
        assert t.outstanding_fen >= 0 and 0 <= t.recovered_fen <= t.charged_off_fen
        assert t.outstanding_fen + t.charged_off_fen + repaid[t.funder_id] == p


def test_eligibility_rules() -> None:
    rules = Eligibility(
        products=("huabei",),
        terms=(3, 6),
        tiers=("premium",),
        region_prefixes=("31", "4403"),
        min_age=22,
        max_age=55,
    )
    ok = Borrower("huabei", 6, tier="premium", id_prefix="440305", age=30)
    assert ineligible_reasons(rules, ok) == []
    assert ineligible_reasons(Eligibility(), Borrower("x", 24)) == []
    bad = Borrower("baitiao", 12, tier="standard", id_prefix="440105", age=None)
    assert ineligible_reasons(rules, bad) == [
        "product 'baitiao' not funded",
        "term 12 not funded",
        "tier 'standard' not funded",
        "region not funded",
        "age under 22 or unknown",
        "age over 55 or unknown",
    ]
    assert ineligible_reasons(rules, Borrower("huabei", 3, "premium", None, "310101", 56)) == [
        "age over 55 or unknown"
    ]


def _funder(
    fid: str,
    kind: FunderKind,
    yield_bp: int,
    interest: IncomeRule,
    fee: IncomeRule = IncomeRule.PRO_RATA,
) -> Funder:
    return Funder(
        id=fid,
        kind=kind,
        legal_name=fid,
        cost=Cost(yield_bp=yield_bp),
        income=IncomeShare(interest=interest, fee=fee),
    )


def test_income_promised_yield_and_excess_spread() -> None:
    funders = {
        "bank": _funder(
            "bank", FunderKind.BANK, 600, IncomeRule.PROMISED_YIELD, IncomeRule.PROMISED_YIELD
        ),
        "trust": _funder("trust", FunderKind.TRUST, 800, IncomeRule.PRO_RATA),
        "platform": _funder("platform", FunderKind.OWN, 0, IncomeRule.PRO_RATA),
    }
    outstanding = {"bank": 500_000, "trust": 200_000, "platform": 300_000}
    # 10,000 fen of fee over a 30-day period: the bank's yield is 500,000 × 6% × 30/365 = 2,465
    # (rounded down), under its pro-rata 5,000: it takes 2,465, the rest of its share is the
    # platform's service fee; the trust takes its pro-rata 2,000
    split = split_income({"fee": 10_000}, outstanding, funders, 30)
    assert split.to_funders == {"bank": {"fee": 2_465}, "trust": {"fee": 2_000}}
    assert split.platform_fen == 10_000 - 2_465 - 2_000
    # a yield above the pro-rata share is capped at the share
    split = split_income({"interest": 100, "fee": 100}, outstanding, funders, 365)
    assert split.to_funders["bank"] == {"interest": 50, "fee": 50}


@given(
    st.dictionaries(st.sampled_from(["interest", "fee", "penalty"]), st.integers(0, 10**8)),
    st.dictionaries(st.sampled_from(FUNDERS), st.integers(0, 10**9)),
    st.integers(0, 400),
    st.sampled_from(list(IncomeRule)),
)
def test_income_split_adds_up(
    income: dict[str, int], outstanding: dict[str, int], days: int, rule: IncomeRule
) -> None:
    yield_bp = 0 if rule is not IncomeRule.PROMISED_YIELD else 700
    funders = {
        f: _funder(f, FunderKind.OWN if f == "a" else FunderKind.BANK, yield_bp, rule, rule)
        for f in FUNDERS
    }
    split = split_income(income, outstanding, funders, days)
    given_out = sum(sum(v.values()) for v in split.to_funders.values())
    assert given_out + split.platform_fen == sum(income.values())
    assert split.platform_fen >= 0 and "a" not in split.to_funders
    for f, kinds in split.to_funders.items():
        assert all(v > 0 for v in kinds.values()) and outstanding.get(f, 0) > 0


def test_bad_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="above the 10 outstanding"):
        split_pro_rata(11, {"a": 10})
    with pytest.raises(ValueError, match="nothing outstanding"):
        split_pro_rata(1, {"a": 0})
    with pytest.raises(ValueError, match="unknown income kind"):
        split_income({"tip": 1}, {"a": 1}, {}, 1)


def test_age_on() -> None:
    from datetime import date

    assert age_on(date(2000, 6, 15), date(2026, 6, 14)) == 25
    assert age_on(date(2000, 6, 15), date(2026, 6, 15)) == 26
    assert age_on(date(2004, 2, 29), date(2026, 2, 28)) == 21
    assert age_on(date(2004, 2, 29), date(2026, 3, 1)) == 22
