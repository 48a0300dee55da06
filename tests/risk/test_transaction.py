"""Transaction risk: the pure rules, then the service on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from fenqi.clock import FixedClock
from fenqi.risk.transaction import (
    SEVERITY,
    Subject,
    TransactionRiskInput,
    TransactionRiskPolicy,
    TransactionRiskState,
    TxnOutcome,
    VelocityLimit,
    evaluate_transaction,
)
from fenqi.risk.transaction_service import assess_transaction, purge_velocity_counters
from fenqi.store.schema.risk import risk_transaction_assessments, risk_velocity_counters

OPENED = datetime(2025, 1, 1, tzinfo=UTC)  # an established account unless a test says otherwise
POLICY = TransactionRiskPolicy()


def _txn(
    ref: str, amount_fen: int = 10_000, account: str = "acc-1", **kw: object
) -> TransactionRiskInput:
    fields: dict[str, object] = {
        "merchant_category": "apparel",
        "account_opened_at": OPENED,
        "device_id": None,
        "phone_key": None,
    }
    fields.update(kw)
    return TransactionRiskInput(ref, account, amount_fen, **fields)  # type: ignore[arg-type]


def _state(**kw: object) -> TransactionRiskState:
    fields: dict[str, object] = {
        "velocity": {},
        "accounts_on_device": 1,
        "accounts_on_phone": 1,
        "prior_accepted_count": 3,
        "prior_accepted_amount_fen": 50_000,
        "account_age_seconds": 10 * 86_400.0,
    }
    fields.update(kw)
    return TransactionRiskState(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("txn_kw", "state_kw", "outcome", "reason"),
    [
        ({}, {}, "approve", "T00_OK"),
        (
            {},
            {"velocity": {(Subject.ACCOUNT, 3_600): (6, 1_000)}},
            "step_up",
            "T01_ACCOUNT_VELOCITY_COUNT",
        ),
        (
            {},
            {"velocity": {(Subject.ACCOUNT, 86_400): (3, 2_000_001)}},
            "decline",
            "T02_ACCOUNT_VELOCITY_AMOUNT",
        ),
        (
            {},
            {"velocity": {(Subject.DEVICE, 3_600): (11, 0)}},
            "decline",
            "T03_DEVICE_VELOCITY_COUNT",
        ),
        ({}, {"accounts_on_device": 3}, "step_up", "T05_DEVICE_SHARED"),
        ({}, {"accounts_on_device": 5}, "decline", "T05_DEVICE_SHARED"),
        ({}, {"accounts_on_phone": 2}, "decline", "T06_PHONE_SHARED"),
        (
            {"amount_fen": 250_000},
            {
                "prior_accepted_count": 0,
                "prior_accepted_amount_fen": 0,
                "account_age_seconds": 3_600.0,
            },
            "step_up",
            "T07_NEW_ACCOUNT_FIRST_PURCHASE",
        ),
        (
            {"amount_fen": 250_000},
            {"prior_accepted_count": 0, "prior_accepted_amount_fen": 0},
            "approve",
            "T00_OK",
        ),  # the same first purchase on an account 10 days old
        (
            {"amount_fen": 150_000},
            {"prior_accepted_amount_fen": 400_000, "account_age_seconds": 86_400.0},
            "decline",
            "T08_NEW_ACCOUNT_EXPOSURE",
        ),
        (
            {"merchant_category": "gift_cards", "amount_fen": 100_001},
            {},
            "step_up",
            "T09_MERCHANT_CATEGORY_HIGH_RISK",
        ),
        ({"merchant_category": "gift_cards", "amount_fen": 100_000}, {}, "approve", "T00_OK"),
        ({"merchant_category": "gambling"}, {}, "decline", "T10_MERCHANT_CATEGORY_BLOCKED"),
    ],
)
def test_rules(
    txn_kw: dict[str, Any], state_kw: dict[str, object], outcome: str, reason: str
) -> None:
    decision = evaluate_transaction(_txn("t", **txn_kw), _state(**state_kw), POLICY)
    assert (decision.outcome.value, decision.reason_code) == (outcome, reason)


def test_most_severe_hit_decides_and_all_hits_are_listed() -> None:
    decision = evaluate_transaction(
        _txn("t", merchant_category="gift_cards", amount_fen=200_000),
        _state(accounts_on_phone=3),
        POLICY,
    )
    assert decision.outcome is TxnOutcome.DECLINE
    assert decision.reason_codes == ("T06_PHONE_SHARED", "T09_MERCHANT_CATEGORY_HIGH_RISK")


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="amount_fen"):
        _txn("t", amount_fen=0)
    with pytest.raises(TypeError, match="amount_fen must be an int"):
        _txn("t", amount_fen=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        _txn("t", account_opened_at=datetime(2025, 1, 1))


@pytest.fixture
def txn_clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 8, 0, 30, tzinfo=UTC))


def test_account_velocity_steps_up_then_window_slides(
    db_engine: Engine, txn_clock: FixedClock
) -> None:
    outcomes = []
    for i in range(7):
        with db_engine.begin() as conn:
            outcomes.append(assess_transaction(conn, txn_clock, _txn(f"v{i}")).outcome.value)
        txn_clock.advance(timedelta(minutes=1))
    assert outcomes == ["approve"] * 5 + ["step_up"] * 2
    # Two hours later both hourly windows have passed: back to normal.
    txn_clock.advance(timedelta(hours=2))
    with db_engine.begin() as conn:
        assert assess_transaction(conn, txn_clock, _txn("v-late")).outcome is TxnOutcome.APPROVE


def test_burst_across_a_window_boundary_is_still_seen(db_engine: Engine) -> None:
    clock = FixedClock(datetime(2026, 3, 1, 8, 58, tzinfo=UTC))
    for i in range(5):
        with db_engine.begin() as conn:
            assess_transaction(conn, clock, _txn(f"b{i}"))
    clock.advance(timedelta(minutes=4))  # 09:02, a new hourly window
    with db_engine.begin() as conn:
        decision = assess_transaction(conn, clock, _txn("b5"))
    assert decision.reason_code == "T01_ACCOUNT_VELOCITY_COUNT"


def test_retry_returns_the_first_answer_without_counting_twice(
    db_engine: Engine, txn_clock: FixedClock
) -> None:
    with db_engine.begin() as conn:
        first = assess_transaction(conn, txn_clock, _txn("same", merchant_category="gambling"))
        again = assess_transaction(conn, txn_clock, _txn("same", merchant_category="gambling"))
        counts = conn.execute(select(risk_velocity_counters.c.txn_count)).scalars().all()
    assert first == again and first.outcome is TxnOutcome.DECLINE
    assert set(counts) == {1}


def test_declined_amount_is_given_back(db_engine: Engine, txn_clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        assess_transaction(
            conn, txn_clock, _txn("d1", amount_fen=5_000, merchant_category="gambling")
        )
        assess_transaction(conn, txn_clock, _txn("d2", amount_fen=7_000))
        amounts = conn.execute(select(risk_velocity_counters.c.amount_fen)).scalars().all()
        stored = (
            conn.execute(
                select(risk_transaction_assessments.c.outcome).order_by(
                    risk_transaction_assessments.c.id
                )
            )
            .scalars()
            .all()
        )
    assert set(amounts) == {7_000}
    assert stored == ["decline", "approve"]


def test_shared_device_and_phone(db_engine: Engine, txn_clock: FixedClock) -> None:
    outcomes = []
    with db_engine.begin() as conn:
        for i in range(5):
            decision = assess_transaction(
                conn, txn_clock, _txn(f"s{i}", account=f"acc-{i}", device_id="dev-1")
            )
            outcomes.append(decision.outcome.value)
        phone = [
            assess_transaction(
                conn, txn_clock, _txn(f"p{i}", account=f"pa-{i}", phone_key="ph-1")
            ).outcome.value
            for i in range(2)
        ]
    assert outcomes == ["approve", "approve", "step_up", "step_up", "decline"]
    assert phone == ["approve", "decline"]
    # Forty days on, only accounts seen on the device lately count: a fresh second account is
    # fine, and the old accounts come back into the count when they are used again.
    txn_clock.advance(timedelta(days=40))
    with db_engine.begin() as conn:
        later = [
            assess_transaction(
                conn, txn_clock, _txn(f"l{i}", account=f"acc-{i}", device_id="dev-1")
            ).outcome.value
            for i in range(4)
        ]
    assert later == ["approve", "approve", "step_up", "step_up"]


def test_new_account_first_purchase(db_engine: Engine, txn_clock: FixedClock) -> None:
    opened = txn_clock.now() - timedelta(hours=1)
    with db_engine.begin() as conn:
        big = assess_transaction(
            conn, txn_clock, _txn("n1", 300_000, "new-1", account_opened_at=opened)
        )
        small = assess_transaction(
            conn, txn_clock, _txn("n2", 50_000, "new-2", account_opened_at=opened)
        )
        second = assess_transaction(
            conn, txn_clock, _txn("n3", 300_000, "new-2", account_opened_at=opened)
        )
    assert big.reason_code == "T07_NEW_ACCOUNT_FIRST_PURCHASE"
    assert small.outcome is TxnOutcome.APPROVE and second.outcome is TxnOutcome.APPROVE


def test_concurrent_checkouts_cannot_overrun_a_limit(db_engine: Engine) -> None:
    """20 checkouts of 100 fen at once against a 1,000 fen hourly limit: 10 get through."""
    policy = TransactionRiskPolicy(
        velocity=(VelocityLimit(Subject.ACCOUNT, 3_600, None, 1_000, TxnOutcome.DECLINE),)
    )
    clock = FixedClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(w: int) -> None:
        try:
            start.wait()
            for i in range(w, 20, 8):
                with db_engine.begin() as conn:
                    decision = assess_transaction(conn, clock, _txn(f"c{i}", 100), policy)
                results.append(decision.outcome.value)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results).count("approve") == 10 and len(results) == 20


def test_purge_keeps_recent_windows(db_engine: Engine, txn_clock: FixedClock) -> None:
    with db_engine.begin() as conn:
        assess_transaction(conn, txn_clock, _txn("old"))
    txn_clock.advance(timedelta(days=3))
    with db_engine.begin() as conn:
        assess_transaction(conn, txn_clock, _txn("new"))
        removed = purge_velocity_counters(conn, txn_clock)
        left = conn.execute(select(risk_velocity_counters.c.window_start)).scalars().all()
    assert removed == 2 and len(left) == 2


state_values = st.tuples(
    st.floats(0, 50),
    st.floats(0, 5_000_000),
    st.floats(0, 50),
    st.floats(0, 5_000_000),
    st.integers(0, 10),
    st.integers(0, 5),
    st.integers(0, 1_000_000),
    st.floats(0, 30 * 86_400),
)


def _state_of(
    values: tuple[float, float, float, float, int, int, int, float], prior_count: int
) -> TransactionRiskState:
    a_count, a_amount, d_count, d_amount, on_device, on_phone, prior_amount, age = values
    return TransactionRiskState(
        velocity={
            (Subject.ACCOUNT, 3_600): (a_count, a_amount),
            (Subject.ACCOUNT, 86_400): (a_count, a_amount),
            (Subject.DEVICE, 3_600): (d_count, d_amount),
        },
        accounts_on_device=on_device,
        accounts_on_phone=on_phone,
        prior_accepted_count=prior_count,
        prior_accepted_amount_fen=prior_amount,
        account_age_seconds=age,
    )


@settings(max_examples=300, deadline=None)
@given(state_values, state_values, st.integers(0, 3), st.integers(1, 400_000))
def test_more_activity_is_never_judged_less_severely(
    low: tuple[float, float, float, float, int, int, int, float],
    bump: tuple[float, float, float, float, int, int, int, float],
    prior_count: int,
    amount_fen: int,
) -> None:
    """Raising any counter (or making the account younger) never softens the outcome."""
    raised = [a + b for a, b in zip(low[:7], bump[:7], strict=True)]
    high = (*raised, max(low[7] - bump[7], 0.0))
    txn = _txn("p", amount_fen)
    before = evaluate_transaction(txn, _state_of(low, prior_count), POLICY)
    after = evaluate_transaction(txn, _state_of(high, prior_count), POLICY)  # type: ignore[arg-type]
    assert SEVERITY[after.outcome] >= SEVERITY[before.outcome]
