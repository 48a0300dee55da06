"""Ledger behaviour on SQLite and PostgreSQL: holds, posts, voids, expiry, reversals, replays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from fenqi.clock import FixedClock
from fenqi.ledger.entry import (
    EntryKind,
    EntryRequest,
    EntryStatus,
    IdempotencyConflict,
    LedgerError,
    PostingSpec,
    RejectCode,
)
from fenqi.ledger.service import (
    expire_pending,
    get_balance,
    history,
    post_entry,
    reconcile,
    resolve_pending,
    reverse_entry,
    set_debit_cap,
    trial_balance,
    void_pending,
)
from fenqi.store.schema.ledger import ledger_balances
from support.ledger_world import make_world


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 4, 0, tzinfo=UTC))


def hold(
    world_principal: int, merchant: int, amount: int, cid: str, timeout: datetime | None = None
) -> EntryRequest:
    return EntryRequest(
        cid,
        "CNY",
        (PostingSpec(world_principal, merchant, amount, "principal"),),
        pending=True,
        timeout_at=timeout,
    )


def test_hold_post_partial_and_limit(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock, limit_fen=100_000)
        r = post_entry(conn, clock, hold(w.principal, w.merchant, 60_000, "auth-1"))
        assert r.ok and r.status is EntryStatus.PENDING
        assert get_balance(conn, w.principal).available_fen == 40_000
        # a second hold that does not fit is rejected, and nothing moves
        r2 = post_entry(conn, clock, hold(w.principal, w.merchant, 50_000, "auth-2"))
        assert not r2.ok and r2.reject_code is RejectCode.INSUFFICIENT_CREDIT
        assert get_balance(conn, w.principal).available_fen == 40_000
        # capture 45,000 of the 60,000 in two parts; then void the rest
        resolve_pending(conn, clock, "cap-1", r.entry_id, [30_000], final=False)
        resolve_pending(conn, clock, "cap-2", r.entry_id, [15_000], final=False)
        bal = get_balance(conn, w.principal)
        assert (bal.debits_posted, bal.debits_pending) == (45_000, 15_000)
        with pytest.raises(LedgerError) as err:
            resolve_pending(conn, clock, "cap-3", r.entry_id, [20_000], final=False)
        assert err.value.code == "amount_exceeds_pending"
        void_pending(conn, clock, "void-1", r.entry_id)
        bal = get_balance(conn, w.principal)
        assert (bal.debits_posted, bal.debits_pending, bal.available_fen) == (45_000, 0, 55_000)
        with pytest.raises(LedgerError) as err:
            void_pending(conn, clock, "void-2", r.entry_id)
        assert err.value.code == "pending_already_resolved"
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_replay_returns_original_and_conflict_is_refused(
    db_engine: Engine, clock: FixedClock
) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        req = EntryRequest("buy-1", "CNY", (PostingSpec(w.principal, w.merchant, 10_000),))
        first = post_entry(conn, clock, req)
        again = post_entry(conn, clock, req)
        assert again.replayed and again.entry_id == first.entry_id
        assert get_balance(conn, w.principal).debits_posted == 10_000  # booked once
        other = EntryRequest("buy-1", "CNY", (PostingSpec(w.principal, w.merchant, 10_001),))
        with pytest.raises(IdempotencyConflict):
            post_entry(conn, clock, other)
        # a rejected id keeps failing even after room appears (TigerBeetle's rule)
        big = EntryRequest("buy-2", "CNY", (PostingSpec(w.principal, w.merchant, 95_000),))
        assert post_entry(conn, clock, big).reject_code is RejectCode.INSUFFICIENT_CREDIT
        set_debit_cap(conn, w.principal, 1_000_000)
        assert post_entry(conn, clock, big).reject_code is RejectCode.INSUFFICIENT_CREDIT


def test_receivable_cannot_go_below_zero(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        post_entry(
            conn, clock, EntryRequest("buy", "CNY", (PostingSpec(w.principal, w.merchant, 5_000),))
        )
        over = EntryRequest("repay", "CNY", (PostingSpec(w.cash, w.principal, 5_001),))
        assert post_entry(conn, clock, over).reject_code is RejectCode.EXCEEDS_DEBITS
        # the overpaid fen go to the customer's credit balance instead
        split = EntryRequest(
            "repay-2",
            "CNY",
            (PostingSpec(w.cash, w.principal, 5_000), PostingSpec(w.cash, w.credit_balance, 1)),
        )
        assert post_entry(conn, clock, split).ok
        spend = EntryRequest("use", "CNY", (PostingSpec(w.credit_balance, w.cash, 2),))
        assert post_entry(conn, clock, spend).reject_code is RejectCode.EXCEEDS_CREDITS


def test_expiry_releases_holds_once(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        r = post_entry(
            conn,
            clock,
            hold(w.principal, w.merchant, 20_000, "a", clock.now() + timedelta(hours=1)),
        )
        assert expire_pending(conn, clock) == 0
        clock.advance(timedelta(hours=2))
        assert expire_pending(conn, clock) == 1
        assert expire_pending(conn, clock) == 0
        assert get_balance(conn, w.principal).available_fen == 100_000
        with pytest.raises(LedgerError):
            resolve_pending(conn, clock, "late-capture", r.entry_id)


def test_reversal_mirrors_once_and_ignores_a_lowered_limit(
    db_engine: Engine, clock: FixedClock
) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        buy = post_entry(
            conn, clock, EntryRequest("buy", "CNY", (PostingSpec(w.principal, w.merchant, 9_000),))
        )
        repay = post_entry(
            conn, clock, EntryRequest("repay", "CNY", (PostingSpec(w.cash, w.principal, 4_000),))
        )
        set_debit_cap(conn, w.principal, 0)  # account frozen: limit cut to zero
        rev = reverse_entry(conn, clock, "rev-1", repay.entry_id, "payment bounced")
        assert rev.ok and rev.kind is EntryKind.REVERSAL
        assert get_balance(conn, w.principal).net_debit_posted == 9_000
        with pytest.raises(LedgerError) as err:
            reverse_entry(conn, clock, "rev-2", repay.entry_id, "again")
        assert err.value.code == "already_reversed"
        with pytest.raises(LedgerError):
            reverse_entry(conn, clock, "rev-3", buy.entry_id, " ")
        lines = history(conn, w.principal)
        assert [(x["side"], x["amount_fen"]) for x in lines] == [
            ("debit", 9_000),
            ("credit", 4_000),
            ("debit", 4_000),
        ]
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_reconcile_finds_a_tampered_balance(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        post_entry(
            conn, clock, EntryRequest("buy", "CNY", (PostingSpec(w.principal, w.merchant, 100),))
        )
        conn.execute(
            update(ledger_balances)
            .where(ledger_balances.c.account_id == w.principal)
            .values(debits_posted=ledger_balances.c.debits_posted + 1)
        )
        bad = reconcile(conn)
        assert [row["id"] for row in bad] == [w.principal]
        assert not trial_balance(conn).balanced


def test_currency_mismatch_is_rejected(db_engine: Engine, clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        w = make_world(conn, clock)
        r = post_entry(
            conn, clock, EntryRequest("usd", "USD", (PostingSpec(w.principal, w.merchant, 1),))
        )
        assert r.reject_code is RejectCode.CURRENCY_MISMATCH


def test_bad_requests_are_refused_before_touching_anything() -> None:
    with pytest.raises(LedgerError):
        PostingSpec(1, 2, 0)
    with pytest.raises(LedgerError):
        PostingSpec(1, 1, 5)
    with pytest.raises(LedgerError):
        EntryRequest("", "CNY", (PostingSpec(1, 2, 5),))


def test_an_entry_and_its_follow_up_post_together_or_are_refused_together(
    db_engine: Engine, clock: FixedClock
) -> None:
    """`post_entry(..., then=...)`: a sale and its plan's fee move their balances in the same
    statements; a refused sale refuses its follow-up with it; a refused follow-up leaves the
    sale posted; a replay does not ask for the follow-up again."""
    with db_engine.begin() as conn:
        w = make_world(conn, clock, limit_fen=100_000)
        asked: list[int] = []

        def fee(cid: str, amount: int, debit: int | None = None) -> Callable[[int], EntryRequest]:
            def then(entry_id: int) -> EntryRequest:
                asked.append(entry_id)
                spec = PostingSpec(debit or w.fee, w.fee_income, amount, "fee")
                return EntryRequest(cid, "CNY", (spec,))

            return then

        def sale(cid: str, amount: int) -> EntryRequest:
            return EntryRequest(cid, "CNY", (PostingSpec(w.principal, w.merchant, amount, "p"),))

        r = post_entry(conn, clock, sale("sale-1", 60_000), then=fee("sale-1:plan", 1_000))
        assert r.ok and r.status is EntryStatus.POSTED and asked == [r.entry_id]
        follow = r.extra["then"]
        assert follow.ok and follow.status is EntryStatus.POSTED
        principal, fees = get_balance(conn, w.principal), get_balance(conn, w.fee)
        assert (principal.debits_posted, principal.available_fen) == (60_000, 40_000)
        assert fees.debits_posted == 1_000
        assert [p["amount_fen"] for p in history(conn, w.fee_income)] == [1_000]

        again = post_entry(conn, clock, sale("sale-1", 60_000), then=fee("sale-1:plan", 1_000))
        assert again.replayed and again.entry_id == r.entry_id and len(asked) == 1

        # more than the credit left: both refused, nothing moves, no postings
        big = post_entry(conn, clock, sale("sale-2", 50_000), then=fee("sale-2:plan", 500))
        assert big.reject_code is RejectCode.INSUFFICIENT_CREDIT
        assert big.extra["then"].reject_code is RejectCode.INSUFFICIENT_CREDIT
        assert get_balance(conn, w.principal).available_fen == 40_000
        assert get_balance(conn, w.fee).debits_posted == 1_000

        # the follow-up spends a credit balance the shopper does not have: the sale posts alone
        odd = post_entry(
            conn, clock, sale("sale-3", 10_000), then=fee("sale-3:plan", 700, w.credit_balance)
        )
        assert odd.ok and not odd.extra["then"].ok
        assert odd.extra["then"].reject_code is RejectCode.EXCEEDS_CREDITS
        assert get_balance(conn, w.principal).available_fen == 30_000
        assert get_balance(conn, w.credit_balance).debits_posted == 0
        assert trial_balance(conn).balanced and reconcile(conn) == []
