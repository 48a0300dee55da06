"""The end of day beside live traffic (issue 25, found by the VOPR harness on PostgreSQL).

Each test interleaves an online call and the end of day (or its expiry of holds) in a fixed
order, with two connections and a thread, on SQLite and PostgreSQL:

- the end of day takes a partition's credit-account locks before it reads or writes anything
  of theirs, so a call holding an account's row is waited for, never worked around (a hardship
  plan that had read the charges is not overtaken by the day's accrual);
- a hold that expires while a capture or a void of the same order runs resolves one way, with
  no `pending_already_resolved` from either side;
- a hardship plan waives the charges it read and posts, not what the row holds by the time it
  is written (the 13-fen penalty difference `deep_reconcile` found).

"Blocked" is observed, not timed: on PostgreSQL the test waits until one of its own connections
(named by `application_name`) waits for a lock, or the other side has finished. On SQLite every
transaction takes the database's write lock at BEGIN, so the second side simply queues; the
test gives it a moment to get there, and the outcome is the same whichever way it goes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

import fenqi.batch.partitions as partitions
import fenqi.credit.hardship as hardship
from fenqi.batch.eod import run_eod
from fenqi.clock import FixedClock
from fenqi.credit import checkout
from fenqi.credit import service as credit
from fenqi.credit.accounts import get_account
from fenqi.credit.errors import CreditError
from fenqi.credit.hardship import restructure
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.service import expire_hold, expire_pending, void_pending
from fenqi.store.engine import make_engine
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.ledger import ledger_entries
from fenqi.store.schema.parties import merchants, orders
from support.billing_world import World

LATE_ON = date(2026, 2, 11)  # a purchase of 2 January, unpaid, is late from this end of day
SHOP = "m_race"


class Racer(threading.Thread):
    """Runs `work` in a thread and keeps its result or the exception it raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work, self.result = work, None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    if db_url.startswith("postgresql"):
        db_url += f"&application_name=race-{uuid.uuid4().hex[:12]}"
    w = World(db_url, date(2026, 1, 2))
    yield w
    w.close()


def _app(world: World) -> str | None:
    url = world.ctx.engine.url
    return None if url.get_backend_name() == "sqlite" else str(url.query["application_name"])


def wait_until_blocked(world: World, other: threading.Thread) -> bool:
    """Until `other` has finished (False) or, on PostgreSQL, one of this test's connections
    waits for a lock (True). On SQLite: a moment for `other` to reach the write lock."""
    app = _app(world)
    if app is None:
        other.join(0.5)
        return other.is_alive()
    monitor = make_engine(world.ctx.settings.database_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(3000):
            if not other.is_alive():
                return False
            with monitor.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = :app AND wait_event_type = 'Lock'"
                    ),
                    {"app": app},
                ).scalar_one()
            if waiting:
                return True
            time.sleep(0.01)
    finally:
        monitor.dispose()
    raise AssertionError("neither blocked nor finished in 30 s")


def _late_account(world: World) -> int:
    """An account late since the end of day of LATE_ON, with a day's penalty accrued; the
    clock stands on the next day at 23:00, when its end of day runs."""
    account = world.open()
    world.buy(account, 50_000, 0)
    world.go_to(LATE_ON + timedelta(days=1))
    assert world.accrued(account)["penalty"] > 0
    world.clock.set(FixedClock.on(LATE_ON + timedelta(days=1), hour=23).now())
    return account


