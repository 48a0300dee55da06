"""Days past due and arrears buckets as of any date, from due dates and payments (pure).

Plan lines keep what has been paid on them but not when, so the state of an account on a past
date is rebuilt from two facts that are dated: each line's due date and amount, and each
repayment's business date and the part of it that went to principal, fee and interest. The
repayment waterfall pays the oldest due amount first, so paying "first in, first out" along the
lines in due-date order reproduces which line was unpaid on each date. This is exact for
ordinary repayments; it is an approximation where money reached a line by another path (a
refund or a conversion waives part of a line; the waived part is taken off the line's amount as
of every date, since the waiver's date is not kept).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import accumulate


class ArrearsBucket(StrEnum):
    """Delinquency buckets by days past due: M0 current, Mn = 30(n-1)+1..30n days, M7+ > 180."""

    M0 = "M0"
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M4 = "M4"
    M5 = "M5"
    M6 = "M6"
    M7 = "M7+"


BUCKETS: tuple[ArrearsBucket, ...] = tuple(ArrearsBucket)
DAYS_PER_BUCKET = 30


def bucket_of(days_past_due: int) -> ArrearsBucket:
    assert days_past_due >= 0, days_past_due
    if days_past_due == 0:
        return ArrearsBucket.M0
    index = min((days_past_due - 1) // DAYS_PER_BUCKET + 1, len(BUCKETS) - 1)
    return BUCKETS[index]


@dataclass(frozen=True, slots=True)
class DueLine:
    """What one installment line asks for (net of waivers): total and principal part."""

    due_date: date
    amount_fen: int
    principal_fen: int


@dataclass(frozen=True, slots=True)
class Payment:
    business_date: date
    amount_fen: int  # the part that went to principal, fee and interest (not penalty, not credit)
    principal_fen: int


@dataclass(frozen=True, slots=True)
class AccountState:
    days_past_due: int
    bucket: ArrearsBucket
    principal_unpaid_fen: int  # lent and not yet repaid, as of the date
    overdue_fen: int  # due before the date and unpaid


class AccountHistory:
    """One account's lines (in due-date order) and payments, queried at any date."""

    def __init__(
        self, lines: Iterable[DueLine], payments: Iterable[Payment], grace_days: int = 0
    ) -> None:
        # inside the product's grace period an unpaid amount is not late (issue 24 item 11)
        self.grace_days = grace_days
        self.lines = sorted(lines, key=lambda x: x.due_date)
        self.payments = sorted(payments, key=lambda x: x.business_date)
        self._cum_due = list(accumulate(x.amount_fen for x in self.lines))
        self._due_dates = [x.due_date for x in self.lines]
        self._pay_dates = [p.business_date for p in self.payments]
        self._cum_paid = list(accumulate(p.amount_fen for p in self.payments))
        self._cum_paid_principal = list(accumulate(p.principal_fen for p in self.payments))

    def state(self, as_of: date, purchased: Sequence[tuple[date, int]] = ()) -> AccountState:
        """The account at the end of `as_of`. `purchased` (purchase date, principal) bounds
        the principal lent by that date; without it every line's principal counts."""
        n = bisect.bisect_right(self._pay_dates, as_of)
        paid = self._cum_paid[n - 1] if n else 0
        paid_principal = self._cum_paid_principal[n - 1] if n else 0
        # the first line not fully covered by everything paid so far is the oldest unpaid one
        first = bisect.bisect_right(self._cum_due, paid)
        days = 0
        overdue = 0
        if first < len(self.lines) and self.lines[first].due_date < as_of:
            days = (as_of - self.lines[first].due_date).days
            if days <= self.grace_days:
                days = 0
            last_due = bisect.bisect_left(self._due_dates, as_of)
            overdue = self._cum_due[last_due - 1] - paid if last_due else 0
        lent = (
            sum(p for d, p in purchased if d <= as_of)
            if purchased
            else sum(x.principal_fen for x in self.lines)
        )
        principal_unpaid = max(lent - paid_principal, 0)
        return AccountState(days, bucket_of(days), principal_unpaid, max(overdue, 0))


def month_ends(start: date, end: date) -> list[date]:
    """Last day of every month from `start`'s month to `end`'s month (the last capped at end)."""
    assert start <= end, (start, end)
    out: list[date] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        nxt = date(year + month // 12, month % 12 + 1, 1)
        last = date.fromordinal(nxt.toordinal() - 1)
        out.append(min(last, end))
        year, month = nxt.year, nxt.month
    return out
