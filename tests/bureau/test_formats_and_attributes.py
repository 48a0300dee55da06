"""Pure bureau logic: the record model, Metro 2 and PBOC-style files, attributes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from fenqi.bureau import metro2, pboc
from fenqi.bureau.attributes import CHARGED_OFF_DPD, compute, months_before
from fenqi.bureau.errors import FileFormatError
from fenqi.bureau.model import CreditReport, HistoryEntry, ReportAccount, ReportInquiry
from fenqi.bureau.records import (
    AccountRecord,
    MonthPoint,
    Portfolio,
    ReportStatus,
    SpecialComment,
    parse_month,
    status_for,
)
from fenqi.credit.arrears import arrears_on

STAMP = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def record(**kw: object) -> AccountRecord:
    base = dict(
        account_ref="42",
        subject_id="11010519900307123X",
        name="张三",
        currency="CNY",
        portfolio=Portfolio.REVOLVING,
        opened_on=date(2025, 11, 5),
        as_of=date(2026, 3, 31),
        limit_minor=500_000,
        balance_minor=120_000,
        past_due_minor=0,
        dpd=0,
        status=ReportStatus.CURRENT,
    )
    base.update(kw)
    return AccountRecord(**base)  # type: ignore[arg-type]


def test_status_rules_and_grace_not_late() -> None:
    # within 3 days of grace an amount due on 03-10 is not late on 03-13; the 14th is DPD 4
    assert arrears_on(date(2026, 3, 10), date(2026, 3, 13), grace_days=3) == (0, "M0")
    assert arrears_on(date(2026, 3, 10), date(2026, 3, 14), grace_days=3)[0] == 4
    assert status_for(0, False, 100, False) is ReportStatus.CURRENT
    assert status_for(5, False, 100, False) is ReportStatus.DELINQUENT
    assert status_for(0, False, 0, True) is ReportStatus.CLOSED
    assert status_for(200, True, 100, False) is ReportStatus.CHARGED_OFF
    with pytest.raises(ValueError, match="past_due_minor"):
        record(past_due_minor=200_000)
    with pytest.raises(ValueError, match="--month"):
        parse_month("2026-3")
    assert parse_month("2026-02") == date(2026, 2, 28)


def test_metro2_record_is_426_bytes_with_header_and_trailer() -> None:
    late = record(
        account_ref="7",
        subject_id="123456789",
        name="John Smith",
        currency="USD",
        balance_minor=123_456,
        past_due_minor=40_099,
        dpd=65,
        status=ReportStatus.DELINQUENT,
        first_delinquency_on=date(2026, 1, 25),
        history=(
            MonthPoint("2026-02", ReportStatus.DELINQUENT, 35),
            MonthPoint("2026-01", ReportStatus.CURRENT, 0),
        ),
    )
    ok = record(
        account_ref="8",
        subject_id="987654321",
        name="Ann Lee",
        currency="USD",
        special_comment=SpecialComment.DISPUTE,
    )
    text = metro2.write_file([late, ok], date(2026, 3, 31), date(2026, 4, 1), STAMP)
    lines = text.rstrip("\n").split("\n")
    assert [len(line) for line in lines] == [426] * 4
    assert lines[0][4:10] == "HEADER" and lines[-1][4:11] == "TRAILER"
    base = lines[1]
    assert base[0:4] == "0426"
    assert base[123:125] == "78"  # 60-89 days past due
    # this month 60+, February 30+, January current, then D (no record) back to the opening
    # month (2025-11), B before it
    assert base[126:150] == "210DD" + "B" * 19
    assert base[154:163] == "000001234"  # whole dollars
    assert base[163:172] == "000000400"
    assert lines[2][152:154] == "XB"  # disputed
    assert lines[-1][11:20] == "000000002"
    rows = metro2.parse(text)
    assert [r.status for r in rows] == ["78", "11"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda ls: [ls[0], ls[1][:-1], ls[2]], "RecordDescriptorWord"),  # 425 bytes
        (lambda ls: [ls[0], ls[1][:154] + "12345678X" + ls[1][163:], ls[2]], "CurrentBalance"),
        (lambda ls: [ls[0], ls[1][:123] + "99" + ls[1][125:], ls[2]], "AccountStatus"),
        (lambda ls: [ls[0], ls[1], ls[2][:11] + "000000005" + ls[2][20:]], "TotalBaseRecords"),
        (lambda ls: [ls[1], ls[2]], "RecordIdentifier"),
    ],
)
def test_metro2_malformed_file_is_refused_naming_the_field(mutate: object, field: str) -> None:
    text = metro2.write_file(
        [record(currency="USD", subject_id="123456789", name="A B")],
        date(2026, 3, 31),
        date(2026, 4, 1),
        STAMP,
    )
    lines = text.rstrip("\n").split("\n")
    bad = "\n".join(mutate(lines)) + "\n"  # type: ignore[operator]
    with pytest.raises(FileFormatError) as err:
        metro2.parse(bad)
    assert err.value.detail["field"] == field


def test_pboc_file_layout_and_validation() -> None:
    late = record(
        balance_minor=90_000,
        past_due_minor=30_000,
        dpd=40,
        status=ReportStatus.DELINQUENT,
        special_comment=SpecialComment.HARDSHIP,
        history=(MonthPoint("2026-02", ReportStatus.DELINQUENT, 10),),
    )
    charged = record(
        account_ref="43",
        balance_minor=50_000,
        past_due_minor=50_000,
        dpd=200,
        status=ReportStatus.CHARGED_OFF,
        charge_off_minor=50_000,
    )
    text = pboc.write_file([late, charged], "2026-03", date(2026, 4, 1))
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "H|PBOC-FQ-1|FENQI|2026-03|20260401"
    assert lines[-1] == "T|2|140000"
    fields = dict(zip(pboc.FIELDS, lines[1].split("|"), strict=True))
    assert fields["account_status"] == "2"
    assert fields["overdue_periods"] == "2"
    assert fields["five_class"] == "2"
    # oldest first: no record (/) until February (1 period overdue), then March (2)
    assert fields["repayment_status_24m"] == "/" * 22 + "12"
    assert fields["special_event"] == "HARDSHIP"
    assert dict(zip(pboc.FIELDS, lines[2].split("|"), strict=True))["five_class"] == "5"
    rows = pboc.parse(text)
    assert [r.balance for r in rows] == [90_000, 50_000]
    broken = text.replace("T|2|140000", "T|2|140001")
    with pytest.raises(FileFormatError) as err:
        pboc.parse(broken)
    assert err.value.detail == {"line": 4, "field": "trailer.balance_sum"}
    bad_status = text.replace("|2|90000|", "|9|90000|")
    with pytest.raises(FileFormatError) as err:
        pboc.parse(bad_status)
    assert err.value.detail["field"] == "account_status"
    with pytest.raises(FileFormatError):
        pboc.write_file([replace(late, name="a|b")], "2026-03", date(2026, 4, 1))


def _account(lender: str, **kw: object) -> ReportAccount:
    base = dict(
        lender=lender,
        account_ref=f"{lender}-1",
        portfolio="revolving",
        currency="CNY",
        opened_on=date(2024, 1, 1),
        closed_on=None,
        limit_minor=1_000_000,
        balance_minor=300_000,
        past_due_minor=0,
        status="current",
        dpd=0,
        as_of=date(2026, 2, 28),
        history=(),
    )
    base.update(kw)
    return ReportAccount(**base)  # type: ignore[arg-type]


def test_attributes_count_elsewhere_worst_24m_and_inquiry_windows() -> None:
    at = datetime(2026, 3, 15, tzinfo=UTC)
    report = CreditReport(
        report_id="r",
        subject_id="s",
        generated_at=at,
        accounts=(
            _account("fenqi", balance_minor=999),  # own account: not 'elsewhere'
            _account("bank_a"),
            _account("bank_a", account_ref="a2", balance_minor=100_000),
            _account(
                "jiebei",
                past_due_minor=50_000,
                status="delinquent",
                dpd=35,
                history=(
                    HistoryEntry("2025-06", "delinquent", 95),
                    HistoryEntry("2023-01", "charged_off", 0),
                ),
            ),  # older than 24m
            _account("cfc_b", status="closed", closed_on=date(2025, 1, 1), balance_minor=0),
        ),
        inquiries=(
            ReportInquiry("bank_a", "loan_application", datetime(2026, 3, 1, tzinfo=UTC)),
            ReportInquiry("jiebei", "loan_application", datetime(2025, 11, 1, tzinfo=UTC)),
            ReportInquiry("cfc_b", "loan_application", datetime(2025, 5, 1, tzinfo=UTC)),
            ReportInquiry("cfc_b", "loan_application", datetime(2024, 1, 1, tzinfo=UTC)),
        ),
    )
    a = compute(report, date(2026, 3, 15), "fenqi")
    assert a.open_accounts_elsewhere == 3
    assert a.lenders_elsewhere == 2
    assert a.balances_elsewhere_minor == 700_000
    assert a.past_due_elsewhere_minor == 50_000
    assert a.worst_dpd_24m == 95 and a.worst_status_24m == "M4"
    assert (a.inquiries_3m, a.inquiries_6m, a.inquiries_12m) == (1, 2, 3)
    assert not a.thin_file
    charged = replace(report, accounts=(_account("x", status="charged_off", dpd=0),))
    assert compute(charged, date(2026, 3, 15), "fenqi").worst_status_24m == "charged_off"
    assert compute(charged, date(2026, 3, 15), "fenqi").worst_dpd_24m == CHARGED_OFF_DPD
    empty = replace(report, accounts=(), inquiries=())
    assert compute(empty, date(2026, 3, 15), "fenqi").thin_file
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert CreditReport.from_json(report.to_json()) == report