def test_eod_waits_for_a_call_holding_an_account_and_does_not_overtake_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hardship plan (waiving charges) holds the account and has read its charges when the
    end of day starts. The end of day must wait for it (the account's lock is its first), not
    accrue the day's penalty underneath it: before the fix it did, and the plan then waived the
    new penalty too while posting only what it had read."""
    account = _late_account(world)
    day = world.clock.today()
    read, go = threading.Event(), threading.Event()
    real: Callable[..., int] = vars(hardship)["platform_account"]

    def pause_after_reading(*args: Any, **kwargs: Any) -> int:
        if not read.is_set():  # called once the plan has read the charges it waives
            read.set()
            assert go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(hardship, "platform_account", pause_after_reading)

    def plan() -> int:
        with world.ctx.engine.begin() as conn:
            return restructure(
                conn,
                world.clock,
                world.product,
                account,
                6,
                waive_charges=True,
                client_id="hardship-race",
            )

    call = Racer(plan)
    call.start()
    assert read.wait(60)
    eod = Racer(lambda: run_eod(world.ctx, day))
    eod.start()
    blocked = wait_until_blocked(world, eod)
    go.set()
    call.join(60)
    eod.join(120)
    assert call.error is None, call.error
    assert eod.error is None, eod.error
    assert blocked, "the end of day ran past an account a call held"
    world.books_balance()
    world.receivables_equal_owed(account)


def test_a_hardship_waiver_waives_what_it_read_when_a_charge_lands_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiver's own guard, with the end of day's account lock taken away (as before the
    fix): the day's penalty lands between the plan reading the charges and writing them. The
    plan must waive and post the same amount, leaving the new penalty owed on both sides."""
    account = _late_account(world)
    day = world.clock.today()
    monkeypatch.setattr(partitions, "lock_account_range", lambda *_args: 0)
    read, go = threading.Event(), threading.Event()
    real: Callable[..., int] = vars(hardship)["platform_account"]

    def pause_after_reading(*args: Any, **kwargs: Any) -> int:
        if not read.is_set():
            read.set()
            assert go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(hardship, "platform_account", pause_after_reading)

    def plan() -> int:
        with world.ctx.engine.begin() as conn:
            return restructure(
                conn, world.clock, world.product, account, 6, waive_charges=True, client_id="hw"
            )

    call = Racer(plan)
    call.start()
    assert read.wait(60)
    eod = Racer(lambda: run_eod(world.ctx, day))
    eod.start()
    wait_until_blocked(world, eod)  # PostgreSQL: the day commits; SQLite: it queues
    go.set()
    call.join(60)
    eod.join(120)
    assert call.error is None, call.error
    assert eod.error is None, eod.error
    world.books_balance()
    with world.ctx.engine.connect() as conn:
        accrued, paid, waived = conn.execute(
            select(accruals.c.accrued_fen, accruals.c.paid_fen, accruals.c.waived_fen).where(
                accruals.c.credit_account_id == account, accruals.c.kind == "penalty"
            )
        ).one()
    assert accrued - paid - waived == world.customer(account, AccountCode.PENALTY_RECEIVABLE)


# ---------------------------------------------------------------- holds that expire


def _held_order(world: World) -> tuple[int, dict[str, Any]]:
    """An account with an authorized order whose hold has run out (the clock is past it)."""
    account = world.open()
    with world.ctx.engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id=SHOP,
                name=SHOP,
                category="electronics",
                status="active",
                created_at=world.clock.now(),
            )
        )
        order = checkout.authorize_order(
            conn,
            world.clock,
            world.product,
            merchant_id=SHOP,
            credit_account_id=account,
            amount_fen=12_000,
            terms=0,
            merchant_order_ref="race-1",
            client_id="race-1",
            cap_bp=2400,
            hold_seconds=3600,
        )
    world.clock.set(world.clock.now() + timedelta(hours=2))
    return account, order


def _capture(world: World, order_id: int) -> Callable[[Any], dict[str, Any]]:
    def capture(conn: Any) -> dict[str, Any]:
        return checkout.capture_order(
            conn,
            world.clock,
            world.product,
            merchant_id=SHOP,
            order_id=order_id,
            amount_fen=None,
            final=None,
            client_id="race-capture",
            cap_bp=2400,
        )

    return capture


def _void(world: World, order_id: int) -> Callable[[Any], dict[str, Any]]:
    def void(conn: Any) -> dict[str, Any]:
        return checkout.void_order(
            conn, world.clock, merchant_id=SHOP, order_id=order_id, client_id="race-void"
        )

    return void


def _order_and_hold(world: World, order_id: int) -> tuple[str, str]:
    with world.ctx.engine.connect() as conn:
        status, hold = conn.execute(
            select(orders.c.status, orders.c.hold_entry_id).where(orders.c.id == order_id)
        ).one()
        hold_status = conn.execute(
            select(ledger_entries.c.status).where(ledger_entries.c.id == hold)
        ).scalar_one()
    return str(status), str(hold_status)


