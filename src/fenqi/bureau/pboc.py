"""A PBOC-style personal-loan account record file, for CNY accounts.

The PBOC credit reference center's data-collection interface specification (个人信用信息基础
数据库数据采集接口规范, second generation) is issued to reporting institutions and not public in
full; this layout carries the fields its personal credit account record (个人借贷账户信息记录)
is publicly described as holding — the base segment (account id, identity type and number,
name), the basic-information segment (account type, opening date, currency, credit limit) and
the monthly-performance segment (balance, amount overdue, overdue periods, five-category
classification, 24-month repayment status) — in fenqi's own delimited text form. It is a stand-in
for the real layout, documented field by field in docs/bureau.md; a real submission maps the
same AccountRecord to the institution's copy of the specification.

A file is UTF-8 text, one record per line, fields separated by "|":
  H|PBOC-FQ-1|<reporter>|<YYYY-MM>|<created YYYYMMDD>
  A|... (FIELDS below)
  T|<record count>|<sum of balances in fen>
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from fenqi.bureau.errors import FileFormatError
from fenqi.bureau.records import (
    HISTORY_MONTHS,
    AccountRecord,
    MonthPoint,
    Portfolio,
    ReportStatus,
    SpecialComment,
    history_points,
)

VERSION = "PBOC-FQ-1"
FIELDS = (
    "record_type",  # A
    "account_id",  # 账户标识码: the lender's account number
    "id_type",  # 证件类型: 10 = resident identity card
    "id_number",  # 证件号码
    "name",  # 姓名
    "account_type",  # 账户类型: R1 revolving loan account, D1 non-revolving loan account
    "opened_on",  # 开户日期 YYYYMMDD
    "currency",  # 币种
    "credit_limit",  # 授信额度, fen
    "report_date",  # 信息报告日期 YYYYMMDD (the date of account information)
    "account_status",  # 账户状态: 1 normal, 2 overdue, 3 closed, 4 bad debt (charged off)
    "balance",  # 余额, fen
    "overdue_amount",  # 当前逾期总额, fen
    "overdue_periods",  # 当前逾期期数 (0..7: M0..M7+)
    "days_past_due",  # 逾期天数
    "five_class",  # 五级分类: 1 正常 2 关注 3 次级 4 可疑 5 损失
    "repayment_status_24m",  # 24-month repayment status, oldest month first
    "charge_off_amount",  # 呆账金额, fen
    "special_event",  # 特殊事件: HARDSHIP | DISPUTE (异议标注) | empty
    "correction",  # 更正标志: 1 replaces the earlier record of this account and report date
    "closed_on",  # 结清日期 YYYYMMDD or empty
)
ACCOUNT_TYPE = {Portfolio.REVOLVING: "R1", Portfolio.INSTALLMENT: "D1"}
STATUS = {
    ReportStatus.CURRENT: "1",
    ReportStatus.DELINQUENT: "2",
    ReportStatus.CLOSED: "3",
    ReportStatus.CHARGED_OFF: "4",
}
# 24-month status characters: N normal, 1..7 overdue periods (M1..M7+), C closed, B bad debt,
# / not open or not reported that month
HISTORY_CHARS = set("N1234567CB/")


def overdue_periods(dpd: int) -> int:
    return 0 if dpd <= 0 else min(7, (dpd - 1) // 30 + 1)


def five_class(record: AccountRecord) -> int:
    """正常/关注/次级/可疑/损失. Regulators expect 90+ days past due to be at least 次级
    (docs/bureau.md); the other cut-offs are fenqi's assumption."""
    if record.status is ReportStatus.CHARGED_OFF:
        return 5
    if record.dpd > 180:
        return 4
    if record.dpd > 90:
        return 3
    if record.dpd > 0:
        return 2
    return 1


def history_char(point: MonthPoint | None) -> str:
    if point is None:
        return "/"
    if point.status is ReportStatus.CHARGED_OFF:
        return "B"
    if point.status is ReportStatus.CLOSED:
        return "C"
    periods = overdue_periods(point.dpd)
    return "N" if periods == 0 else str(periods)


def repayment_status(record: AccountRecord) -> str:
    """24 characters, oldest month first (as the PBOC report shows it)."""
    return "".join(history_char(p) for p in reversed(history_points(record, HISTORY_MONTHS)))


def _d(value: date | None) -> str:
    return "" if value is None else value.strftime("%Y%m%d")


def _clean(text: str, name: str) -> str:
    if "|" in text or "\n" in text or "\r" in text:
        raise FileFormatError(f"{name}: must not hold '|' or a line break", field=name)
    return text


def record_line(record: AccountRecord) -> str:
    special = {SpecialComment.HARDSHIP: "HARDSHIP", SpecialComment.DISPUTE: "DISPUTE"}
    values = [
        "A",
        _clean(record.account_ref, "account_id"),
        "10",
        _clean(record.subject_id, "id_number"),
        _clean(record.name, "name"),
        ACCOUNT_TYPE[record.portfolio],
        _d(record.opened_on),
        record.currency,
        str(record.limit_minor),
        _d(record.as_of),
        STATUS[record.status],
        str(record.balance_minor),
        str(record.past_due_minor),
        str(overdue_periods(record.dpd)),
        str(record.dpd),
        str(five_class(record)),
        repayment_status(record),
        str(record.charge_off_minor),
        "" if record.special_comment is None else special[record.special_comment],
        "1" if record.correction else "0",
        _d(record.closed_on),
    ]
    return "|".join(values)


