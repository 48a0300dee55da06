"""Money under concurrency (issue 25, items 1, 2 and 11): operations that race on one shop's
payable or one shopper's plans, run in threads at once on SQLite and PostgreSQL. Whatever the
interleaving, each either does its work on fresh figures or is refused with a clear code, and
the deep reconciliation (plans against receivables, orders against plans, payables against
payouts) finds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from fenqi.clock import FixedClock
from fenqi.credit import checkout, conversion, payoff
from fenqi.credit import service as credit
from fenqi.credit.errors import CreditError
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.service import get_balance, reconcile, trial_balance
from fenqi.products import load_catalog
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.parties import merchants

CATALOG = load_catalog(2400)
PRODUCT = CATALOG["huabei"]
DAY = date(2026, 1, 2)
CAP_BP = 2400

# refusals a racing operation may get when another changed what it was about
EXPECTED_REFUSALS = {
    "nothing_to_pay",
    "not_convertible",
    "plan_not_open",
    "payoff_amount_mismatch",
    "refund_exceeds_purchase",
}


@dataclass
class Outcome:
    ok: bool
    code: str = ""
    value: Any = None


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    create_all(eng)
    yield eng
    eng.dispose()


def _shop(engine: Engine, clock: FixedClock, merchant_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id=merchant_id,
                name=merchant_id,
                category="electronics",
                status="active",
                created_at=clock.now(),
            )
        )


def _sale(
    engine: Engine,
    clock: FixedClock,
    account: int,
    merchant: str,
    amount: int,
    terms: int,
    ref: str,
) -> dict[str, Any]:
    with engine.begin() as conn:
        return checkout.authorize_order(
            conn,
            clock,
            PRODUCT,
            merchant_id=merchant,
            credit_account_id=account,
            amount_fen=amount,
            terms=terms,
            merchant_order_ref=ref,
            client_id=f"{merchant}:{ref}",
            cap_bp=CAP_BP,
            hold_seconds=3600,
            capture=True,
        )


def _job(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
    """`fn(conn, *args, **kwargs)` once given a connection: the arguments are bound now."""
    return lambda conn: fn(conn, *args, **kwargs)


def _race(engine: Engine, jobs: list[Callable[[Any], Any]]) -> list[Outcome]:
    """Run each job in its own transaction, all released at once; a CreditError is a refusal,
    anything else (a CHECK constraint, a deadlock) is reported as it is."""
    gate = threading.Barrier(len(jobs))

    def run(job: Callable[[Any], Any]) -> Outcome:
        gate.wait()
        try:
            with engine.begin() as conn:
                return Outcome(True, value=job(conn))
        except CreditError as exc:
            return Outcome(False, exc.code)
        except Exception as exc:  # the test reports what escaped
            return Outcome(False, f"{type(exc).__name__}: {exc}".splitlines()[0])

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


@contextmanager
def _world(engine: Engine) -> Iterator[FixedClock]:
    clock = FixedClock.on(DAY, hour=10)
    _shop(engine, clock, "m1")
    yield clock
    with engine.connect() as conn:
        assert trial_balance(conn).balanced
        assert reconcile(conn) == []


# ------------------------------------------------------------------ 1. payouts


PAYOUTS = 12


def test_concurrent_payouts_pay_a_shop_once(engine: Engine) -> None:
    with _world(engine) as clock:
        with engine.begin() as conn:
            account = credit.open_credit_account(conn, clock, PRODUCT, "s1", 2_000_000)
        _sale(engine, clock, account, "m1", 793_778, 3, "o-1")
        with engine.connect() as conn:
            owed = checkout.settlement(conn, clock, "m1", "CNY")["owed_fen"]
        assert owed > 0
        results = _race(
            engine,
            [_job(checkout.pay_out, clock, "m1", "CNY", f"payout-{i}") for i in range(PAYOUTS)],
        )
        paid = [r.value for r in results if r.ok]
        assert paid == [owed], results
        assert {r.code for r in results if not r.ok} == {"nothing_to_pay"}, results
        with engine.connect() as conn:
            assert checkout.settlement(conn, clock, "m1", "CNY")["owed_fen"] == 0
            assert deep_reconcile(conn).ok, deep_reconcile(conn).differences


def test_a_payout_racing_a_refund_never_pays_what_the_refund_took(engine: Engine) -> None:
    """A refund and a payout serialize on the shop's payable: the payout pays what is owed
    after the refund, or the refund comes after the payout and the shop owes it."""
    with _world(engine) as clock:
        with engine.begin() as conn:
            account = credit.open_credit_account(conn, clock, PRODUCT, "s1", 2_000_000)
        for round_ in range(4):
            order = _sale(engine, clock, account, "m1", 50_000, 0, f"o-{round_}")
            results = _race(
                engine,
                [
                    _job(checkout.pay_out, clock, "m1", "CNY", f"p-{round_}"),
                    _job(
                        checkout.refund_order,
                        clock,
                        PRODUCT,
                        merchant_id="m1",
                        order_id=order["id"],
                        amount_fen=20_000,
                        client_id=f"m1:refund-{round_}",
                    ),
                ],
            )
            assert all(r.ok or r.code == "nothing_to_pay" for r in results), results
            with engine.connect() as conn:
                report = deep_reconcile(conn)
                assert report.ok, report.differences


# ------------------------------------------------------------------ 2. conversion vs repayment

ROUNDS = 20


def _plan_of(engine: Engine, order_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(plans.c.id).where(plans.c.order_ref == f"order:{order_id}:1")
            ).scalar_one()
        )


def test_conversion_racing_a_repayment_never_bills_what_was_paid(engine: Engine) -> None:
    with _world(engine) as clock:
        failed = []
        for n in range(ROUNDS):
            with engine.begin() as conn:
                account = credit.open_credit_account(conn, clock, PRODUCT, f"s{n}", 2_000_000)
            order = _sale(engine, clock, account, "m1", 20_000, 0, f"o-{n}")
            plan_id = _plan_of(engine, order["id"])
            results = _race(
                engine,
                [
                    _job(
                        conversion.convert,
                        clock,
                        PRODUCT,
                        account,
                        [plan_id],
                        3,
                        CAP_BP,
                        f"conv-{n}",
                    ),
                    _job(credit.repay, clock, PRODUCT, account, 7_000, f"pay-{n}"),
                ],
            )
            with engine.connect() as conn:
                report = deep_reconcile(conn, credit_account_ids=[account])
                principal = get_balance(
                    conn,
                    credit.customer_account(
                        conn, clock, account, AccountCode.PRINCIPAL_RECEIVABLE, "CNY"
                    ),
                ).net_debit_posted
                owed = credit.account_summary(conn, account, clock.today())["owed_fen"]
            # the repayment always goes through; the conversion, if it comes second, is refused
            # (after a conversion its fee comes first in the allocation order)
            fine = results[1].ok and (results[0].ok or results[0].code == "not_convertible")
            paid = results[1].value.by_kind_fen["principal"] if results[1].ok else 0
            if not (fine and report.ok and principal == 20_000 - paid and owed >= principal):
                failed.append((n, results, report.differences))
        assert failed == [], f"{len(failed)} of {ROUNDS} rounds failed: {failed[:2]}"


def test_mixed_conversion_payoff_refund_and_repayment_races(engine: Engine) -> None:
    with _world(engine) as clock:
        failed = []
        for n in range(ROUNDS):
            with engine.begin() as conn:
                account = credit.open_credit_account(conn, clock, PRODUCT, f"s{n}", 2_000_000)
            cycle = _sale(engine, clock, account, "m1", 20_000, 0, f"c-{n}")
            inst = _sale(engine, clock, account, "m1", 30_000, 3, f"i-{n}")
            cycle_plan, inst_plan = _plan_of(engine, cycle["id"]), _plan_of(engine, inst["id"])
            with engine.connect() as conn:
                quote = payoff.quote_payoff(conn, PRODUCT, account, inst_plan, clock.today())
            results = _race(
                engine,
                [
                    _job(
                        conversion.convert,
                        clock,
                        PRODUCT,
                        account,
                        [cycle_plan],
                        3,
                        CAP_BP,
                        f"conv-{n}",
                    ),
                    _job(
                        payoff.pay_off,
                        clock,
                        PRODUCT,
                        account,
                        inst_plan,
                        quote.total_fen,
                        f"payoff-{n}",
                    ),
                    _job(
                        checkout.refund_order,
                        clock,
                        PRODUCT,
                        merchant_id="m1",
                        order_id=cycle["id"],
                        amount_fen=5_000,
                        client_id=f"m1:refund-c-{n}",
                    ),
                    _job(
                        checkout.refund_order,
                        clock,
                        PRODUCT,
                        merchant_id="m1",
                        order_id=inst["id"],
                        amount_fen=10_000,
                        client_id=f"m1:refund-i-{n}",
                    ),
                    _job(credit.repay, clock, PRODUCT, account, 7_000, f"pay-{n}"),
                ],
            )
            unexpected = [r for r in results if not r.ok and r.code not in EXPECTED_REFUSALS]
            with engine.connect() as conn:
                report = deep_reconcile(conn, credit_account_ids=[account])
            if unexpected or not report.ok:
                failed.append((n, results, report.differences))
        assert failed == [], f"{len(failed)} of {ROUNDS} rounds failed: {failed[:2]}"


def test_refunds_and_repayments_on_one_order_are_serialized(engine: Engine) -> None:
    """A refund and a repayment on the same purchase: never a CHECK-constraint failure."""
    with _world(engine) as clock:
        failed = []
        for n in range(ROUNDS):
            with engine.begin() as conn:
                account = credit.open_credit_account(conn, clock, PRODUCT, f"s{n}", 2_000_000)
            order = _sale(engine, clock, account, "m1", 30_000, 3, f"o-{n}")
            results = _race(
                engine,
                [
                    _job(
                        checkout.refund_order,
                        clock,
                        PRODUCT,
                        merchant_id="m1",
                        order_id=order["id"],
                        amount_fen=30_000,
                        client_id=f"m1:refund-{n}",
                    ),
                    _job(credit.repay, clock, PRODUCT, account, 25_000, f"pay-{n}"),
                ],
            )
            with engine.connect() as conn:
                report = deep_reconcile(conn, credit_account_ids=[account])
            refund, repayment = results
            # when the refund goes first nothing is owed any more, and the product allows no
            # overpayment: the repayment is refused by that rule, never by a constraint
            repayment_ok = repayment.ok or (refund.ok and repayment.code == "overpayment_too_large")
            if not refund.ok or not repayment_ok or not report.ok:
                failed.append((n, results, report.differences))
        assert failed == [], f"{len(failed)} of {ROUNDS} rounds failed: {failed[:2]}"
