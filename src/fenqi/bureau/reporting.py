"""Monthly account-level reporting: records from the ledger and arrears, files, reconciliation.

For a date of account information (the last day of a month, after that night's end of day):

- balance: what the customer owes by the ledger as of that date — the net posted debit of the
  account's principal, fee, interest and penalty receivables and its written-off receivable,
  counting only entries with a business date on or before it;
- charge-off amount: everything ever moved to the written-off receivable by that date;
- days past due: `credit.arrears.arrears_on` of the account's oldest late due date, which the
  end of day stores only once an amount is out of the product's grace period — so a grace
  period is never reported as late;
- amount past due: the unpaid principal, fee and interest of plan lines due on or after that
  oldest late date and on or before the reporting date (not revolving), when days past due > 0;
- status: charged off, closed (with nothing owed), delinquent or current;
- special comment: dispute while a dispute by the subject is open (fenqi.bureau.disputes), else
  hardship (an open hardship plan);
- history: the records reported in earlier months (table bureau_records), so the 24-month
  payment history string is what was reported, month by month;
- a record differing from one already reported for the same account and date is a correction.

CNY accounts go to a PBOC-style file, USD accounts to a Metro 2 file; both are validated before
anything is returned. The first negative record of an account is preceded by a notice to the
shopper, recorded in bureau_notices (and audited) before the file is built.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, String, and_, cast, func, select

from fenqi.bureau import metro2, pboc
from fenqi.bureau.corrections import corrected_fixes, fixed_record
from fenqi.bureau.records import (
    HISTORY_MONTHS,
    AccountRecord,
    MonthPoint,
    Portfolio,
    ReportStatus,
    SpecialComment,
    status_for,
)
from fenqi.clock import Clock
from fenqi.credit.arrears import arrears_on
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.privacy import audit
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.identity import validate_id_number
from fenqi.store.schema.bureau import bureau_notices, bureau_records
from fenqi.store.schema.credit import credit_accounts, installment_plans, plan_lines
from fenqi.store.schema.ledger import ledger_accounts, ledger_entries, ledger_postings
from fenqi.store.schema.parties import customers

OWED_CODES = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.FEE_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
    AccountCode.WRITTEN_OFF_RECEIVABLE,
)
FORMAT_OF_CURRENCY = {"CNY": "pboc", "USD": "metro2"}
# a customer anonymized after the retention period (fenqi.privacy.rights) is no longer reported
ERASED_PREFIX = "erased:"


def disputed_accounts(conn: Connection) -> set[int]:
    """Credit accounts with a dispute open (their records carry the dispute flag)."""
    from fenqi.store.schema.compliance import bureau_disputes

    d = bureau_disputes.c
    found = conn.execute(select(d.credit_account_id).where(d.status == "open")).scalars()
    return {int(i) for i in found}


def ledger_owed_as_of(
    conn: Connection, as_of: date, account_ids: list[int] | None = None
) -> tuple[dict[int, int], dict[int, int]]:
    """Per credit account: (what is owed, what was charged off) by the ledger as of `as_of`."""
    acc = ledger_accounts
    p = ledger_postings
    e = ledger_entries
    codes = [c.value for c in OWED_CODES]
    mine = and_(acc.c.owner_kind == OwnerKind.CUSTOMER.value, acc.c.code.in_(codes))
    if account_ids is not None:
        mine = and_(mine, acc.c.owner_id.in_([str(i) for i in account_ids]))
    owed: dict[int, int] = defaultdict(int)
    charged: dict[int, int] = defaultdict(int)
    for side, sign in ((p.c.debit_account_id, 1), (p.c.credit_account_id, -1)):
        q = (
            select(acc.c.owner_id, acc.c.code, func.sum(p.c.amount_fen))
            .select_from(p.join(e, e.c.id == p.c.entry_id).join(acc, acc.c.id == side))
            .where(mine, p.c.phase == "posted", e.c.business_date <= as_of)
            .group_by(acc.c.owner_id, acc.c.code)
        )
        for owner, code, amount in conn.execute(q):
            try:
                key = int(owner)
            except ValueError:
                continue
            owed[key] += sign * int(amount)
            if code == AccountCode.WRITTEN_OFF_RECEIVABLE.value and sign == 1:
                charged[key] += int(amount)
    return dict(owed), dict(charged)


def _past_due(conn: Connection, account_id: int, since: date, as_of: date) -> int:
    lines = plan_lines
    unpaid = (
        lines.c.principal_fen
        - lines.c.paid_principal_fen
        - lines.c.waived_principal_fen
        + lines.c.fee_fen
        - lines.c.paid_fee_fen
        - lines.c.waived_fee_fen
        + lines.c.interest_fen
        - lines.c.paid_interest_fen
        - lines.c.waived_interest_fen
    )
    value = conn.execute(
        select(func.coalesce(func.sum(unpaid), 0)).where(
            lines.c.credit_account_id == account_id,
            lines.c.due_date >= since,
            lines.c.due_date <= as_of,
            lines.c.revolving_since.is_(None),
        )
    ).scalar_one()
    return int(value)


def _history(conn: Connection, account_id: int, as_of: date) -> tuple[MonthPoint, ...]:
    rows = conn.execute(
        select(bureau_records.c.month, bureau_records.c.status, bureau_records.c.dpd)
        .where(bureau_records.c.credit_account_id == account_id, bureau_records.c.as_of < as_of)
        .order_by(bureau_records.c.as_of.desc())
        .limit(HISTORY_MONTHS * 2)
    ).all()
    this_month = f"{as_of.year:04d}-{as_of.month:02d}"
    seen: dict[str, MonthPoint] = {}
    for r in rows:  # newest record of each earlier month (an event record this month is not)
        if r.month == this_month:
            continue
        seen.setdefault(r.month, MonthPoint(r.month, ReportStatus(r.status), int(r.dpd)))
    return tuple(seen.values())[: HISTORY_MONTHS - 1]


@dataclass
class ReportRun:
    as_of: date
    records: list[AccountRecord] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # format -> text
    notices: int = 0
    corrections: int = 0

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = defaultdict(int)
        for r in self.records:
            by_status[r.status.value] += 1
        return {
            "as_of": self.as_of.isoformat(),
            "records": len(self.records),
            "by_status": dict(by_status),
            "negative": sum(r.negative for r in self.records),
            "notices_recorded": self.notices,
            "corrections": self.corrections,
            "files": {fmt: text.count("\n") - 2 for fmt, text in self.files.items()},
            "balance_fen_by_currency": _sum_by_currency(self.records),
        }


def _sum_by_currency(records: list[AccountRecord]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in records:
        out[r.currency] += r.balance_minor
    return dict(out)


def build_records(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    as_of: date,
    *,
    grace_of: dict[str, int] | None = None,
    zone: str = "Asia/Shanghai",
    only: set[int] | None = None,
) -> ReportRun:
    """Derive, store and notice this date's records (one transaction: the caller's).
    `only`: these credit accounts (a dispute's correction), not every account."""
    tz = ZoneInfo(zone)
    ca = credit_accounts
    accounts = (
        conn.execute(
            select(
                ca.c.id,
                ca.c.product,
                ca.c.currency,
                ca.c.limit_fen,
                ca.c.status,
                ca.c.opened_at,
                ca.c.past_due_since,
                ca.c.charged_off_on,
                customers.c.key_id,
                customers.c.name_enc,
                customers.c.id_number_enc,
            )
            .select_from(ca.join(customers, cast(customers.c.id, String) == ca.c.customer_ref))
            .where(ca.c.opened_at <= datetime.combine(as_of, datetime.max.time(), tz))
            .where(ca.c.id.in_(only) if only is not None else ca.c.id.isnot(None))
            .where(~customers.c.id_number_bidx.startswith(ERASED_PREFIX))
            .order_by(ca.c.id)
        )
        .mappings()
        .all()
    )
    owed, charged = ledger_owed_as_of(conn, as_of)
    hardship = {
        int(r.credit_account_id)
        for r in conn.execute(
            select(installment_plans.c.credit_account_id).where(
                installment_plans.c.kind == "hardship", installment_plans.c.status == "open"
            )
        )
    }
    reported = {
        int(r.credit_account_id): r
        for r in conn.execute(select(bureau_records).where(bureau_records.c.as_of == as_of))
    }
    noticed = {int(r.credit_account_id) for r in conn.execute(select(bureau_notices))}
    disputed = disputed_accounts(conn)
    fixes = corrected_fixes(conn, as_of)  # disputes corrected by an investigator's fix
    run = ReportRun(as_of)
    now = clock.now()
    for a in accounts:
        account_id = int(a["id"])
        balance = max(0, owed.get(account_id, 0))
        charged_off = a["charged_off_on"] is not None and a["charged_off_on"] <= as_of
        grace = (grace_of or {}).get(a["product"], 0)
        dpd, _ = arrears_on(a["past_due_since"], as_of, grace)
        past_due = 0
        if dpd > 0 and a["past_due_since"] is not None:
            past_due = min(balance, _past_due(conn, account_id, a["past_due_since"], as_of))
        status = status_for(dpd, charged_off, balance, a["status"] == "closed")
        if status is ReportStatus.CURRENT and dpd:
            dpd = 0
        if status is ReportStatus.CHARGED_OFF:
            past_due = balance
        id_number = keys.decrypt(a["key_id"], a["id_number_enc"], context="customers.id_number")
        name = keys.decrypt(a["key_id"], a["name_enc"], context="customers.name")
        birth = (
            validate_id_number(id_number, today=as_of).birth_date
            if a["currency"] == "CNY"
            else None
        )
        record = AccountRecord(
            account_ref=str(account_id),
            subject_id=id_number,
            name=name,
            currency=a["currency"],
            portfolio=Portfolio.REVOLVING,
            opened_on=a["opened_at"].astimezone(tz).date()
            if a["opened_at"].tzinfo
            else a["opened_at"].date(),
            as_of=as_of,
            limit_minor=int(a["limit_fen"]),
            balance_minor=balance,
            past_due_minor=past_due,
            dpd=dpd if status is not ReportStatus.CLOSED else 0,
            status=status,
            charge_off_minor=charged.get(account_id, 0),
            special_comment=SpecialComment.DISPUTE
            if account_id in disputed
            else (SpecialComment.HARDSHIP if account_id in hardship else None),
            first_delinquency_on=a["past_due_since"] if dpd > 0 else None,
            birth_date=birth,
            history=_history(conn, account_id, as_of),
        )
        if account_id in fixes:
            record = fixed_record(record, fixes[account_id])
        before = reported.get(account_id)
        values = {
            "credit_account_id": account_id,
            "as_of": as_of,
            "month": record.month,
            "currency": record.currency,
            "status": record.status.value,
            "dpd": record.dpd,
            "limit_fen": record.limit_minor,
            "balance_fen": record.balance_minor,
            "past_due_fen": record.past_due_minor,
            "charge_off_fen": record.charge_off_minor,
            "special": record.special_comment.value if record.special_comment else "",
        }
        if before is not None:
            same = all(getattr(before, k) == v for k, v in values.items())
            if same:
                record = _with_correction(record, bool(before.correction))
            else:
                record = _with_correction(record, True)
                run.corrections += 1
                conn.execute(
                    bureau_records.update()
                    .where(
                        bureau_records.c.credit_account_id == account_id,
                        bureau_records.c.as_of == as_of,
                    )
                    .values(**values, correction=True, created_at=now)
                )
        else:
            conn.execute(bureau_records.insert().values(**values, correction=False, created_at=now))
        if record.negative and account_id not in noticed:
            conn.execute(
                bureau_notices.insert().values(
                    credit_account_id=account_id, notified_at=now, month=record.month
                )
            )
            audit.record(
                conn,
                clock,
                actor_kind="system",
                actor_id="bureau",
                action="bureau.negative_notice",
                target_kind="credit_account",
                target_id=account_id,
                detail={"month": record.month, "status": record.status.value, "dpd": record.dpd},
            )
            noticed.add(account_id)
            run.notices += 1
        run.records.append(record)
    return run


def _with_correction(record: AccountRecord, correction: bool) -> AccountRecord:
    from dataclasses import replace

    return replace(record, correction=correction)


def write_files(run: ReportRun, clock: Clock, reporter: str = "FENQI") -> dict[str, str]:
    """Render and validate one file per format (only formats with records)."""
    by_format: dict[str, list[AccountRecord]] = defaultdict(list)
    for r in run.records:
        fmt = FORMAT_OF_CURRENCY.get(r.currency)
        if fmt is None:
            raise ValueError(f"currency: no reporting format for {r.currency}")
        by_format[fmt].append(r)
    files: dict[str, str] = {}
    if by_format.get("pboc"):
        files["pboc"] = pboc.write_file(
            by_format["pboc"], run.records[0].month, clock.today(), reporter
        )
    if by_format.get("metro2"):
        files["metro2"] = metro2.write_file(
            by_format["metro2"], run.as_of, clock.today(), clock.now(), reporter
        )
    run.files = files
    return files


@dataclass(frozen=True, slots=True)
class ReconDifference:
    credit_account_id: int
    reported_fen: int | None  # None: not reported
    ledger_fen: int
    what: str


def reconcile(conn: Connection, as_of: date) -> list[ReconDifference]:
    """Reported balances at `as_of` against the ledger's balances as of that date: every
    reported record must equal the ledger, and every account owing something must be
    reported."""
    owed, _ = ledger_owed_as_of(conn, as_of)
    reported = {
        int(r.credit_account_id): int(r.balance_fen)
        for r in conn.execute(
            select(bureau_records.c.credit_account_id, bureau_records.c.balance_fen).where(
                bureau_records.c.as_of == as_of
            )
        )
    }
    out = []
    for account_id, balance in sorted(reported.items()):
        ledger = max(0, owed.get(account_id, 0))
        if balance != ledger:
            out.append(ReconDifference(account_id, balance, ledger, "balance differs"))
    for account_id, ledger in sorted(owed.items()):
        if ledger > 0 and account_id not in reported:
            out.append(ReconDifference(account_id, None, ledger, "owing but not reported"))
    return out