@pytest.mark.parametrize("call", ["capture", "void"])
def test_a_call_that_holds_the_order_wins_over_expiry(world: World, call: str) -> None:
    """The shop's capture (or void) has the order and its hold, not yet committed, when the
    hold's expiry runs: expiry leaves that order alone (before the fix it waited for the hold
    and then failed the end of day with `pending_already_resolved`)."""
    _account, order = _held_order(world)
    work = (_capture if call == "capture" else _void)(world, order["id"])
    with world.ctx.engine.connect() as conn:
        trans = conn.begin()
        work(conn)
        expiry = Racer(lambda: _expire(world))
        expiry.start()
        wait_until_blocked(world, expiry)
        trans.commit()
    expiry.join(60)
    assert expiry.error is None, expiry.error
    status, hold = _order_and_hold(world, order["id"])
    assert (status, hold) == ("captured" if call == "capture" else "voided", "resolved")
    assert _expire(world) == 0  # nothing left to expire
    world.books_balance()


@pytest.mark.parametrize("call", ["capture", "void"])
def test_expiry_that_holds_the_order_wins_over_a_call(world: World, call: str) -> None:
    """Expiry has the order and its hold, not yet committed, when the shop's capture (or void)
    comes: the call waits for the order and is refused as for any expired order, never with
    the ledger's `pending_already_resolved`."""
    _account, order = _held_order(world)
    work = (_capture if call == "capture" else _void)(world, order["id"])
    with world.ctx.engine.connect() as conn:
        trans = conn.begin()
        assert checkout.expire_orders(conn, world.clock) == 1
        attempt = Racer(lambda: _in_transaction(world, work))
        attempt.start()
        wait_until_blocked(world, attempt)
        trans.commit()
    attempt.join(60)
    assert isinstance(attempt.error, CreditError), attempt.error
    refused = "order_not_capturable" if call == "capture" else "order_not_voidable"
    assert attempt.error.code == refused
    assert _order_and_hold(world, order["id"]) == ("expired", "resolved")
    world.books_balance()


def test_expiry_inside_the_end_of_day_beside_a_capture(world: World) -> None:
    """The same race through the whole end of day: a capture holds the order (and so the
    account) as `fenqi eod` starts; the run waits or passes the order by, and never fails."""
    account, order = _held_order(world)
    day = world.clock.today()
    world.clock.set(FixedClock.on(day, hour=23).now())
    with world.ctx.engine.connect() as conn:
        trans = conn.begin()
        _capture(world, order["id"])(conn)
        eod = Racer(lambda: run_eod(world.ctx, day))
        eod.start()
        wait_until_blocked(world, eod)
        trans.commit()
    eod.join(120)
    assert eod.error is None, eod.error
    assert _order_and_hold(world, order["id"]) == ("captured", "resolved")
    with world.ctx.engine.connect() as conn:
        assert get_account(conn, account)["status"] == "active"
    world.books_balance()


def _expire(world: World) -> int:
    with world.ctx.engine.begin() as conn:
        return checkout.expire_orders(conn, world.clock)


def _in_transaction(world: World, work: Callable[[Any], Any]) -> Any:
    with world.ctx.engine.begin() as conn:
        return work(conn)


def test_a_bare_hold_resolved_first_is_not_expired(world: World) -> None:
    """`expire_pending` (holds no order names) steps over a hold that was resolved after it
    was listed, instead of raising."""
    account = world.open()
    with world.ctx.engine.begin() as conn:
        hold = credit.authorize(conn, world.clock, account, SHOP, 5_000, "bare", 60)
    world.clock.set(world.clock.now() + timedelta(hours=1))
    with world.ctx.engine.begin() as conn:
        void_pending(conn, world.clock, "void-bare", hold.hold_entry_id)
        assert expire_hold(conn, world.clock, hold.hold_entry_id) is False
        assert expire_pending(conn, world.clock) == 0
    world.books_balance()
