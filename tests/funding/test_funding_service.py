"""Allocation and later cash in the database and the ledger, on SQLite and PostgreSQL: splits,
fallbacks, limits under concurrency, and conservation over random lives (the funders' principal
equals each plan's principal outstanding; the ledger balances and reconciles)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, Engine, func, select

from fenqi.clock import FixedClock
from fenqi.credit import service as credit
from fenqi.credit.errors import CreditError
from fenqi.credit.plans import offer
from fenqi.funding.allocation import Borrower, CashKind
from fenqi.funding.loader import load_funding_catalog
from fenqi.funding.model import Fallback, FunderLimits, FundingCatalog, LossRule
from fenqi.funding.service import (
    FundingDeclined,
    FundingError,
    allocate_plan,
    apply_cash,
    exposure,
    funder_accounts,
)
from fenqi.funding.settlement import check_against_ledger, settle_day
from fenqi.ledger.accounts import get_balance
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.products import load_catalog
from fenqi.store.schema.credit import plan_lines, repayment_parts
from fenqi.store.schema.funding import funder_state, funding_settlements, funding_tranches

PRODUCTS = load_catalog(2400)


def tranches_of(conn: Connection, plan_id: int) -> dict[str, int]:
    """Each funder's principal outstanding on a plan."""
    t = funding_tranches
    rows = conn.execute(select(t).where(t.c.plan_id == plan_id)).mappings().all()
    return {str(r["funder_id"]): int(r["outstanding_fen"]) for r in rows}


HUABEI = PRODUCTS["huabei"]
CATALOG = load_funding_catalog(PRODUCTS, 3000)
DAY = date(2026, 1, 2)
GOOD = Borrower("huabei", 12, tier="T1", id_prefix="310101", age=30)


@pytest.fixture(autouse=True)
def _funding_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests allocate and split by hand (allocate_plan, apply_cash on their own catalogs):
    the credit code's own funding calls (funding/wiring.py) are off here."""
    from fenqi.funding import wiring

    monkeypatch.setattr(wiring, "_configured", lambda: None)


def with_limits(catalog: FundingCatalog, funder: str, **limits: int) -> FundingCatalog:
    f = catalog.funders[funder]
    funders = {**catalog.funders, funder: f.model_copy(update={"limits": FunderLimits(**limits)})}
    return catalog.model_copy(update={"funders": funders})


def with_fallback(catalog: FundingCatalog, fallback: Fallback) -> FundingCatalog:
    p = catalog.programs["colending_example"]
    programs = {p.id: p.model_copy(update={"fallback": fallback, "decline_code": "no_funder"})}
    return catalog.model_copy(update={"programs": programs})


def sell(
    conn: Connection, clock: FixedClock, who: str, amount: int, terms: int = 12
) -> tuple[int, int]:
    """A credit account for `who` (if new) and a purchase of `amount` on it: (account, plan)."""
    acct = credit.account_of(conn, who, "huabei") or credit.open_credit_account(
        conn, clock, HUABEI, who, 5_000_000, tier="T1"
    )
    n = conn.execute(select(func.count()).select_from(plan_lines)).scalar_one()
    plan = offer(HUABEI, amount, terms, clock.today(), cap_bp=2400)
    sale = credit.sell(conn, clock, HUABEI, acct, "m1", f"o-{who}-{n}", plan, f"sale-{who}-{n}")
    return acct, sale.plan_id


def funder_principal(conn: Connection, clock: FixedClock, funder: str) -> int:
    bal = get_balance(
        conn, funder_accounts(conn, clock, funder, "CNY")[AccountCode.FUNDER_PRINCIPAL]
    )
    return bal.credits_posted - bal.debits_posted


def plan_outstanding(conn: Connection, plan_id: int) -> int:
    return int(
        conn.execute(
            select(
                func.coalesce(
                    func.sum(
                        plan_lines.c.principal_fen
                        - plan_lines.c.paid_principal_fen
                        - plan_lines.c.waived_principal_fen
                    ),
                    0,
                )
            ).where(plan_lines.c.plan_id == plan_id)
        ).scalar_one()
    )


