"""Portfolio figures over a period: balances, new credit, approvals, delinquency, bad debt,
vintage curves and roll rates.

The database does the grouping (one query per fact: lines, payments, plans, applications); the
per-account arrears state on each date comes from `arrears.AccountHistory`, which rebuilds it
from due dates and dated repayments, so any past date can be asked about, not only today.
Definitions (docs/console.md):
- outstanding: principal lent (net of refunds and conversions) less principal repaid;
- delinquency M1+ / M3+: accounts 1+ / 61+ days past due, by count and by outstanding principal;
- bad debt: outstanding principal of accounts charged off, or past 180 days (M7+, the usual
  write-off point) when the end-of-day run has not charged them off yet, over all principal lent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from fenqi.analytics.arrears import (
    BUCKETS,
    AccountHistory,
    AccountState,
    ArrearsBucket,
    DueLine,
    Payment,
    month_ends,
)
from fenqi.store.schema.credit import credit_accounts, installment_plans, plan_lines, repayments
from fenqi.store.schema.parties import applications

CONVERSION_PREFIX = "conversion:"  # plans made by converting a bill are not new credit
VINTAGE_MONTHS_MAX = 24
VINTAGE_DPD_DAYS = 30  # a vintage counts accounts ever 30+ days past due (M2+)
M3_DAYS = 61


@dataclass(frozen=True)
class Book:
    """Every account's history, loaded once for a set of questions up to `as_of`."""

    as_of: date
    histories: dict[int, AccountHistory]
    purchased: dict[int, list[tuple[date, int]]]
    charged_off: dict[int, date]
    opened: dict[int, date]

    _memo: dict[tuple[int, date], AccountState] = field(default_factory=dict, repr=False)

    def state(self, account_id: int, on: date) -> AccountState:
        """The account at the end of `on` (remembered: the dashboard asks for each month end
        from several figures)."""
        key = (account_id, on)
        found = self._memo.get(key)
        if found is None:
            found = self.histories[account_id].state(on, self.purchased.get(account_id, ()))
            self._memo[key] = found
        return found


def load_book(conn: Connection, as_of: date, grace_days: Mapping[str, int] | None = None) -> Book:
    """Every account's history up to `as_of`; `grace_days` (product name -> the product's
    grace days) keeps an amount inside its grace period from counting as late."""
    pl, p, r, ca = plan_lines.c, installment_plans.c, repayments.c, credit_accounts.c
    amount = (
        pl.principal_fen
        + pl.fee_fen
        + pl.interest_fen
        - pl.waived_principal_fen
        - pl.waived_fee_fen
        - pl.waived_interest_fen
    )
    lines: dict[int, list[DueLine]] = defaultdict(list)
    principal = pl.principal_fen - pl.waived_principal_fen
    for line in conn.execute(
        select(pl.credit_account_id, pl.due_date, amount, principal)
        .join(installment_plans, p.id == pl.plan_id)
        .where(p.purchase_date <= as_of)
    ):
        lines[int(line[0])].append(DueLine(line[1], int(line[2]), int(line[3])))
    payments: dict[int, list[Payment]] = defaultdict(list)
    for pay in conn.execute(
        select(
            r.credit_account_id,
            r.business_date,
            r.to_principal_fen + r.to_fee_fen + r.to_interest_fen,
            r.to_principal_fen,
        ).where(r.business_date <= as_of)
    ):
        payments[int(pay[0])].append(Payment(pay[1], int(pay[2]), int(pay[3])))
    purchased: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for plan in conn.execute(
        select(p.credit_account_id, p.purchase_date, func.sum(principal))
        .join(plan_lines, pl.plan_id == p.id)
        .where(p.purchase_date <= as_of)
        .group_by(p.id, p.credit_account_id, p.purchase_date)
    ):
        purchased[int(plan[0])].append((plan[1], int(plan[2])))
    opened: dict[int, date] = {}
    charged_off: dict[int, date] = {}
    grace: dict[int, int] = {}
    for account in conn.execute(select(ca.id, ca.opened_at, ca.charged_off_on, ca.product)):
        opened[int(account[0])] = account[1].date()
        if account[2] is not None and account[2] <= as_of:
            charged_off[int(account[0])] = account[2]
        grace[int(account[0])] = (grace_days or {}).get(account[3], 0)
    histories = {
        a: AccountHistory(lines.get(a, ()), payments.get(a, ()), grace.get(a, 0))
        for a in set(lines) | set(payments)
    }
    return Book(as_of, histories, dict(purchased), charged_off, opened)


