"""Bureau attributes a credit decision reads from a report (pure).

- open accounts and balances at other lenders, and how many other lenders (多头借贷);
- the worst status in the last 24 months across every account (days past due; a charge-off
  counts as CHARGED_OFF_DPD);
- inquiries in the last 3, 6 and 12 months (every lender's, this one's earlier ones included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from fenqi.bureau.model import CreditReport

CHARGED_OFF_DPD = 181  # a charge-off ranks worse than any days-past-due figure below it
WINDOW_MONTHS = 24


@dataclass(frozen=True, slots=True)
class BureauAttributes:
    open_accounts_elsewhere: int
    lenders_elsewhere: int
    balances_elsewhere_minor: int
    past_due_elsewhere_minor: int
    worst_dpd_24m: int
    worst_status_24m: str  # M0 .. M7+, or charged_off
    inquiries_3m: int
    inquiries_6m: int
    inquiries_12m: int
    thin_file: bool  # no account at all on file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _status_label(dpd: int) -> str:
    if dpd >= CHARGED_OFF_DPD:
        return "charged_off"
    if dpd == 0:
        return "M0"
    index = (dpd - 1) // 30 + 1
    return "M7+" if index >= 7 else f"M{index}"


def compute(report: CreditReport, as_of: date, own_lender: str) -> BureauAttributes:
    """Attributes of `report` as of `as_of`, with accounts of `own_lender` not counted as
    'elsewhere' (they are fenqi's own, already known)."""
    since_month = _month_key(months_before(as_of, WINDOW_MONTHS - 1))
    elsewhere = [a for a in report.accounts if a.lender != own_lender and a.open]
    worst = 0
    for account in report.accounts:
        current = CHARGED_OFF_DPD if account.status == "charged_off" else account.dpd
        if account.as_of >= months_before(as_of, WINDOW_MONTHS):
            worst = max(worst, current)
        for h in account.history:
            if h.month >= since_month:
                dpd = CHARGED_OFF_DPD if h.status == "charged_off" else h.dpd
                worst = max(worst, dpd)

    def inquiries(months: int) -> int:
        since = months_before(as_of, months)
        return sum(1 for i in report.inquiries if since < i.at.date() <= as_of)

    return BureauAttributes(
        open_accounts_elsewhere=len(elsewhere),
        lenders_elsewhere=len({a.lender for a in elsewhere}),
        balances_elsewhere_minor=sum(a.balance_minor for a in elsewhere),
        past_due_elsewhere_minor=sum(a.past_due_minor for a in elsewhere),
        worst_dpd_24m=worst,
        worst_status_24m=_status_label(worst),
        inquiries_3m=inquiries(3),
        inquiries_6m=inquiries(6),
        inquiries_12m=inquiries(12),
        thin_file=not report.accounts,
    )
