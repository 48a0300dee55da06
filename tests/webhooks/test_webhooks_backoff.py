"""The retry schedule: exponential, jittered per delivery, non-decreasing up to the cap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fenqi.webhooks.backoff import (
    DEFAULT_CAP_SECONDS,
    is_exhausted,
    jitter_permille,
    next_delay,
    next_delay_seconds,
)

ids = st.integers(min_value=1, max_value=10**12)
bases = st.integers(min_value=1, max_value=3600)
caps = st.integers(min_value=1, max_value=7 * 24 * 3600)


@given(ids, bases, caps)
def test_non_decreasing_up_to_the_cap(delivery_id: int, base: int, cap: int) -> None:
    delays = [
        next_delay_seconds(n, base, delivery_id=delivery_id, cap_seconds=cap) for n in range(1, 60)
    ]
    assert delays == sorted(delays)
    assert all(1 <= d <= cap for d in delays)
    assert delays[-1] == cap  # 2^58 × base passes any cap


@given(ids, bases)
def test_first_delay_is_base_plus_under_half(delivery_id: int, base: int) -> None:
    first = next_delay_seconds(1, base, delivery_id=delivery_id, cap_seconds=10**9)
    assert base <= first < base * 3 // 2 + 1


@given(ids, bases, st.integers(1, 20))
def test_doubles_until_capped(delivery_id: int, base: int, attempt: int) -> None:
    cap = 10**12
    a = next_delay_seconds(attempt, base, delivery_id=delivery_id, cap_seconds=cap)
    b = next_delay_seconds(attempt + 1, base, delivery_id=delivery_id, cap_seconds=cap)
    assert 2 * a <= b <= 2 * a + 1  # floor division loses at most one second


@given(ids)
def test_jitter_is_deterministic_and_bounded(delivery_id: int) -> None:
    assert jitter_permille(delivery_id) == jitter_permille(delivery_id)
    assert 0 <= jitter_permille(delivery_id) < 500


def test_jitter_spreads_deliveries() -> None:
    assert len({jitter_permille(i) for i in range(1, 101)}) > 50


def test_default_schedule_and_limit() -> None:
    # the waits between the 8 attempts of a delivery that always fails
    waits = [next_delay_seconds(n, 30, delivery_id=7) for n in range(1, 8)]
    assert len(waits) == 7 and waits == sorted(waits)
    assert max(waits) <= DEFAULT_CAP_SECONDS
    assert next_delay(1, 30, delivery_id=7).total_seconds() == waits[0]
    assert not is_exhausted(7, 8)
    assert is_exhausted(8, 8)
