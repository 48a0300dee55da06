"""One account record model for every reporting format (pure: no I/O, no clock).

A record is what a lender tells a bureau about one credit account at one date of account
information (the last day of a reporting month, or the day of an event: opening, closing,
charge-off). The PBOC-style and Metro 2 writers (fenqi.bureau.pboc, fenqi.bureau.metro2) render
the same record; each maps status, history and comments to its own codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

HISTORY_MONTHS = 24


class ReportStatus(StrEnum):
    CURRENT = "current"  # nothing past due beyond the grace period
    DELINQUENT = "delinquent"  # days past due > 0 (past the grace period)
    CHARGED_OFF = "charged_off"  # written off, balance still owed
    CLOSED = "closed"  # closed with nothing owed


class SpecialComment(StrEnum):
    HARDSHIP = "hardship"  # on a hardship (forbearance) plan
    DISPUTE = "dispute"  # a dispute by the subject is open on this account


class Portfolio(StrEnum):
    REVOLVING = "revolving"  # a credit line (Huabei-style)
    INSTALLMENT = "installment"  # a closed-end loan


@dataclass(frozen=True, slots=True)
class MonthPoint:
    """One month of an account's history: the month (YYYY-MM), its status and days past due."""

    month: str
    status: ReportStatus
    dpd: int


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_ref: str  # the lender's account number (fenqi's credit account id)
    subject_id: str  # resident ID number (CNY) or SSN (USD), in clear only inside the file
    name: str
    currency: str
    portfolio: Portfolio
    opened_on: date
    as_of: date  # date of account information
    limit_minor: int
    balance_minor: int  # everything still owed (receivables, written-off ones included)
    past_due_minor: int
    dpd: int
    status: ReportStatus
    charge_off_minor: int = 0
    special_comment: SpecialComment | None = None
    closed_on: date | None = None
    first_delinquency_on: date | None = None
    birth_date: date | None = None
    correction: bool = False  # replaces an earlier record of the same account and date
    # earlier months, newest first (this month excluded); missing months are gaps
    history: tuple[MonthPoint, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("limit_minor", "balance_minor", "past_due_minor", "dpd", "charge_off_minor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if self.past_due_minor > self.balance_minor:
            raise ValueError("past_due_minor: more than the balance")
        if self.status is ReportStatus.DELINQUENT and self.dpd == 0:
            raise ValueError("status: delinquent with 0 days past due")
        if self.status is ReportStatus.CURRENT and self.dpd > 0:
            raise ValueError("status: current with days past due")

    @property
    def month(self) -> str:
        return f"{self.as_of.year:04d}-{self.as_of.month:02d}"

    @property
    def negative(self) -> bool:
        """Whether this record reports something negative (late or charged off)."""
        return self.status in (ReportStatus.DELINQUENT, ReportStatus.CHARGED_OFF)

    def point(self) -> MonthPoint:
        return MonthPoint(self.month, self.status, self.dpd)


def status_for(dpd: int, charged_off: bool, balance_minor: int, closed: bool) -> ReportStatus:
    """The record status: charged off wins, then closed with nothing owed, then days past due.
    `dpd` must already leave the grace period out (credit.arrears.arrears_on does)."""
    if charged_off:
        return ReportStatus.CHARGED_OFF
    if closed and balance_minor == 0:
        return ReportStatus.CLOSED
    return ReportStatus.DELINQUENT if dpd > 0 else ReportStatus.CURRENT


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def history_points(record: AccountRecord, months: int = HISTORY_MONTHS) -> list[MonthPoint | None]:
    """`months` points, this month first, then each earlier month (None: no record that month,
    or before the account opened)."""
    by_month = {p.month: p for p in record.history}
    out: list[MonthPoint | None] = [record.point()]
    month = record.month
    for _ in range(months - 1):
        month = previous_month(month)
        out.append(by_month.get(month))
    return out


def month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def parse_month(value: str) -> date:
    """'2026-03' → the last day of that month; refuses anything else, naming --month."""
    try:
        year, mon = value.split("-")
        if len(year) != 4 or len(mon) != 2:
            raise ValueError
        return month_end(int(year), int(mon))
    except ValueError:
        raise ValueError(f"--month: {value!r} is not a month like 2026-03") from None