def test_allocation_splits_posts_and_replays(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    with db_engine.begin() as conn:
        acct, plan_id = sell(conn, clock, "s1", 100_001)
        a = allocate_plan(
            conn,
            clock,
            CATALOG,
            plan_id=plan_id,
            credit_account_id=acct,
            principal_fen=100_001,
            currency="CNY",
            borrower=GOOD,
            client_id="cap-1",
        )
        assert a.program_id == "colending_example" and a.fallback_reason is None
        assert a.tranches == {"bank_example": 50_000, "trust_example": 20_000, "platform": 30_001}
        again = allocate_plan(
            conn,
            clock,
            CATALOG,
            plan_id=plan_id,
            credit_account_id=acct,
            principal_fen=100_001,
            currency="CNY",
            borrower=GOOD,
            client_id="cap-1",
        )
        assert again.replayed and again.tranches == a.tranches
        for funder, amount in a.tranches.items():
            assert funder_principal(conn, clock, funder) == amount
        figures = {r["funder"]: r for r in exposure(conn, CATALOG)}
        assert figures["bank_example"]["outstanding_fen"] == 50_000
        assert figures["bank_example"]["lent_on_day_fen"] == 50_000
        assert figures["bank_example"]["largest_borrower_fen"] == 50_000
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_fallbacks_platform_alone_decline_and_limits(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    outside = Borrower("huabei", 12, tier="T1", id_prefix="510101", age=30)  # Sichuan
    with db_engine.begin() as conn:
        acct, p1 = sell(conn, clock, "s1", 50_000)
        a = allocate_plan(
            conn,
            clock,
            CATALOG,
            plan_id=p1,
            credit_account_id=acct,
            principal_fen=50_000,
            currency="CNY",
            borrower=outside,
            client_id="c1",
        )
        assert a.tranches == {"platform": 50_000}
        assert "bank_example declines (region not funded)" in (a.fallback_reason or "")
        # a program that declines instead: nothing written, the program's code
        _, p2 = sell(conn, clock, "s1", 50_000)
        with pytest.raises(FundingDeclined) as err:
            allocate_plan(
                conn,
                clock,
                with_fallback(CATALOG, Fallback.DECLINE),
                plan_id=p2,
                credit_account_id=acct,
                principal_fen=50_000,
                currency="CNY",
                borrower=outside,
                client_id="c2",
            )
        assert err.value.code == "no_funder"
        assert tranches_of(conn, p2) == {}
        # the bank's per-borrower cap: the second plan of this borrower goes to the platform,
        # and the trust's reservation made before the bank refused is undone
        tight = with_limits(CATALOG, "bank_example", per_borrower_fen=30_000)
        a2 = allocate_plan(
            conn,
            clock,
            tight,
            plan_id=p2,
            credit_account_id=acct,
            principal_fen=50_000,
            currency="CNY",
            borrower=GOOD,
            client_id="c3",
        )
        assert a2.tranches == {"bank_example": 25_000, "trust_example": 10_000, "platform": 15_000}
        _, p3 = sell(conn, clock, "s1", 50_000)
        a3 = allocate_plan(
            conn,
            clock,
            tight,
            plan_id=p3,
            credit_account_id=acct,
            principal_fen=50_000,
            currency="CNY",
            borrower=GOOD,
            client_id="c4",
        )
        assert a3.tranches == {"platform": 50_000}
        assert "over its limit per borrower" in (a3.fallback_reason or "")
        figures = {r["funder"]: r for r in exposure(conn, CATALOG)}
        assert figures["trust_example"]["outstanding_fen"] == 10_000
        # own capital full too: declined with the program's code
        broke = with_limits(tight, "platform", total_outstanding_fen=1)
        _, p4 = sell(conn, clock, "s1", 50_000)
        with pytest.raises(FundingDeclined) as err:
            allocate_plan(
                conn,
                clock,
                broke,
                plan_id=p4,
                credit_account_id=acct,
                principal_fen=50_000,
                currency="CNY",
                borrower=GOOD,
                client_id="c5",
            )
        assert err.value.code == "funding_unavailable"
        # a product no program serves: own capital alone
        _, p5 = sell(conn, clock, "s2", 20_000)
        a5 = allocate_plan(
            conn,
            clock,
            CATALOG,
            plan_id=p5,
            credit_account_id=acct,
            principal_fen=20_000,
            currency="CNY",
            borrower=Borrower("pay_in_4", 4),
            client_id="c6",
        )
        assert (a5.program_id, a5.tranches) == ("own_capital", {"platform": 20_000})
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_daily_limit_resets_the_next_day(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    daily = with_limits(CATALOG, "bank_example", new_per_day_fen=30_000)
    with db_engine.begin() as conn:
        acct, p1 = sell(conn, clock, "s1", 50_000)
        _, p2 = sell(conn, clock, "s2", 50_000)

        def funders(plan_id: int, client_id: str) -> set[str]:
            return set(
                allocate_plan(
                    conn,
                    clock,
                    daily,
                    plan_id=plan_id,
                    credit_account_id=acct,
                    client_id=client_id,
                    principal_fen=50_000,
                    currency="CNY",
                    borrower=GOOD,
                ).tranches
            )

        assert "bank_example" in funders(p1, "a")
        assert "bank_example" not in funders(p2, "b")
        clock.advance(timedelta(days=1))
        _, p3 = sell(conn, clock, "s3", 50_000)
        assert "bank_example" in funders(p3, "c")


WORKERS = 50
PRINCIPAL = 10_000
BANK_LIMIT = 60_000  # room for 12 bank parts of 5,000


def test_concurrent_allocations_never_pass_a_partner_limit(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    tight = with_limits(CATALOG, "bank_example", total_outstanding_fen=BANK_LIMIT)
    with db_engine.begin() as conn:
        plans = [sell(conn, clock, f"s{i}", PRINCIPAL) for i in range(WORKERS)]
    start = threading.Barrier(WORKERS)

    def allocate(i: int) -> dict[str, int]:
        acct, plan_id = plans[i]
        start.wait()
        with db_engine.begin() as conn:
            return allocate_plan(
                conn,
                clock,
                tight,
                plan_id=plan_id,
                credit_account_id=acct,
                principal_fen=PRINCIPAL,
                currency="CNY",
                borrower=GOOD,
                client_id=f"cap-{i}",
            ).tranches

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(allocate, range(WORKERS)))
    with_bank = [r for r in results if "bank_example" in r]
    assert len(with_bank) == BANK_LIMIT // (PRINCIPAL // 2)
    assert all(r == {"platform": PRINCIPAL} for r in results if r not in with_bank)
    with db_engine.connect() as conn:
        state = dict(
            conn.execute(select(funder_state.c.funder_id, funder_state.c.outstanding_fen)).all()
        )
        assert state["bank_example"] == BANK_LIMIT
        assert state["platform"] == sum(r["platform"] for r in results)
        assert funder_principal(conn, clock, "bank_example") == BANK_LIMIT
        assert trial_balance(conn).balanced and reconcile(conn) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_conservation_over_random_lives(db_engine: Engine, seed: int) -> None:
    """Purchases funded by the program or the platform, random repayments split among funders
    (with their income), charge-offs, waivers and recoveries (booked in funding only, so a plan
    with a loss is repaid no more): every plan's tranches add up to
    its principal outstanding, each funder's ledger principal equals its tranches and its state
    row, the trial balance stays zero and every account reconciles."""
    rng = random.Random(seed)
    clock = FixedClock.on(DAY)
    tight = with_limits(CATALOG, "bank_example", total_outstanding_fen=400_000)
    lost: dict[int, int] = defaultdict(int)  # principal charged off or waived in funding only
    plans: list[tuple[int, int]] = []
    retired: set[int] = set()  # plans with a loss booked in funding only: no longer repaid
    with db_engine.begin() as conn:
        for i in range(8):
            who = f"s{i}"  # one plan per account: a loss below retires the account
            acct, plan_id = sell(conn, clock, who, rng.randint(10_000, 200_000) + i)
            borrower = GOOD if rng.random() < 0.7 else Borrower("huabei", 12, age=19)
            principal = conn.execute(
                select(func.sum(plan_lines.c.principal_fen)).where(plan_lines.c.plan_id == plan_id)
            ).scalar_one()
            allocate_plan(
                conn,
                clock,
                tight,
                plan_id=plan_id,
                credit_account_id=acct,
                principal_fen=int(principal),
                currency="CNY",
                borrower=borrower,
                client_id=f"cap-{plan_id}",
            )
            plans.append((acct, plan_id))
        for step in range(25):
            clock.advance(timedelta(days=rng.randint(1, 20)))
            acct, plan_id = rng.choice(plans)
            roll = rng.random()
            if roll < 0.85 and plan_id in retired:
                continue
            if roll < 0.6:
                amount = rng.randint(1, 60_000)
                try:
                    paid = credit.repay(conn, clock, HUABEI, acct, amount, f"r{step}")
                except CreditError as exc:  # more than owed: huabei takes no overpayment
                    if exc.code != "overpayment_too_large":
                        raise
                    if exc.detail["owed_fen"] <= 0:
                        continue
                    paid = credit.repay(
                        conn, clock, HUABEI, acct, exc.detail["owed_fen"], f"r{step}"
                    )
                parts = conn.execute(
                    select(
                        repayment_parts.c.plan_id,
                        repayment_parts.c.kind,
                        func.sum(repayment_parts.c.amount_fen),
                    )
                    .where(
                        repayment_parts.c.repayment_id == paid.repayment_id,
                        repayment_parts.c.plan_id.is_not(None),
                    )
                    .group_by(repayment_parts.c.plan_id, repayment_parts.c.kind)
                ).all()
                by_plan: dict[int, dict[str, int]] = defaultdict(dict)
                for pid, kind, amount in parts:
                    by_plan[int(pid)][str(kind)] = int(amount)
                for pid, kinds in sorted(by_plan.items()):
                    apply_cash(
                        conn,
                        clock,
                        tight,
                        plan_id=pid,
                        kind=CashKind.REPAYMENT,
                        principal_fen=kinds.pop("principal", 0),
                        income_fen=kinds,
                        period_days=30,
                        client_id=f"r{step}-{pid}",
                    )
            elif roll < 0.85:
                room = sum(tranches_of(conn, plan_id).values())
                if room:
                    kind = rng.choice([CashKind.CHARGE_OFF, CashKind.WAIVER])
                    amount = rng.randint(1, room)
                    apply_cash(
                        conn,
                        clock,
                        tight,
                        plan_id=plan_id,
                        kind=kind,
                        principal_fen=amount,
                        client_id=f"l{step}",
                    )
                    lost[plan_id] += amount
                    retired.add(plan_id)
            else:
                rows = (
                    conn.execute(
                        select(funding_tranches).where(funding_tranches.c.plan_id == plan_id)
                    )
                    .mappings()
                    .all()
                )
                room = sum(r["charged_off_fen"] - r["recovered_fen"] for r in rows)
                if room:
                    split = apply_cash(
                        conn,
                        clock,
                        tight,
                        plan_id=plan_id,
                        kind=CashKind.RECOVERY,
                        principal_fen=rng.randint(1, room),
                        client_id=f"v{step}",
                    )
                    # a replay changes nothing and returns the same split
                    again = apply_cash(
                        conn,
                        clock,
                        tight,
                        plan_id=plan_id,
                        kind=CashKind.RECOVERY,
                        principal_fen=1,
                        client_id=f"v{step}",
                    )
                    assert again.replayed and again.principal == split.principal
            for _acct, pid in plans:
                assert (
                    sum(tranches_of(conn, pid).values()) == plan_outstanding(conn, pid) - lost[pid]
                )
        per_funder = dict(
            conn.execute(
                select(
                    funding_tranches.c.funder_id, func.sum(funding_tranches.c.outstanding_fen)
                ).group_by(funding_tranches.c.funder_id)
            ).all()
        )
        state = dict(
            conn.execute(select(funder_state.c.funder_id, funder_state.c.outstanding_fen)).all()
        )
        for funder, total in per_funder.items():
            assert funder_principal(conn, clock, funder) == int(total) == state[funder]
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_bad_cash_is_refused_and_changes_nothing(db_engine: Engine) -> None:
    clock = FixedClock.on(DAY)
    with db_engine.begin() as conn:
        acct, plan_id = sell(conn, clock, "s1", 10_000)
        allocate_plan(
            conn,
            clock,
            CATALOG,
            plan_id=plan_id,
            credit_account_id=acct,
            principal_fen=10_000,
            currency="CNY",
            borrower=GOOD,
            client_id="c",
        )
        with pytest.raises(FundingError) as err:
            apply_cash(
                conn,
                clock,
                CATALOG,
                plan_id=plan_id,
                kind=CashKind.REPAYMENT,
                principal_fen=10_001,
                client_id="too-much",
            )
        assert err.value.code == "exceeds_outstanding"
        with pytest.raises(FundingError) as err:
            apply_cash(
                conn,
                clock,
                CATALOG,
                plan_id=plan_id + 999,
                kind=CashKind.REPAYMENT,
                principal_fen=1,
                client_id="x",
            )
        assert err.value.code == "plan_not_funded"
        apply_cash(
            conn,
            clock,
            CATALOG,
            plan_id=plan_id,
            kind=CashKind.REPAYMENT,
            principal_fen=100,
            client_id="ok",
        )
        with pytest.raises(FundingError) as err:
            apply_cash(
                conn,
                clock,
                CATALOG,
                plan_id=plan_id,
                kind=CashKind.REFUND,
                principal_fen=100,
                client_id="ok",
            )
        assert err.value.code == "idempotency_conflict"
        assert sum(tranches_of(conn, plan_id).values()) == 9_900


@pytest.mark.parametrize("losses", [LossRule.PRO_RATA, LossRule.PLATFORM_GUARANTEE])
def test_day_settlement_agrees_with_the_ledger(db_engine: Engine, losses: LossRule) -> None:
    """A day's figures per funder (disbursed, collected, income, losses, recoveries, due either
    way) add up the day's tranches and movements, agree with the ledger to the fen, and a second
    run of the date writes the same figures."""
    clock = FixedClock.on(DAY)
    program = CATALOG.programs["colending_example"].model_copy(update={"losses": losses})
    catalog = CATALOG.model_copy(update={"programs": {program.id: program}})
    with db_engine.begin() as conn:
        acct, p1 = sell(conn, clock, "s1", 100_000)
        allocate_plan(
            conn,
            clock,
            catalog,
            plan_id=p1,
            credit_account_id=acct,
            principal_fen=100_000,
            currency="CNY",
            borrower=GOOD,
            client_id="a1",
        )
        apply_cash(
            conn,
            clock,
            catalog,
            plan_id=p1,
            kind=CashKind.REPAYMENT,
            principal_fen=10_000,
            income_fen={"fee": 1_000, "penalty": 50},
            period_days=30,
            client_id="r1",
        )
        apply_cash(
            conn,
            clock,
            catalog,
            plan_id=p1,
            kind=CashKind.CHARGE_OFF,
            principal_fen=20_000,
            client_id="c1",
        )
        apply_cash(
            conn,
            clock,
            catalog,
            plan_id=p1,
            kind=CashKind.RECOVERY,
            principal_fen=5_000,
            client_id="v1",
        )
        first = settle_day(conn, clock, catalog, DAY)
        again = settle_day(conn, clock, catalog, DAY)
        assert first == again
        rows = conn.execute(select(funding_settlements)).mappings().all()
        assert len(rows) == 3
        assert check_against_ledger(conn, catalog, DAY) == []
        bank = next(f for f in first if f.funder_id == "bank_example")
        assert bank.disbursed_fen == 50_000
        assert bank.principal_collected_fen == 5_000
        assert bank.losses_fen == 10_000 and bank.recoveries_fen == 2_500
        # the bank's yield on 50,000 for 30 days at 6% is 246 fen, under its 500 share of fees
        assert bank.income_collected_fen == 246
        guaranteed = losses is LossRule.PLATFORM_GUARANTEE
        due = 5_000 + 246 + (10_000 if guaranteed else 2_500)
        assert bank.due_to_funder_fen == due - 50_000
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_concurrent_allocations_and_repayments_keep_the_books(db_engine: Engine) -> None:
    """Allocations and repayment splits on the same funders at once: they take the funders'
    rows and then the ledger's in one order, so none deadlocks, and the funders' state, tranches
    and ledger agree afterwards."""
    clock = FixedClock.on(DAY)
    half = 12
    with db_engine.begin() as conn:
        funded = [sell(conn, clock, f"f{i}", PRINCIPAL) for i in range(half)]
        for acct, plan_id in funded:
            allocate_plan(
                conn,
                clock,
                CATALOG,
                plan_id=plan_id,
                credit_account_id=acct,
                principal_fen=PRINCIPAL,
                currency="CNY",
                borrower=GOOD,
                client_id=f"a{plan_id}",
            )
        fresh = [sell(conn, clock, f"n{i}", PRINCIPAL) for i in range(half)]
    start = threading.Barrier(2 * half)

    def work(i: int) -> None:
        start.wait()
        with db_engine.begin() as conn:
            if i < half:
                acct, plan_id = fresh[i]
                allocate_plan(
                    conn,
                    clock,
                    CATALOG,
                    plan_id=plan_id,
                    credit_account_id=acct,
                    principal_fen=PRINCIPAL,
                    currency="CNY",
                    borrower=GOOD,
                    client_id=f"a{plan_id}",
                )
            else:
                apply_cash(
                    conn,
                    clock,
                    CATALOG,
                    plan_id=funded[i - half][1],
                    kind=CashKind.REPAYMENT,
                    principal_fen=4_000,
                    income_fen={"fee": 300},
                    period_days=30,
                    client_id=f"r{i}",
                )

    with ThreadPoolExecutor(2 * half) as pool:
        list(pool.map(work, range(2 * half)))
    with db_engine.connect() as conn:
        state = dict(
            conn.execute(select(funder_state.c.funder_id, funder_state.c.outstanding_fen)).all()
        )
        assert sum(state.values()) == 2 * half * PRINCIPAL - half * 4_000
        for funder, total in state.items():
            assert funder_principal(conn, clock, funder) == total
        assert trial_balance(conn).balanced and reconcile(conn) == []
