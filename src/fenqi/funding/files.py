"""Loan-level partner files: one per funder per business date, in CSV and Parquet, and their
check against the ledger.

A file lists every loan (plan) the funder holds a part of on that date: the loan id, the
funder's disbursement, its balance at the end of the date, the loan's status and days past
due, and the principal and income repaid to the funder that date; then one control row
(`record_type` "total", `loan_id` the number of loans) with the sums of the money columns.

The rows come from the funding tables (tranches, movements) and the credit accounts (status,
DPD) in one set-based statement. `verify_file` reads a file back (CSV or Parquet), checks its
shape and its control row, and recomputes every money figure of every loan from the ledger's
postings on the funder's accounts (entries about the plan up to that date): a file edited by
hand is refused, naming the row and the column. Polars writes both formats (no pyarrow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, and_, case, cast, func, literal, select
from sqlalchemy import String as SqlString

from fenqi.errors import FenqiError
from fenqi.funding.allocation import CashKind
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.funding import funding_movements as mv_t
from fenqi.store.schema.funding import funding_tranches as tr_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst

COLLECTED = [CashKind.REPAYMENT.value, CashKind.REFUND.value, CashKind.PAYOFF.value]
MONEY = (
    "disbursement_fen",
    "balance_fen",
    "principal_repaid_fen",
    "principal_reversed_fen",
    "income_repaid_fen",
    "income_reversed_fen",
)
SCHEMA: dict[str, Any] = {
    "record_type": pl.Utf8,  # loan | total
    "funder_id": pl.Utf8,
    "business_date": pl.Utf8,  # ISO date
    "loan_id": pl.Utf8,  # the plan id; on the control row, the number of loans
    "credit_account_id": pl.Int64,
    "program_id": pl.Utf8,
    "disbursed_on": pl.Utf8,
    "disbursement_fen": pl.Int64,
    "balance_fen": pl.Int64,
    "status": pl.Utf8,  # current | overdue | charged_off | closed
    "dpd": pl.Int64,
    "principal_repaid_fen": pl.Int64,
    "principal_reversed_fen": pl.Int64,  # a bounced repayment's principal given back, that day
    "income_repaid_fen": pl.Int64,
    "income_reversed_fen": pl.Int64,
}


class PartnerFileError(FenqiError):
    code = "partner_file_mismatch"
    http_status = 422


@dataclass(frozen=True, slots=True)
class ExportedFile:
    funder_id: str
    business_date: date
    csv_path: Path
    parquet_path: Path
    loans: int
    totals: dict[str, int]


def _day_sum(when: Any, amount: Any, sign: int) -> Any:
    """The sum of `amount` over movements matching `when`: those recorded (sign 1) or those
    reversing one (sign -1, a bounced repayment's opposite movement, counted positive)."""
    return func.sum(case((and_(when, amount * sign > 0), amount * sign), else_=0))


def loan_rows(conn: Connection, funder_id: str, day: date) -> list[dict[str, Any]]:
    """The funder's loans on `day` (disbursed by then, with a balance left or activity that
    day), one statement: tranches joined to the movements up to the date and the account."""
    to_date = and_(mv_t.c.business_date <= day)
    today = mv_t.c.business_date == day
    collected = and_(today, mv_t.c.kind.in_(COLLECTED))
    moved = (
        select(
            mv_t.c.plan_id,
            func.sum(
                case(
                    (and_(to_date, mv_t.c.kind != CashKind.RECOVERY.value), mv_t.c.principal_fen),
                    else_=0,
                )
            ).label("down"),
            _day_sum(collected, mv_t.c.principal_fen, 1).label("repaid"),
            _day_sum(collected, mv_t.c.principal_fen, -1).label("reversed"),
            _day_sum(today, mv_t.c.income_fen, 1).label("income"),
            _day_sum(today, mv_t.c.income_fen, -1).label("income_reversed"),
            func.sum(
                case(
                    (
                        and_(
                            to_date,
                            mv_t.c.kind.in_([CashKind.CHARGE_OFF.value, CashKind.WAIVER.value]),
                        ),
                        mv_t.c.principal_fen,
                    ),
                    else_=0,
                )
            ).label("lost"),
            func.sum(case((mv_t.c.business_date == day, 1), else_=0)).label("events"),
        )
        .where(mv_t.c.funder_id == funder_id, mv_t.c.business_date <= day)
        .group_by(mv_t.c.plan_id)
        .subquery()
    )
    down = func.coalesce(moved.c.down, 0)
    rows = conn.execute(
        select(
            tr_t.c.plan_id,
            tr_t.c.credit_account_id,
            tr_t.c.program_id,
            tr_t.c.business_date,
            tr_t.c.principal_fen,
            (tr_t.c.principal_fen - down).label("balance"),
            func.coalesce(moved.c.repaid, 0).label("repaid"),
            func.coalesce(moved.c.reversed, 0).label("reversed"),
            func.coalesce(moved.c.income, 0).label("income"),
            func.coalesce(moved.c.income_reversed, 0).label("income_reversed"),
            func.coalesce(moved.c.lost, 0).label("lost"),
            func.coalesce(moved.c.events, 0).label("events"),
            ca.c.past_due_since,
            ca.c.charged_off_on,
        )
        .select_from(
            tr_t.outerjoin(moved, moved.c.plan_id == tr_t.c.plan_id).join(
                ca, ca.c.id == tr_t.c.credit_account_id
            )
        )
        .where(tr_t.c.funder_id == funder_id, tr_t.c.business_date <= day)
        .order_by(tr_t.c.plan_id)
    ).all()
    out = []
    for r in rows:
        balance, repaid, income = int(r.balance), int(r.repaid), int(r.income)
        if balance == 0 and not int(r.events) and r.business_date != day:
            continue  # closed before the date: not on the file
        dpd = (
            (day - r.past_due_since).days
            if r.past_due_since is not None and r.past_due_since < day
            else 0
        )
        if balance == 0:
            status, dpd = ("charged_off" if int(r.lost) else "closed"), 0
        elif r.charged_off_on is not None and r.charged_off_on <= day:
            status = "charged_off"
        else:
            status = "overdue" if dpd > 0 else "current"
        out.append(
            {
                "record_type": "loan",
                "funder_id": funder_id,
                "business_date": day.isoformat(),
                "loan_id": str(r.plan_id),
                "credit_account_id": int(r.credit_account_id),
                "program_id": str(r.program_id),
                "disbursed_on": r.business_date.isoformat(),
                "disbursement_fen": int(r.principal_fen),
                "balance_fen": balance,
                "status": status,
                "dpd": dpd,
                "principal_repaid_fen": repaid,
                "principal_reversed_fen": int(r.reversed),
                "income_repaid_fen": income,
                "income_reversed_fen": int(r.income_reversed),
            }
        )
    return out


def _with_total(rows: list[dict[str, Any]], funder_id: str, day: date) -> pl.DataFrame:
    total: dict[str, Any] = {c: None for c in SCHEMA}
    total.update(
        record_type="total",
        funder_id=funder_id,
        business_date=day.isoformat(),
        loan_id=str(len(rows)),
        **{m: sum(int(r[m]) for r in rows) for m in MONEY},
    )
    return pl.DataFrame([*rows, total], schema=SCHEMA, orient="row")


def partner_frame(conn: Connection, funder_id: str, day: date) -> pl.DataFrame:
    return _with_total(loan_rows(conn, funder_id, day), funder_id, day)


def export_files(conn: Connection, funder_id: str, day: date, out_dir: Path) -> ExportedFile:
    """Write `<funder>_<date>.csv` and `.parquet` into `out_dir` (again: rewritten, the same)."""
    frame = partner_frame(conn, funder_id, day)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{funder_id}_{day.isoformat()}"
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    frame.write_csv(csv_path)
    frame.write_parquet(parquet_path)
    last = frame.row(-1, named=True)
    return ExportedFile(
        funder_id,
        day,
        csv_path,
        parquet_path,
        frame.height - 1,
        {m: int(last[m]) for m in MONEY},
    )


def read_file(path: Path) -> pl.DataFrame:
    """A partner file, CSV or Parquet, with the columns and types it must have."""
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = pl.read_csv(path, schema_overrides=SCHEMA, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise PartnerFileError(f"{path}: cannot read: {exc}", code="partner_file_invalid") from None
    missing = [c for c in SCHEMA if c not in frame.columns]
    if missing:
        raise PartnerFileError(
            f"{path}: missing columns {missing}", code="partner_file_invalid", field=missing[0]
        )
    try:
        return frame.select([pl.col(c).cast(t, strict=True) for c, t in SCHEMA.items()])
    except pl.exceptions.PolarsError as exc:
        raise PartnerFileError(f"{path}: {exc}", code="partner_file_invalid") from None


def ledger_loans(conn: Connection, funder_id: str, day: date) -> dict[str, dict[str, int]]:
    """Per loan, from the ledger alone (postings on the funder's accounts in entries about the
    plan, up to `day`): its disbursement, balance, and principal and income repaid that day."""
    out: dict[str, dict[str, int]] = {}

    def add(loan: str, column: str, amount: int) -> None:
        out.setdefault(loan, {m: 0 for m in MONEY})[column] += amount

    orig = ent.alias("reversed_entry")  # a reversal entry is about its original's plan
    ref = cast(func.coalesce(ent.c.ref_id, orig.c.ref_id), SqlString)
    reversal = case((ent.c.reverses_entry_id.is_(None), literal(0)), else_=literal(1))
    today = case((ent.c.business_date == day, literal(1)), else_=literal(0))
    for side, sign in ((pst.c.credit_account_id, 1), (pst.c.debit_account_id, -1)):
        rows = conn.execute(
            select(ref, acc.c.code, pst.c.code, today, reversal, func.sum(pst.c.amount_fen))
            .select_from(
                pst.join(ent, ent.c.id == pst.c.entry_id)
                .join(acc, acc.c.id == side)
                .outerjoin(orig, orig.c.id == ent.c.reverses_entry_id)
            )
            .where(
                acc.c.owner_kind == OwnerKind.FUNDER.value,
                acc.c.owner_id == funder_id,
                func.coalesce(ent.c.ref_kind, orig.c.ref_kind) == "plan",
                ent.c.business_date <= day,
                pst.c.phase == "posted",
            )
            .group_by(ref, acc.c.code, pst.c.code, today, reversal)
        ).all()
        for loan, account_code, posting_code, is_today, is_reversal, amount in rows:
            amount = int(amount)
            if account_code == AccountCode.FUNDER_PRINCIPAL.value:
                add(loan, "balance_fen", sign * amount)
                if sign > 0 and posting_code == "funding" and not is_reversal:
                    add(loan, "disbursement_fen", amount)
                if is_today and posting_code == "funder_principal":
                    # repaid: debited by a repayment; reversed: credited back by its reversal
                    column = "principal_reversed_fen" if is_reversal else "principal_repaid_fen"
                    if sign == (1 if is_reversal else -1):
                        add(loan, column, amount)
            elif (
                account_code == AccountCode.FUNDER_CASH_DUE.value
                and is_today
                and posting_code == "funder_income"
                and sign == (-1 if is_reversal else 1)
            ):
                add(loan, "income_reversed_fen" if is_reversal else "income_repaid_fen", amount)
    return out


def verify_file(conn: Connection, path: Path) -> dict[str, Any]:
    """Check a partner file against the ledger to the fen; PartnerFileError naming the first
    row and column that differ (row numbers count data rows from 1, as a spreadsheet shows them
    under the header)."""
    frame = read_file(path)
    if frame.height == 0 or frame["record_type"][-1] != "total":
        raise PartnerFileError(f"{path}: the last row must be the control total row")
    loans = frame.head(frame.height - 1)
    total = frame.row(-1, named=True)
    funders = set(frame["funder_id"].to_list())
    days = set(frame["business_date"].to_list())
    if len(funders) != 1 or len(days) != 1:
        raise PartnerFileError(f"{path}: one funder and one date per file, got {funders} {days}")
    funder_id = funders.pop()
    day = date.fromisoformat(days.pop())
    bad_type = [i for i, t in enumerate(loans["record_type"].to_list(), 1) if t != "loan"]
    if bad_type:
        raise PartnerFileError(
            f"{path}: row {bad_type[0]}: record_type must be 'loan'", row=bad_type[0]
        )
    if total["loan_id"] != str(loans.height):
        raise PartnerFileError(
            f"{path}: control total row: loan_id {total['loan_id']} is not the number of loans "
            f"({loans.height})",
            row=frame.height,
            column="loan_id",
        )
    for m in MONEY:
        summed = int(loans[m].sum())
        if total[m] != summed:
            raise PartnerFileError(
                f"{path}: control total row: {m} {total[m]} but the rows add up to {summed}",
                row=frame.height,
                column=m,
            )
    ledger = ledger_loans(conn, funder_id, day)
    expected = {r["loan_id"]: r for r in loan_rows(conn, funder_id, day)}
    seen = set()
    for i, row in enumerate(loans.iter_rows(named=True), 1):
        loan = row["loan_id"]
        if loan in seen:
            raise PartnerFileError(f"{path}: row {i}: loan {loan} twice", row=i, column="loan_id")
        seen.add(loan)
        facts = ledger.get(loan)
        if facts is None or loan not in expected:
            raise PartnerFileError(
                f"{path}: row {i}: loan {loan} is not {funder_id}'s on {day}",
                row=i,
                column="loan_id",
            )
        for m in MONEY:
            if row[m] != facts[m]:
                raise PartnerFileError(
                    f"{path}: row {i} (loan {loan}): {m} is {row[m]} in the file, {facts[m]} in "
                    "the ledger",
                    row=i,
                    column=m,
                )
        for c in ("status", "dpd", "credit_account_id", "disbursed_on"):
            if row[c] != expected[loan][c]:
                raise PartnerFileError(
                    f"{path}: row {i} (loan {loan}): {c} is {row[c]} in the file, "
                    f"{expected[loan][c]} in the books",
                    row=i,
                    column=c,
                )
    missing = sorted(set(expected) - seen, key=int)
    if missing:
        raise PartnerFileError(
            f"{path}: loan {missing[0]} is missing from the file ({len(missing)} missing)",
            column="loan_id",
        )
    return {
        "file": str(path),
        "funder": funder_id,
        "date": day.isoformat(),
        "loans": loans.height,
        **{m: int(total[m]) for m in MONEY},
        "agrees_with_ledger": True,
    }
