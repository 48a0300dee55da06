"""Funding wired into the money flows (issue 16): a shopper's life through the real credit code
and end of day — purchase, capture, bill conversion, partial repayment, refund, end of day,
charge-off, recovery — with, after every step, each plan's funders holding exactly its
principal outstanding, the books balanced, the deep reconciliation clean, and each day's
settlement figures (written by the end of day's step) equal to the figures recomputed from
the funding tables and to the ledger. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from fenqi.credit import conversion
from fenqi.credit import service as credit
from fenqi.credit.refunds import refund_plan
from fenqi.funding import wiring
from fenqi.funding.allocation import split_principal
from fenqi.funding.files import export_files, loan_rows, verify_file
from fenqi.funding.reports import concentration
from fenqi.funding.service import FundingDeclined
from fenqi.funding.settlement import check_against_ledger, day_figures
from fenqi.store.schema.credit import credit_accounts, installment_plans, plan_lines
from fenqi.store.schema.funding import funding_settlements, funding_tranches
from support.billing_world import World

START = date(2026, 1, 2)
FIGURES = (
    "disbursed_fen",
    "principal_collected_fen",
    "income_collected_fen",
    "losses_fen",
    "recoveries_fen",
    "due_to_funder_fen",
)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = World(db_url, START)
    yield w
    w.close()


def open_account(w: World, region: str = "110101", tier: str = "T1") -> int:
    """A Beijing borrower aged 35 in a good tier: every partner of the shipped program takes
    the loan (bank 50%, trust 20%, platform 30%)."""
    with w.ctx.engine.begin() as conn:
        return credit.open_credit_account(
            conn,
            w.clock,
            w.product,
            "s1",
            2_000_000,
            tier,
            id_region=region,
            birth_date=date(1990, 5, 1),
        )


def tranches(w: World, plan_id: int) -> dict[str, tuple[int, int, int]]:
    """Per funder: (outstanding, charged off, recovered)."""
    with w.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(
                funding_tranches.c.funder_id,
                funding_tranches.c.outstanding_fen,
                funding_tranches.c.charged_off_fen,
                funding_tranches.c.recovered_fen,
            ).where(funding_tranches.c.plan_id == plan_id)
        ).all()
    return {str(f): (int(o), int(c), int(r)) for f, o, c, r in rows}


def unpaid_principal(w: World, plan_id: int) -> int:
    pl = plan_lines.c
    with w.ctx.engine.connect() as conn:
        return int(
            conn.execute(
                select(
                    func.coalesce(
                        func.sum(
                            pl.principal_fen - pl.paid_principal_fen - pl.waived_principal_fen
                        ),
                        0,
                    )
                ).where(pl.plan_id == plan_id)
            ).scalar_one()
        )


def shares_add_up(w: World, account: int) -> None:
    """After every step: each plan's funders hold exactly its unpaid principal (charged off:
    their principal charged off and not yet recovered), and the books and the deep
    reconciliation (funders included) agree."""
    with w.ctx.engine.connect() as conn:
        plan_ids = conn.execute(
            select(installment_plans.c.id).where(installment_plans.c.credit_account_id == account)
        ).scalars()
        charged_off = conn.execute(
            select(credit_accounts.c.charged_off_on).where(credit_accounts.c.id == account)
        ).scalar_one()
    for plan_id in plan_ids:
        held = tranches(w, plan_id)
        assert held, f"plan {plan_id} has no funder"
        owed = unpaid_principal(w, plan_id)
        if charged_off is None:
            assert sum(o for o, _, _ in held.values()) == owed, (plan_id, held, owed)
        else:
            assert sum(o for o, _, _ in held.values()) == 0
            assert sum(c - r for _, c, r in held.values()) == owed, (plan_id, held, owed)
    w.books_balance()  # trial balance, reconcile, deep_reconcile (its `funding` check)


def settled(w: World, day: date) -> dict[str, tuple[int, ...]]:
    """The day's figures the end of day wrote, which must equal the figures recomputed from
    the funding tables, and agree with the ledger."""
    catalog = wiring.active_catalog()
    assert catalog is not None
    with w.ctx.engine.connect() as conn:
        written = {
            str(r["funder_id"]): tuple(int(r[c]) for c in FIGURES)
            for r in conn.execute(
                select(funding_settlements).where(funding_settlements.c.business_date == day)
            ).mappings()
        }
        again = {
            f.funder_id: tuple(int(getattr(f, c)) for c in FIGURES)
            for f in day_figures(conn, catalog, day)
        }
        assert check_against_ledger(conn, catalog, day) == []
    assert written == again, (day, written, again)
    return written


def test_a_life_keeps_every_fen_with_one_funder(world: World) -> None:
    w = world
    acct = open_account(w)
    cycle = w.buy(acct, 100_000, 0)  # a purchase in the free period, captured
    assert tranches(w, cycle) == {
        "bank_example": (50_000, 0, 0),
        "platform": (30_000, 0, 0),
        "trust_example": (20_000, 0, 0),
    }
    six = w.buy(acct, 60_000, 6)
    assert {f: o for f, (o, _, _) in tranches(w, six).items()} == {
        "bank_example": 30_000,
        "platform": 18_000,
        "trust_example": 12_000,
    }
    shares_add_up(w, acct)

    w.go_to(date(2026, 2, 2))  # billed on 1 Feb, due 10 Feb: the bill may be converted
    assert settled(w, START)["bank_example"] == (80_000, 0, 0, 0, 0, -80_000)
    with w.ctx.engine.begin() as conn:
        converted = conversion.convert(
            conn, w.clock, w.product, acct, [cycle], 3, 2400, "convert-1"
        )
    assert {o for o, _, _ in tranches(w, cycle).values()} == {0}
    assert sum(o for o, _, _ in tranches(w, converted).values()) == 100_000
    shares_add_up(w, acct)

    bounced = w.pay(acct, 30_000)  # a partial repayment, which bounces
    shares_add_up(w, acct)
    with w.ctx.engine.begin() as conn:
        credit.reverse_repayment(conn, w.clock, acct, bounced.repayment_id, "bounced", "bounce-1")
    shares_add_up(w, acct)  # the funders hold again what it had paid them
    w.pay(acct, 30_000)  # paid again
    shares_add_up(w, acct)
    with w.ctx.engine.begin() as conn:
        refund_plan(conn, w.clock, w.product, six, "m1", 20_000, "refund-1")
    shares_add_up(w, acct)

    w.go_to(date(2026, 2, 3))  # the end of day of 2 Feb
    day = settled(w, date(2026, 2, 2))
    # the bill's funders were paid off by the conversion and lent the new plan the same day
    assert day["bank_example"][0] == 50_000  # the converted plan's disbursement
    assert day["bank_example"][1] >= 50_000  # the bill paid off in funding, plus repayments
    shares_add_up(w, acct)

    w.go_to(date(2026, 9, 20))  # nothing more paid: past due, then charged off
    with w.ctx.engine.connect() as conn:
        charged_off_on = conn.execute(
            select(credit_accounts.c.charged_off_on).where(credit_accounts.c.id == acct)
        ).scalar_one()
    assert charged_off_on is not None
    losses = settled(w, charged_off_on)
    lost = {f: sum(tranches(w, p).get(f, (0, 0, 0))[1] for p in (six, converted)) for f in losses}
    assert {f: v[3] for f, v in losses.items()} == lost
    assert sum(lost.values()) == unpaid_principal(w, six) + unpaid_principal(w, converted)
    shares_add_up(w, acct)

    w.pay(acct, 20_000)  # a recovery
    recovered = sum(r for p in (six, converted) for _, _, r in tranches(w, p).values())
    assert 0 < recovered <= 20_000
    shares_add_up(w, acct)
    w.go_to(date(2026, 9, 21))
    assert sum(v[4] for v in settled(w, date(2026, 9, 20)).values()) == recovered


def test_a_declined_partner_leaves_the_platform_alone_and_a_decline_rolls_back(
    world: World,
) -> None:
    """A borrower outside the bank's provinces: the program's fallback (platform alone) funds
    it. A program whose fallback is decline refuses the purchase: nothing is booked."""
    w = world
    acct = open_account(w, region="510101")  # Sichuan: not a bank_example province
    plan = w.buy(acct, 10_000, 3)
    assert tranches(w, plan) == {"platform": (10_000, 0, 0)}
    shares_add_up(w, acct)
    catalog = wiring.active_catalog()
    assert catalog is not None
    program = catalog.programs["colending_example"]
    strict = catalog.model_copy(
        update={
            "programs": {"colending_example": program.model_copy(update={"fallback": "decline"})}
        }
    )
    with wiring.using(strict), pytest.raises(FundingDeclined):
        w.buy(acct, 10_000, 3)
    with w.ctx.engine.connect() as conn:
        plans = conn.execute(
            select(func.count()).where(installment_plans.c.credit_account_id == acct)
        ).scalar_one()
    assert plans == 1  # the declined purchase left nothing
    shares_add_up(w, acct)


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=10**10),
    shares=st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=4),
    own=st.integers(min_value=3_000, max_value=10_000),
)
def test_allocation_splits_add_up_and_keep_the_platforms_floor(
    principal: int, shares: list[int], own: int
) -> None:
    """Any principal, any shares summing to 100%: the parts add up to the fen, none is
    negative, the platform never holds less than its share (rounded up), and no partner more
    than one fen over its exact share."""
    rest = 10_000 - own
    partners = [s for s in shares if s]
    total = sum(partners)
    weights = [rest * s // total for s in partners] if rest else []
    if weights:
        weights[-1] += rest - sum(weights)
    pairs = [("platform", own), *[(f"p{i}", bp) for i, bp in enumerate(weights) if bp > 0]]
    if sum(bp for _, bp in pairs) != 10_000:
        return
    parts = split_principal(principal, pairs, "platform")
    assert sum(parts.values()) == principal
    assert all(v > 0 for v in parts.values())
    assert parts.get("platform", 0) * 10_000 >= principal * own
    for funder, bp in pairs[1:]:
        assert parts.get(funder, 0) <= principal * bp / 10_000 + 1


def test_a_region_limit_sends_the_next_loan_from_that_province_to_the_platform(
    world: World,
) -> None:
    """bank_example may hold ¥400 per province here: a Beijing borrower's first loan takes
    ¥300 of it, the next Beijing loan would pass it (the platform funds it alone), and a
    Guangdong borrower's loan is co-lent again."""
    from fenqi.funding.model import FunderLimits

    w = world
    catalog = wiring.active_catalog()
    assert catalog is not None
    bank = catalog.funders["bank_example"]
    limited = catalog.model_copy(
        update={
            "funders": {
                **catalog.funders,
                "bank_example": bank.model_copy(
                    update={"limits": FunderLimits(per_region_fen=40_000)}
                ),
            }
        }
    )
    beijing = open_account(w)
    with w.ctx.engine.begin() as conn:
        guangdong = credit.open_credit_account(
            conn, w.clock, w.product, "s2", 2_000_000, "T1",
            id_region="440101", birth_date=date(1990, 5, 1),
        )  # fmt: skip
    with wiring.using(limited):
        first = w.buy(beijing, 60_000, 3)
        second = w.buy(beijing, 60_000, 3)
        third = w.buy(guangdong, 60_000, 3)
    assert tranches(w, first)["bank_example"][0] == 30_000
    assert tranches(w, second) == {"platform": (60_000, 0, 0)}
    assert tranches(w, third)["bank_example"][0] == 30_000
    with w.ctx.engine.connect() as conn:
        regions = concentration(conn, "bank_example")["regions"]
    assert [(r["region"], r["outstanding_fen"], r["share_bp"]) for r in regions] == [
        ("11", 30_000, 5_000),
        ("44", 30_000, 5_000),
    ]
    shares_add_up(w, beijing)
    shares_add_up(w, guangdong)


