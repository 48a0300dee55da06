"""The retry schedule: exponential backoff with a per-delivery jitter, capped, and bounded.

After the n-th failed attempt the next one waits base × 2^(n-1) × (1 + j), at most the cap,
where j ∈ [0, 0.5) comes from a hash of the delivery id. Why a hash and not a random number:
the schedule is reproducible in tests and logs, and yet deliveries that failed together (a
shop's endpoint down for everyone) spread out instead of retrying in one burst. Because j is
fixed per delivery, each delivery's delays never decrease up to the cap.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

DEFAULT_CAP_SECONDS = 6 * 3600
JITTER_PERMILLE_MAX = 500  # j < 0.5
# Past this many doublings every sane base is already over any sane cap; stop multiplying.
DOUBLINGS_MAX = 40


def jitter_permille(delivery_id: int | str) -> int:
    """A stable number in [0, 500) for one delivery: its share of extra delay, in ‰."""
    digest = hashlib.sha256(f"webhook-delivery:{delivery_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % JITTER_PERMILLE_MAX


def next_delay_seconds(
    attempt: int,
    base_seconds: int,
    *,
    delivery_id: int | str,
    cap_seconds: int = DEFAULT_CAP_SECONDS,
) -> int:
    """Whole seconds to wait after failed attempt number `attempt` (1 for the first failure)."""
    assert attempt >= 1, "attempt counts failed attempts, from 1"
    assert base_seconds >= 1 and cap_seconds >= 1
    doublings = min(attempt - 1, DOUBLINGS_MAX)
    raw = base_seconds * (1 << doublings) * (1000 + jitter_permille(delivery_id)) // 1000
    return min(raw, cap_seconds)


def next_delay(
    attempt: int,
    base_seconds: int,
    *,
    delivery_id: int | str,
    cap_seconds: int = DEFAULT_CAP_SECONDS,
) -> timedelta:
    """`next_delay_seconds` as a timedelta."""
    return timedelta(
        seconds=next_delay_seconds(
            attempt, base_seconds, delivery_id=delivery_id, cap_seconds=cap_seconds
        )
    )


def is_exhausted(attempts: int, max_attempts: int) -> bool:
    """True once a delivery has used all its attempts and goes to the dead letters."""
    assert max_attempts >= 1
    return attempts >= max_attempts
