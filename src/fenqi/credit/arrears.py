"""Arrears: days past due and the buckets collections and reports use (pure).

M0 is current; M1 is 1–30 days past due, M2 31–60 … M6 151–180, and M7+ over 180 days, the
convention of Chinese consumer-credit reporting. An account is charged off at a configurable
number of days past due (default 180, when it would enter M7+).
"""

from __future__ import annotations

from datetime import date

BUCKET_DAYS = 30
LAST_BUCKET = 7


def bucket_for(days_past_due: int) -> str:
    if days_past_due < 0:
        raise ValueError("days_past_due must not be negative")
    if days_past_due == 0:
        return "M0"
    index = (days_past_due - 1) // BUCKET_DAYS + 1
    return "M7+" if index >= LAST_BUCKET else f"M{index}"


def arrears_on(past_due_since: date | None, day: date, grace_days: int = 0) -> tuple[int, str]:
    """(days past due, bucket) on `day` of an account whose oldest unpaid due date is
    `past_due_since` (None when current): a due date counts from the day after it.

    Within the product's grace period (`grace_days` after the due date) an amount is not late:
    the account is current (0, M0). Past the grace period it counts from the due date, as a
    lender reports it (grace 3: the 4th day after the due date is DPD 4, M1). The end of day
    stores `past_due_since` only once an amount is out of its grace period, so a stored date is
    already late; `grace_days` guards a read of an amount the night run has not seen."""
    if grace_days < 0:
        raise ValueError("grace_days must not be negative")
    days = 0 if past_due_since is None else max(0, (day - past_due_since).days)
    if days <= grace_days:
        days = 0
    return days, bucket_for(days)
