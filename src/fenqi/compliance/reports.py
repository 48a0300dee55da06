"""Regulatory reports (issue 18), each derived from the ledger and the records as of a date, so
that a rerun for the same date gives the same figures: rows for a CSV and totals that must
equal the ledger's.

- `overdue`: monthly overdue statistics — accounts, balances and amounts past due by days-past-
  due band and five-category class, per currency, as of the month's last day. Balances are the
  ledger's as of that date; days past due come from the plan lines due by then and the
  repayments booked by then (not from today's arrears), so an old month stays as it was.
- `rates`: the annualized-rate distribution of new lending in the month (plans by purchase
  date, by disclosed IRR band), count and principal per currency.
- `disputes`: complaints and disputes — credit-report disputes, data-subject requests and
  complaints (the register, fenqi.compliance.complaints) opened in the month, by kind and
  outcome, and those still open past their answer date.
- `bureau`: bureau reporting status — the month's reported records by status, corrections,
  first-negative notices, disputes flagged, and the reconciliation with the ledger.
- `exposure`: per-borrower exposure against limits — each customer's limits and balance as of
  the date, utilization, and borrowers over their limit or over the single-borrower cap
  (`FENQI_BORROWER_EXPOSURE_CAP_FEN`).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Connection, case, func, select

from fenqi.compliance.complaints import complaint_rows, opened_in, overdue_complaints
from fenqi.errors import FenqiError
from fenqi.store.schema.bureau import bureau_notices, bureau_records
from fenqi.store.schema.compliance import bureau_disputes, privacy_requests
from fenqi.store.schema.credit import (
    credit_accounts,
    installment_plans,
    plan_lines,
    repayment_parts,
    repayments,
)

BANDS = (  # days past due → band (upper bound inclusive)
    ("current", 0),
    ("dpd_1_30", 30),
    ("dpd_31_60", 60),
    ("dpd_61_90", 90),
    ("dpd_91_180", 180),
    ("dpd_181_plus", 10**9),
)
FIVE_CLASS = {  # five-category classification by band (90+ at least 次级)
    "current": "normal",
    "dpd_1_30": "special_mention",
    "dpd_31_60": "special_mention",
    "dpd_61_90": "special_mention",
    "dpd_91_180": "substandard",
    "dpd_181_plus": "doubtful",
    "charged_off": "loss",
}
RATE_BANDS = (  # nominal IRR rate, bp (upper bound inclusive)
    ("0%", 0),
    ("0-10%", 1000),
    ("10-15%", 1500),
    ("15-20%", 2000),
    ("20-24%", 2400),
    ("24-36%", 3600),
    ("over 36%", 10**9),
)
REPORTS = ("overdue", "rates", "disputes", "bureau", "exposure")


@dataclass
class Report:
    name: str
    as_of: date
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "as_of": self.as_of.isoformat(),
            "rows": self.rows,
            "totals": self.totals,
        }

    def csv(self) -> str:
        out = io.StringIO()
        if self.rows:
            writer = csv.DictWriter(out, fieldnames=list(self.rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
        return out.getvalue()


class ReportError(FenqiError):
    code = "report_invalid"
    http_status = 422


def month_bounds(month: str) -> tuple[date, date]:
    from fenqi.bureau.records import parse_month

    try:
        if not 1 <= int(month[5:] or 0) <= 12:
            raise ValueError(f"--month: {month!r} is not a month like 2026-03")
        end = parse_month(month)
    except ValueError as exc:
        raise ReportError(
            str(exc).replace("--month", "month"), code="invalid_month", http_status=400
        ) from None
    return end.replace(day=1), end


def _band(dpd: int) -> str:
    return next(name for name, upper in BANDS if dpd <= upper)


def days_past_due_as_of(
    conn: Connection, as_of: date, grace_of_account: dict[int, int]
) -> dict[int, tuple[int, int]]:
    """Per credit account: (days past due, amount past due) as of `as_of`, from the plan lines
    due by then (not revolving by then) less the repayments booked by then."""
    pl, rp, r = plan_lines.c, repayment_parts.c, repayments.c
    paid = dict(
        ((int(plan), int(period)), int(amount))
        for plan, period, amount in conn.execute(
            select(rp.plan_id, rp.period, func.sum(rp.amount_fen))
            .select_from(repayment_parts.join(repayments, r.id == rp.repayment_id))
            .where(
                r.business_date <= as_of,
                r.reversed_at.is_(None),
                rp.kind.in_(("principal", "fee", "interest")),
                rp.plan_id.is_not(None),
            )
            .group_by(rp.plan_id, rp.period)
        )
    )
    due_rows = conn.execute(
        select(
            pl.credit_account_id,
            pl.plan_id,
            pl.period,
            pl.due_date,
            pl.principal_fen
            + pl.fee_fen
            + pl.interest_fen
            - pl.waived_principal_fen
            - pl.waived_fee_fen
            - pl.waived_interest_fen,
        ).where(
            pl.due_date <= as_of,
            (pl.revolving_since.is_(None)) | (pl.revolving_since > as_of),
        )
    ).all()
    oldest: dict[int, date] = {}
    amount: dict[int, int] = defaultdict(int)
    for account, plan, period, due, total in due_rows:
        unpaid = int(total) - paid.get((int(plan), int(period)), 0)
        grace = grace_of_account.get(int(account), 0)
        if unpaid <= 0 or (as_of - due).days <= grace:
            continue
        amount[int(account)] += unpaid
        if int(account) not in oldest or due < oldest[int(account)]:
            oldest[int(account)] = due
    return {a: ((as_of - d).days, amount[a]) for a, d in oldest.items()}


def _accounts(conn: Connection, as_of: date, zone: str) -> list[Any]:
    from zoneinfo import ZoneInfo

    end = datetime.combine(as_of, time.max, ZoneInfo(zone))
    ca = credit_accounts.c
    return list(
        conn.execute(
            select(
                ca.id, ca.customer_ref, ca.product, ca.currency, ca.limit_fen, ca.charged_off_on
            ).where(ca.opened_at <= end)
        )
    )


def overdue(
    conn: Connection, as_of: date, grace_of: dict[str, int], zone: str = "Asia/Shanghai"
) -> Report:
    from fenqi.bureau.reporting import ledger_owed_as_of

    accounts = _accounts(conn, as_of, zone)
    owed, charged = ledger_owed_as_of(conn, as_of)
    grace = {int(a.id): grace_of.get(a.product, 0) for a in accounts}
    late = days_past_due_as_of(conn, as_of, grace)
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"accounts": 0, "balance_fen": 0, "past_due_fen": 0}
    )
    for a in accounts:
        balance = max(0, owed.get(int(a.id), 0))
        if a.charged_off_on is not None and a.charged_off_on <= as_of:
            band, past = "charged_off", balance
        else:
            dpd, past = late.get(int(a.id), (0, 0))
            band, past = _band(dpd), min(past, balance)
        cell = cells[(a.currency, band)]
        cell["accounts"] += 1
        cell["balance_fen"] += balance
        cell["past_due_fen"] += past
    order = [name for name, _ in BANDS] + ["charged_off"]
    rows = [
        {"currency": cur, "band": band, "five_class": FIVE_CLASS[band], **cells[(cur, band)]}
        for cur in sorted({c for c, _ in cells})
        for band in order
        if (cur, band) in cells
    ]
    totals: dict[str, Any] = defaultdict(int)
    for row in rows:
        totals[f"balance_fen_{row['currency']}"] += row["balance_fen"]
        totals[f"past_due_fen_{row['currency']}"] += row["past_due_fen"]
        totals["accounts"] += row["accounts"]
    totals["ledger_owed_fen"] = sum(max(0, v) for v in owed.values())
    totals["charged_off_fen"] = sum(charged.values())
    return Report("overdue", as_of, rows, dict(totals))


def rates(conn: Connection, start: date, end: date) -> Report:
    p = installment_plans.c
    rows_in = conn.execute(
        select(credit_accounts.c.currency, p.nominal_rate_bp, p.principal_fen)
        .select_from(
            installment_plans.join(credit_accounts, credit_accounts.c.id == p.credit_account_id)
        )
        .where(p.purchase_date >= start, p.purchase_date <= end, p.kind != "hardship")
    ).all()
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"plans": 0, "principal_fen": 0}
    )
    weighted: dict[str, int] = defaultdict(int)
    principal: dict[str, int] = defaultdict(int)
    for currency, rate, amount in rows_in:
        band = next(name for name, upper in RATE_BANDS if rate <= upper)
        cells[(currency, band)]["plans"] += 1
        cells[(currency, band)]["principal_fen"] += int(amount)
        weighted[currency] += int(rate) * int(amount)
        principal[currency] += int(amount)
    rows = [
        {"currency": cur, "rate_band": band, **cells[(cur, band)]}
        for cur in sorted({c for c, _ in cells})
        for band, _ in RATE_BANDS
        if (cur, band) in cells
    ]
    totals: dict[str, Any] = {"plans": len(rows_in)}
    for cur, amount in principal.items():
        totals[f"principal_fen_{cur}"] = amount
        totals[f"weighted_rate_bp_{cur}"] = round(weighted[cur] / amount) if amount else 0
    return Report("rates", end, rows, totals)


def disputes(conn: Connection, start: date, end: date) -> Report:
    d, q = bureau_disputes.c, privacy_requests.c
    rows: list[dict[str, Any]] = []
    for item, status, n in conn.execute(
        select(d.item, d.status, func.count())
        .where(opened_in(d.opened_at, start, end))
        .group_by(d.item, d.status)
        .order_by(d.item, d.status)
    ):
        rows.append({"kind": "bureau_dispute", "what": item, "status": status, "count": int(n)})
    for kind, status, n in conn.execute(
        select(q.kind, q.status, func.count())
        .where(opened_in(q.opened_at, start, end))
        .group_by(q.kind, q.status)
        .order_by(q.kind, q.status)
    ):
        rows.append(
            {"kind": "data_subject_request", "what": kind, "status": status, "count": int(n)}
        )
    rows.extend(complaint_rows(conn, start, end))
    overdue_disputes = conn.execute(
        select(func.count()).where(d.status == "open", d.due_on < end)
    ).scalar_one()
    overdue_requests = conn.execute(
        select(func.count()).where(q.status == "open", q.due_on < end)
    ).scalar_one()
    totals = {
        "opened": sum(r["count"] for r in rows),
        "open_past_answer_date_disputes": int(overdue_disputes),
        "open_past_answer_date_requests": int(overdue_requests),
        "open_past_answer_date_complaints": overdue_complaints(conn, end),
    }
    return Report("disputes", end, rows, totals)


def bureau(conn: Connection, as_of: date) -> Report:
    from fenqi.bureau.reporting import reconcile

    b = bureau_records.c
    rows = [
        {
            "currency": cur,
            "status": status,
            "special": special,
            "records": int(n),
            "corrections": int(corr or 0),
            "balance_fen": int(bal or 0),
        }
        for cur, status, special, n, corr, bal in conn.execute(
            select(
                b.currency,
                b.status,
                b.special,
                func.count(),
                func.sum(case((b.correction.is_(True), 1), else_=0)),
                func.sum(b.balance_fen),
            )
            .where(b.as_of == as_of)
            .group_by(b.currency, b.status, b.special)
            .order_by(b.currency, b.status, b.special)
        )
    ]
    month = as_of.strftime("%Y-%m")
    notices = conn.execute(select(func.count()).where(bureau_notices.c.month == month)).scalar_one()
    diffs = reconcile(conn, as_of)
    totals = {
        "records": sum(r["records"] for r in rows),
        "corrections": sum(r["corrections"] for r in rows),
        "first_negative_notices": int(notices),
        "reconciliation_differences": len(diffs),
        "reported": bool(rows),
    }
    return Report("bureau", as_of, rows, totals)


def exposure(conn: Connection, as_of: date, cap_fen: int, zone: str = "Asia/Shanghai") -> Report:
    from fenqi.bureau.reporting import ledger_owed_as_of

    owed, _ = ledger_owed_as_of(conn, as_of)
    per: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"accounts": 0, "limit_fen": 0, "balance_fen": 0}
    )
    for a in _accounts(conn, as_of, zone):
        cell = per[(a.customer_ref, a.currency)]
        cell["accounts"] += 1
        cell["limit_fen"] += int(a.limit_fen)
        cell["balance_fen"] += max(0, owed.get(int(a.id), 0))
    rows: list[dict[str, Any]] = []
    for (customer, currency), c in sorted(per.items(), key=lambda kv: -kv[1]["balance_fen"]):
        rows.append(
            {
                "customer_id": customer,
                "currency": currency,
                **c,
                "utilization_bp": c["balance_fen"] * 10_000 // c["limit_fen"]
                if c["limit_fen"]
                else 0,
                "over_limit": c["balance_fen"] > c["limit_fen"],
                "over_cap": currency == "CNY" and c["balance_fen"] > cap_fen,
            }
        )
    totals = {
        "borrowers": len({r["customer_id"] for r in rows}),
        "balance_fen": sum(r["balance_fen"] for r in rows),
        "over_limit": sum(1 for r in rows if r["over_limit"]),
        "over_cap": sum(1 for r in rows if r["over_cap"]),
        "cap_fen": cap_fen,
        "ledger_owed_fen": sum(max(0, v) for v in owed.values()),
    }
    return Report("exposure", as_of, rows, totals)


def build(
    conn: Connection,
    name: str,
    month: str,
    *,
    grace_of: dict[str, int],
    cap_fen: int,
    zone: str = "Asia/Shanghai",
) -> Report:
    """One report for a month (`YYYY-MM`): as of its last day, or over its days."""
    start, end = month_bounds(month)
    if name == "overdue":
        return overdue(conn, end, grace_of, zone)
    if name == "rates":
        return rates(conn, start, end)
    if name == "disputes":
        return disputes(conn, start, end)
    if name == "bureau":
        return bureau(conn, end)
    if name == "exposure":
        return exposure(conn, end, cap_fen, zone)
    raise ReportError(f"report: one of {', '.join(REPORTS)}")