def test_a_partner_file_shows_a_bounced_repayment_and_agrees_with_the_ledger(
    world: World, tmp_path: Path
) -> None:
    """A repayment and its reversal: the same day, and a reversal on a later day. The partner's
    file shows what was repaid and what was reversed, and `verify_file` finds it equal to the
    ledger to the fen (it used to show the day's net, which the ledger did not)."""
    w = world
    acct = open_account(w)
    six = w.buy(acct, 60_000, 6)
    w.go_to(date(2026, 2, 2))  # the first installment billed
    same_day = w.pay(acct, 30_000)
    with w.ctx.engine.begin() as conn:
        credit.reverse_repayment(conn, w.clock, acct, same_day.repayment_id, "bounced", "b-1")
    later = w.pay(acct, 30_000)
    shares_add_up(w, acct)
    w.go_to(date(2026, 2, 4))
    with w.ctx.engine.begin() as conn:
        credit.reverse_repayment(conn, w.clock, acct, later.repayment_id, "bounced", "b-2")
    shares_add_up(w, acct)
    paid: dict[str, Any] = {}
    reversed_later: dict[str, Any] = {}
    with w.ctx.engine.connect() as conn:
        for day, into in ((date(2026, 2, 2), paid), (date(2026, 2, 4), reversed_later)):
            out = export_files(conn, "bank_example", day, tmp_path)
            for path in (out.csv_path, out.parquet_path):
                assert verify_file(conn, path)["agrees_with_ledger"]
            (row,) = [r for r in loan_rows(conn, "bank_example", day) if r["loan_id"] == str(six)]
            into.update(row)
    # 2 Feb: two repayments of the bank's part, one of them reversed the same day
    assert paid["principal_repaid_fen"] > 0
    assert paid["principal_reversed_fen"] * 2 == paid["principal_repaid_fen"]
    # 4 Feb: nothing repaid, the second repayment reversed
    assert reversed_later["principal_repaid_fen"] == 0
    assert reversed_later["principal_reversed_fen"] == paid["principal_reversed_fen"]
    assert reversed_later["balance_fen"] == 30_000