@dataclass(frozen=True)
class BucketFigure:
    bucket: str
    accounts: int
    principal_fen: int


@dataclass(frozen=True)
class PortfolioSummary:
    start: date
    end: date
    outstanding_fen: int
    accounts_with_balance: int
    new_credit_fen: int
    new_plans: int
    applications: int
    approved: int
    approval_rate: float | None
    m1_plus_accounts: int
    m1_plus_fen: int
    m3_plus_accounts: int
    m3_plus_fen: int
    m1_plus_rate: float | None  # by outstanding principal
    m3_plus_rate: float | None
    lent_fen: int  # all principal lent up to the end date
    bad_debt_fen: int
    bad_debt_rate: float | None
    buckets: list[BucketFigure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def portfolio_summary(
    conn: Connection, start: date, end: date, book: Book | None = None
) -> PortfolioSummary:
    """The portfolio as of `end`, and the flows (new credit, applications) within start..end."""
    if start > end:
        raise ValueError("start must not be after end")
    book = book if book is not None and book.as_of >= end else load_book(conn, end)
    p, a = installment_plans.c, applications.c
    new_plans, new_credit = conn.execute(
        select(func.count(), func.coalesce(func.sum(p.principal_fen), 0)).where(
            p.purchase_date >= start,
            p.purchase_date <= end,
            ~p.order_ref.startswith(CONVERSION_PREFIX),
        )
    ).one()
    day_after = date.fromordinal(end.toordinal() + 1)
    applied, approved = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((a.outcome == "approved", 1), else_=0)), 0),
        ).where(and_(a.created_at >= _instant(start), a.created_at < _instant(day_after)))
    ).one()
    per_bucket: dict[ArrearsBucket, list[int]] = {b: [0, 0] for b in BUCKETS}
    outstanding = with_balance = lent = bad = 0
    m1 = [0, 0]
    m3 = [0, 0]
    for account_id in book.histories:
        st = book.state(account_id, end)
        lent += sum(x for d, x in book.purchased.get(account_id, ()) if d <= end)
        if account_id in book.charged_off or st.days_past_due > 180:
            bad += st.principal_unpaid_fen
        if st.principal_unpaid_fen <= 0 and st.overdue_fen <= 0:
            continue
        outstanding += st.principal_unpaid_fen
        with_balance += 1
        per_bucket[st.bucket][0] += 1
        per_bucket[st.bucket][1] += st.principal_unpaid_fen
        if st.days_past_due >= 1:
            m1 = [m1[0] + 1, m1[1] + st.principal_unpaid_fen]
        if st.days_past_due >= M3_DAYS:
            m3 = [m3[0] + 1, m3[1] + st.principal_unpaid_fen]
    return PortfolioSummary(
        start=start,
        end=end,
        outstanding_fen=outstanding,
        accounts_with_balance=with_balance,
        new_credit_fen=int(new_credit),
        new_plans=int(new_plans),
        applications=int(applied),
        approved=int(approved),
        approval_rate=_ratio(int(approved), int(applied)),
        m1_plus_accounts=m1[0],
        m1_plus_fen=m1[1],
        m3_plus_accounts=m3[0],
        m3_plus_fen=m3[1],
        m1_plus_rate=_ratio(m1[1], outstanding),
        m3_plus_rate=_ratio(m3[1], outstanding),
        lent_fen=lent,
        bad_debt_fen=bad,
        bad_debt_rate=_ratio(bad, lent),
        buckets=[BucketFigure(b.value, n, fen) for b, (n, fen) in per_bucket.items()],
    )


