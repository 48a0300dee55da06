"""A credit report as a bureau answers an inquiry (pure data, JSON in and out).

The shape is fenqi's bureau service's; a real bureau's client (PBOC, Baihang, a US bureau)
translates its own answer into this, so everything downstream (attributes, the decision) is the
same whichever bureau answered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    month: str  # YYYY-MM
    status: str  # current | delinquent | charged_off | closed
    dpd: int


@dataclass(frozen=True, slots=True)
class ReportAccount:
    lender: str
    account_ref: str
    portfolio: str  # revolving | installment
    currency: str
    opened_on: date
    closed_on: date | None
    limit_minor: int
    balance_minor: int
    past_due_minor: int
    status: str
    dpd: int
    as_of: date
    history: tuple[HistoryEntry, ...]

    @property
    def open(self) -> bool:
        return self.status != "closed" and self.closed_on is None


@dataclass(frozen=True, slots=True)
class ReportInquiry:
    lender: str
    purpose: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CreditReport:
    report_id: str
    subject_id: str
    generated_at: datetime
    accounts: tuple[ReportAccount, ...]
    inquiries: tuple[ReportInquiry, ...]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _dates_to_text(asdict(self))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CreditReport:
        accounts = tuple(
            ReportAccount(
                lender=str(a["lender"]),
                account_ref=str(a["account_ref"]),
                portfolio=str(a["portfolio"]),
                currency=str(a["currency"]),
                opened_on=date.fromisoformat(a["opened_on"]),
                closed_on=_day(a.get("closed_on")),
                limit_minor=int(a["limit_minor"]),
                balance_minor=int(a["balance_minor"]),
                past_due_minor=int(a["past_due_minor"]),
                status=str(a["status"]),
                dpd=int(a["dpd"]),
                as_of=date.fromisoformat(a["as_of"]),
                history=tuple(
                    HistoryEntry(str(h["month"]), str(h["status"]), int(h["dpd"]))
                    for h in a.get("history", [])
                ),
            )
            for a in data["accounts"]
        )
        inquiries = tuple(
            ReportInquiry(str(i["lender"]), str(i["purpose"]), datetime.fromisoformat(i["at"]))
            for i in data["inquiries"]
        )
        return cls(
            report_id=str(data["report_id"]),
            subject_id=str(data["subject_id"]),
            generated_at=datetime.fromisoformat(data["generated_at"]),
            accounts=accounts,
            inquiries=inquiries,
        )


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _dates_to_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dates_to_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dates_to_text(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