def write_file(
    records: list[AccountRecord], month: str, created: date, reporter: str = "FENQI"
) -> str:
    lines = [f"H|{VERSION}|{reporter}|{month}|{_d(created)}"]
    lines += [record_line(r) for r in records]
    lines.append(f"T|{len(records)}|{sum(r.balance_minor for r in records)}")
    text = "\n".join(lines) + "\n"
    validate(text)
    return text


@dataclass(frozen=True, slots=True)
class PbocRow:
    account_ref: str
    subject_id: str
    name: str
    account_type: str
    opened_on: date
    currency: str
    limit: int
    as_of: date
    status: str
    balance: int
    past_due: int
    dpd: int
    history: str
    charge_off: int
    special_event: str
    correction: bool


def _bad(no: int, name: str, why: str) -> FileFormatError:
    return FileFormatError(f"line {no}: {name} {why}", line=no, field=name)


def _int(value: str, no: int, name: str) -> int:
    if not value.isdigit():
        raise _bad(no, name, f"{value!r} is not a non-negative integer")
    return int(value)


def _date(value: str, no: int, name: str) -> date:
    try:
        if len(value) != 8:
            raise ValueError
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise _bad(no, name, f"{value!r} is not a date YYYYMMDD") from None


def parse(text: str) -> list[PbocRow]:
    """Validate a file against the layout; every refusal names the line and the field."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise FileFormatError("file: needs a header and a trailer line", line=0, field="file")
    head = lines[0].split("|")
    if len(head) != 5 or head[0] != "H" or head[1] != VERSION:
        raise _bad(1, "header", f"must be H|{VERSION}|reporter|YYYY-MM|YYYYMMDD")
    rows = []
    for no, line in enumerate(lines[1:-1], 2):
        parts = line.split("|")
        if len(parts) != len(FIELDS):
            raise _bad(no, "record", f"has {len(parts)} fields, the layout has {len(FIELDS)}")
        v = dict(zip(FIELDS, parts, strict=True))
        if v["record_type"] != "A":
            raise _bad(no, "record_type", "must be A")
        if not v["account_id"]:
            raise _bad(no, "account_id", "is required")
        if v["id_type"] != "10":
            raise _bad(no, "id_type", "must be 10 (resident identity card)")
        if len(v["id_number"]) != 18:
            raise _bad(no, "id_number", "must be 18 characters")
        if v["account_type"] not in ACCOUNT_TYPE.values():
            raise _bad(no, "account_type", f"{v['account_type']!r} is not R1 or D1")
        if v["currency"] != "CNY":
            raise _bad(no, "currency", "must be CNY")
        if v["account_status"] not in STATUS.values():
            raise _bad(no, "account_status", f"{v['account_status']!r} is not 1..4")
        history = v["repayment_status_24m"]
        if len(history) != HISTORY_MONTHS or any(c not in HISTORY_CHARS for c in history):
            raise _bad(no, "repayment_status_24m", f"{history!r} is not 24 of N1234567CB/")
        if v["special_event"] not in ("", "HARDSHIP", "DISPUTE"):
            raise _bad(no, "special_event", f"{v['special_event']!r} is not a known event")
        if v["correction"] not in ("0", "1"):
            raise _bad(no, "correction", "must be 0 or 1")
        balance = _int(v["balance"], no, "balance")
        past_due = _int(v["overdue_amount"], no, "overdue_amount")
        if past_due > balance:
            raise _bad(no, "overdue_amount", "is more than the balance")
        dpd = _int(v["days_past_due"], no, "days_past_due")
        if _int(v["overdue_periods"], no, "overdue_periods") != overdue_periods(dpd):
            raise _bad(no, "overdue_periods", "does not match days_past_due")
        _int(v["five_class"], no, "five_class")
        if v["closed_on"]:
            _date(v["closed_on"], no, "closed_on")
        rows.append(
            PbocRow(
                account_ref=v["account_id"],
                subject_id=v["id_number"],
                name=v["name"],
                account_type=v["account_type"],
                opened_on=_date(v["opened_on"], no, "opened_on"),
                currency=v["currency"],
                limit=_int(v["credit_limit"], no, "credit_limit"),
                as_of=_date(v["report_date"], no, "report_date"),
                status=v["account_status"],
                balance=balance,
                past_due=past_due,
                dpd=dpd,
                history=history,
                charge_off=_int(v["charge_off_amount"], no, "charge_off_amount"),
                special_event=v["special_event"],
                correction=v["correction"] == "1",
            )
        )
    last = len(lines)
    tail = lines[-1].split("|")
    if len(tail) != 3 or tail[0] != "T":
        raise _bad(last, "trailer", "must be T|count|sum of balances")
    if _int(tail[1], last, "trailer.count") != len(rows):
        raise _bad(last, "trailer.count", f"{tail[1]} but the file has {len(rows)} records")
    if _int(tail[2], last, "trailer.balance_sum") != sum(r.balance for r in rows):
        raise _bad(last, "trailer.balance_sum", "is not the sum of the records' balances")
    return rows


def validate(text: str) -> int:
    return len(parse(text))