def _instant(day: date) -> datetime:
    """Midnight UTC of a date: applications are stamped with UTC instants."""
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Vintage:
    cohort: str  # YYYY-MM the accounts were opened
    accounts: int
    months_on_book: list[int]
    share_ever_30_plus: list[float]  # cumulative share of the cohort ever 30+ days past due


def vintage_curves(
    conn: Connection, as_of: date, book: Book | None = None, months_max: int = VINTAGE_MONTHS_MAX
) -> list[Vintage]:
    """For each month of opening, the share of its borrowing accounts that were ever 30+ days
    past due by the end of each month on book (month 1 = the month of opening)."""
    book = book if book is not None and book.as_of >= as_of else load_book(conn, as_of)
    cohorts: dict[str, list[int]] = defaultdict(list)
    for account_id in book.histories:
        if account_id in book.opened and book.opened[account_id] <= as_of:
            cohorts[book.opened[account_id].strftime("%Y-%m")].append(account_id)
    out: list[Vintage] = []
    for cohort in sorted(cohorts):
        members = cohorts[cohort]
        first = min(book.opened[a] for a in members)
        ends = month_ends(first, as_of)[:months_max]
        ever: set[int] = set()
        shares: list[float] = []
        for day in ends:
            ever |= {a for a in members if book.state(a, day).days_past_due >= VINTAGE_DPD_DAYS}
            shares.append(len(ever) / len(members))
        out.append(Vintage(cohort, len(members), list(range(1, len(ends) + 1)), shares))
    return out


@dataclass(frozen=True)
class RollRates:
    buckets: list[str]
    counts: list[list[int]]  # counts[from][to], summed over consecutive month ends
    shares: list[list[float | None]]  # each row divided by its total
    months: list[str]  # the month ends compared (from the second on)


def roll_rates(conn: Connection, start: date, end: date, book: Book | None = None) -> RollRates:
    """How accounts moved between arrears buckets from one month end to the next, start..end.

    Accounts with nothing owed at either month end are left out (they are not in the book).
    """
    book = book if book is not None and book.as_of >= end else load_book(conn, end)
    ends = month_ends(start, end)
    index = {b: i for i, b in enumerate(BUCKETS)}
    counts = [[0] * len(BUCKETS) for _ in BUCKETS]
    for account_id in book.histories:
        previous: ArrearsBucket | None = None
        for day in ends:
            st = book.state(account_id, day)
            active = st.principal_unpaid_fen > 0 or st.overdue_fen > 0
            current = st.bucket if active else None
            if previous is not None and current is not None:
                counts[index[previous]][index[current]] += 1
            previous = current
    shares = [[(c / sum(row)) if sum(row) else None for c in row] for row in counts]
    return RollRates([b.value for b in BUCKETS], counts, shares, [d.isoformat() for d in ends[1:]])


def balance_series(
    conn: Connection, start: date, end: date, book: Book | None = None
) -> list[dict[str, Any]]:
    """Outstanding principal and M1+/M3+ principal at each month end of start..end."""
    book = book if book is not None and book.as_of >= end else load_book(conn, end)
    out = []
    for day in month_ends(start, end):
        total = m1 = m3 = 0
        for account_id in book.histories:
            st = book.state(account_id, day)
            total += st.principal_unpaid_fen
            if st.days_past_due >= 1:
                m1 += st.principal_unpaid_fen
            if st.days_past_due >= M3_DAYS:
                m3 += st.principal_unpaid_fen
        out.append({"date": day, "outstanding_fen": total, "m1_plus_fen": m1, "m3_plus_fen": m3})
    return out
