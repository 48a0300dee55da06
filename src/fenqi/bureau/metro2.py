"""CDIA Metro 2 (character format) for USD accounts: header, 426-byte base segments, trailer.

Field positions follow the Metro 2 character format as laid out field by field in moov-io/metro2
(pkg/lib/specifications.go, `baseSegmentCharacterFormat`, `headerRecordCharacterFormat`,
`trailerRecordCharacterFormat`); positions below are 0-based offsets. Amounts are whole dollars
(cents are dropped, as Metro 2 reports them); dates MMDDYYYY; every record is 426 bytes, ASCII,
one per line. Only the base segment is written (no J1/J2/K/L/N1 segments).
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
    previous_month,
)

RECORD_LENGTH = 426

# name: (offset, length, kind) with kind "N" numeric zero-filled, "A" alphanumeric blank-filled
BASE: dict[str, tuple[int, int, str]] = {
    "RecordDescriptorWord": (0, 4, "N"),
    "ProcessingIndicator": (4, 1, "N"),
    "TimeStamp": (5, 14, "N"),
    "CorrectionIndicator": (19, 1, "N"),
    "IdentificationNumber": (20, 20, "A"),
    "CycleIdentifier": (40, 2, "A"),
    "ConsumerAccountNumber": (42, 30, "A"),
    "PortfolioType": (72, 1, "A"),
    "AccountType": (73, 2, "A"),
    "DateOpened": (75, 8, "N"),
    "CreditLimit": (83, 9, "N"),
    "HighestCredit": (92, 9, "N"),
    "TermsDuration": (101, 3, "A"),
    "TermsFrequency": (104, 1, "A"),
    "ScheduledMonthlyPaymentAmount": (105, 9, "N"),
    "ActualPaymentAmount": (114, 9, "N"),
    "AccountStatus": (123, 2, "A"),
    "PaymentRating": (125, 1, "A"),
    "PaymentHistoryProfile": (126, 24, "A"),
    "SpecialComment": (150, 2, "A"),
    "ComplianceConditionCode": (152, 2, "A"),
    "CurrentBalance": (154, 9, "N"),
    "AmountPastDue": (163, 9, "N"),
    "OriginalChargeOffAmount": (172, 9, "N"),
    "DateAccountInformation": (181, 8, "N"),
    "DateFirstDelinquency": (189, 8, "N"),
    "DateClosed": (197, 8, "N"),
    "DateLastPayment": (205, 8, "N"),
    "InterestTypeIndicator": (213, 1, "A"),
    "Reserved2": (214, 17, "A"),
    "Surname": (231, 25, "A"),
    "FirstName": (256, 20, "A"),
    "MiddleName": (276, 20, "A"),
    "GenerationCode": (296, 1, "A"),
    "SocialSecurityNumber": (297, 9, "N"),
    "DateBirth": (306, 8, "N"),
    "TelephoneNumber": (314, 10, "N"),
    "ECOACode": (324, 1, "A"),
    "ConsumerInformationIndicator": (325, 2, "A"),
    "CountryCode": (327, 2, "A"),
    "FirstLineAddress": (329, 32, "A"),
    "SecondLineAddress": (361, 32, "A"),
    "City": (393, 20, "A"),
    "State": (413, 2, "A"),
    "ZipCode": (415, 9, "A"),
    "AddressIndicator": (424, 1, "A"),
    "ResidenceCode": (425, 1, "A"),
}
HEADER: dict[str, tuple[int, int, str]] = {
    "RecordDescriptorWord": (0, 4, "N"),
    "RecordIdentifier": (4, 6, "A"),  # HEADER
    "CycleIdentifier": (10, 2, "A"),
    "InnovisProgramIdentifier": (12, 10, "A"),
    "EquifaxProgramIdentifier": (22, 10, "A"),
    "ExperianProgramIdentifier": (32, 5, "A"),
    "TransUnionProgramIdentifier": (37, 10, "A"),
    "ActivityDate": (47, 8, "N"),
    "DateCreated": (55, 8, "N"),
    "ProgramDate": (63, 8, "N"),
    "ProgramRevisionDate": (71, 8, "N"),
    "ReporterName": (79, 40, "A"),
    "ReporterAddress": (119, 96, "A"),
    "ReporterTelephoneNumber": (215, 10, "N"),
    "SoftwareVendorName": (225, 40, "A"),
    "SoftwareVersionNumber": (265, 5, "A"),
    "PRBCProgramIdentifier": (270, 10, "A"),
    "Reserved": (280, 146, "A"),
}
TRAILER: dict[str, tuple[int, int, str]] = {
    "RecordDescriptorWord": (0, 4, "N"),
    "RecordIdentifier": (4, 7, "A"),  # TRAILER
    "TotalBaseRecords": (11, 9, "N"),
    "Reserved1": (20, 9, "A"),
    "TotalStatusCodeDF": (29, 9, "N"),
    "TotalConsumerSegmentsJ1": (38, 9, "N"),
    "TotalConsumerSegmentsJ2": (47, 9, "N"),
    "BlockCount": (56, 9, "N"),
    # the per-status totals (DA, 05, 11, 13, ... 97) follow at 65 + 9·i; see STATUS_TOTALS
}
STATUS_TOTALS = (
    "DA",
    "05",
    "11",
    "13",
    "61",
    "62",
    "63",
    "64",
    "65",
    "71",
    "78",
    "80",
    "82",
    "83",
    "84",
    "88",
    "89",
    "93",
    "94",
    "95",
    "96",
    "97",
)

# Account status codes (Metro 2): 11 current; 71/78/80/82/83/84 = 30/60/90/120/150/180+ days
# past due; 97 charged off, unpaid balance; 13 paid or closed, zero balance.
DELINQUENCY_CODES = ((180, "84"), (150, "83"), (120, "82"), (90, "80"), (60, "78"), (30, "71"))
# Payment history profile characters: 0 = 0-29 days, 1..6 = 30/60/90/120/150/180+ days,
# L = charged off, B = no history before this time (account not yet open), D = no data.
HISTORY_DPD = ((180, "6"), (150, "5"), (120, "4"), (90, "3"), (60, "2"), (30, "1"))
# Special comment: CP = account in forbearance (fenqi's hardship plans). Compliance condition
# XB = account information disputed by the consumer, investigation in progress (FCRA).
SPECIAL_COMMENT = {SpecialComment.HARDSHIP: "CP"}
COMPLIANCE_CONDITION = {SpecialComment.DISPUTE: "XB"}
PORTFOLIO = {Portfolio.REVOLVING: ("R", "18"), Portfolio.INSTALLMENT: ("I", "01")}


def dollars(minor: int) -> int:
    """Whole dollars from cents, truncated (Metro 2 has no cents)."""
    return minor // 100


def account_status(record: AccountRecord) -> str:
    if record.status is ReportStatus.CHARGED_OFF:
        return "97"
    if record.status is ReportStatus.CLOSED:
        return "13"
    for days, code in DELINQUENCY_CODES:
        if record.dpd >= days:
            return code
    return "11"


def history_char(point: MonthPoint | None, first_month: str) -> str:
    if point is None:
        return "B" if first_month else "D"
    if point.status is ReportStatus.CHARGED_OFF:
        return "L"
    for days, char in HISTORY_DPD:
        if point.dpd >= days:
            return char
    return "0"


def payment_history(record: AccountRecord) -> str:
    """24 characters, this month first. Months before the opening month are 'B'; a month the
    account was open but not reported is 'D'."""
    opened = f"{record.opened_on.year:04d}-{record.opened_on.month:02d}"
    out = []
    points = history_points(record, HISTORY_MONTHS)
    month = record.month
    for point in points:
        out.append(history_char(point, "before" if month < opened else ""))
        month = previous_month(month)
    return "".join(out)


def _d(value: date | None) -> str:
    return "" if value is None else value.strftime("%m%d%Y")


def _put(fields: dict[str, tuple[int, int, str]], values: dict[str, object], what: str) -> str:
    buf = [" "] * RECORD_LENGTH
    for name, (offset, length, kind) in fields.items():
        raw = values.get(name)
        text = "" if raw is None else str(raw)
        if kind == "N":
            if text and not text.isdigit():
                raise FileFormatError(f"{what}.{name}: not numeric", field=name)
            text = text.rjust(length, "0")
        else:
            text = text.upper().ljust(length)
        if len(text) > length:
            raise FileFormatError(f"{what}.{name}: longer than {length}", field=name)
        if not text.isascii():
            raise FileFormatError(f"{what}.{name}: not ASCII", field=name)
        buf[offset : offset + length] = list(text)
    return "".join(buf)


def _code(table: dict[SpecialComment, str], comment: SpecialComment | None) -> str:
    return "" if comment is None else table.get(comment, "")


def _split_name(name: str) -> tuple[str, str]:
    parts = name.split()
    if len(parts) <= 1:
        return (parts[0] if parts else "UNKNOWN", "UNKNOWN")
    return parts[-1], parts[0]


def base_segment(record: AccountRecord, stamp: datetime) -> str:
    portfolio, account_type = PORTFOLIO[record.portfolio]
    surname, first = _split_name(record.name)
    ssn = "".join(c for c in record.subject_id if c.isdigit())
    values: dict[str, object] = {
        "RecordDescriptorWord": RECORD_LENGTH,
        "ProcessingIndicator": 1,
        "TimeStamp": stamp.strftime("%m%d%Y%H%M%S"),
        "CorrectionIndicator": 1 if record.correction else 0,
        "IdentificationNumber": "FENQI",
        "ConsumerAccountNumber": record.account_ref,
        "PortfolioType": portfolio,
        "AccountType": account_type,
        "DateOpened": _d(record.opened_on),
        "CreditLimit": dollars(record.limit_minor),
        "HighestCredit": dollars(record.limit_minor),
        "TermsDuration": "LOC" if record.portfolio is Portfolio.REVOLVING else "001",
        "TermsFrequency": "M",
        "AccountStatus": account_status(record),
        "PaymentHistoryProfile": payment_history(record),
        "SpecialComment": _code(SPECIAL_COMMENT, record.special_comment),
        "ComplianceConditionCode": _code(COMPLIANCE_CONDITION, record.special_comment),
        "CurrentBalance": dollars(record.balance_minor),
        "AmountPastDue": dollars(record.past_due_minor),
        "OriginalChargeOffAmount": dollars(record.charge_off_minor),
        "DateAccountInformation": _d(record.as_of),
        "DateFirstDelinquency": _d(record.first_delinquency_on),
        "DateClosed": _d(record.closed_on),
        "Surname": surname,
        "FirstName": first,
        "SocialSecurityNumber": ssn[-9:] if ssn else "",
        "DateBirth": _d(record.birth_date),
        "ECOACode": "1",  # individual
        "CountryCode": "US",
        "FirstLineAddress": "UNKNOWN",
        "City": "UNKNOWN",
        "State": "NA",
        "ZipCode": "000000000",
    }
    return _put(BASE, values, "base")


def header(activity: date, created: date, reporter: str) -> str:
    values: dict[str, object] = {
        "RecordDescriptorWord": RECORD_LENGTH,
        "RecordIdentifier": "HEADER",
        "ActivityDate": _d(activity),
        "DateCreated": _d(created),
        "ReporterName": reporter,
        "ReporterAddress": "UNKNOWN",
        "SoftwareVendorName": "FENQI",
    }
    return _put(HEADER, values, "header")


def trailer(records: list[AccountRecord]) -> str:
    line = list(
        _put(
            TRAILER,
            {
                "RecordDescriptorWord": RECORD_LENGTH,
                "RecordIdentifier": "TRAILER",
                "TotalBaseRecords": len(records),
                "BlockCount": 0,
            },
            "trailer",
        )
    )
    counts = {code: 0 for code in STATUS_TOTALS}
    for r in records:
        code = account_status(r)
        if code in counts:
            counts[code] += 1
    for i, code in enumerate(STATUS_TOTALS):
        offset = 65 + 9 * i
        line[offset : offset + 9] = list(str(counts[code]).rjust(9, "0"))
    return "".join(line)


def write_file(
    records: list[AccountRecord],
    activity: date,
    created: date,
    stamp: datetime,
    reporter: str = "FENQI",
) -> str:
    lines = [header(activity, created, reporter)]
    lines += [base_segment(r, stamp) for r in records]
    lines.append(trailer(records))
    text = "\n".join(lines) + "\n"
    validate(text)
    return text


@dataclass(frozen=True, slots=True)
class BaseRow:
    account_ref: str
    subject_id: str
    status: str
    balance: int  # whole dollars
    past_due: int
    limit: int
    charge_off: int
    history: str
    as_of: date
    opened_on: date
    correction: bool


def _get(line: str, fields: dict[str, tuple[int, int, str]], name: str) -> str:
    offset, length, _ = fields[name]
    return line[offset : offset + length]


def _date(text: str, line_no: int, name: str, required: bool) -> date | None:
    if text.strip("0 ") == "":
        if required:
            raise FileFormatError(f"line {line_no}: {name} is required", line=line_no, field=name)
        return None
    try:
        return datetime.strptime(text, "%m%d%Y").date()
    except ValueError:
        raise FileFormatError(
            f"line {line_no}: {name} {text!r} is not a date MMDDYYYY", line=line_no, field=name
        ) from None


def parse(text: str) -> list[BaseRow]:
    """Validate a Metro 2 file (header, base segments, trailer) and return its base rows.
    Every refusal is a FileFormatError naming the line and the field."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise FileFormatError("file: needs a header and a trailer record", line=0, field="file")
    for no, line in enumerate(lines, 1):
        if len(line) != RECORD_LENGTH:
            raise FileFormatError(
                f"line {no}: {len(line)} bytes, a record is {RECORD_LENGTH}",
                line=no,
                field="RecordDescriptorWord",
            )
        if not line.isascii():
            raise FileFormatError(f"line {no}: not ASCII", line=no, field="record")
        if _get(line, BASE, "RecordDescriptorWord") != "0426":
            raise FileFormatError(
                f"line {no}: RecordDescriptorWord must be 0426",
                line=no,
                field="RecordDescriptorWord",
            )
    if _get(lines[0], HEADER, "RecordIdentifier") != "HEADER":
        raise FileFormatError(
            "line 1: RecordIdentifier must be HEADER", line=1, field="RecordIdentifier"
        )
    last = len(lines)
    if _get(lines[-1], TRAILER, "RecordIdentifier") != "TRAILER":
        raise FileFormatError(
            f"line {last}: RecordIdentifier must be TRAILER", line=last, field="RecordIdentifier"
        )
    rows = []
    numeric = [n for n, (_, _, k) in BASE.items() if k == "N"]
    for no, line in enumerate(lines[1:-1], 2):
        for name in numeric:
            value = _get(line, BASE, name)
            if not value.isdigit():
                raise FileFormatError(
                    f"line {no}: {name} {value!r} is not numeric", line=no, field=name
                )
        status = _get(line, BASE, "AccountStatus")
        if status not in {"11", "13", "97", *(c for _, c in DELINQUENCY_CODES)}:
            raise FileFormatError(
                f"line {no}: AccountStatus {status!r} is not a known code",
                line=no,
                field="AccountStatus",
            )
        history = _get(line, BASE, "PaymentHistoryProfile")
        if any(c not in "0123456LBD" for c in history):
            raise FileFormatError(
                f"line {no}: PaymentHistoryProfile {history!r} has an unknown character",
                line=no,
                field="PaymentHistoryProfile",
            )
        account = _get(line, BASE, "ConsumerAccountNumber").strip()
        if not account:
            raise FileFormatError(
                f"line {no}: ConsumerAccountNumber is required",
                line=no,
                field="ConsumerAccountNumber",
            )
        opened = _date(_get(line, BASE, "DateOpened"), no, "DateOpened", True)
        as_of = _date(
            _get(line, BASE, "DateAccountInformation"), no, "DateAccountInformation", True
        )
        assert opened is not None and as_of is not None
        rows.append(
            BaseRow(
                account_ref=account,
                subject_id=_get(line, BASE, "SocialSecurityNumber"),
                status=status,
                balance=int(_get(line, BASE, "CurrentBalance")),
                past_due=int(_get(line, BASE, "AmountPastDue")),
                limit=int(_get(line, BASE, "CreditLimit")),
                charge_off=int(_get(line, BASE, "OriginalChargeOffAmount")),
                history=history,
                as_of=as_of,
                opened_on=opened,
                correction=_get(line, BASE, "CorrectionIndicator") == "1",
            )
        )
    total = _get(lines[-1], TRAILER, "TotalBaseRecords")
    if not total.isdigit() or int(total) != len(rows):
        raise FileFormatError(
            f"line {last}: TotalBaseRecords {total!r} but the file has {len(rows)} base records",
            line=last,
            field="TotalBaseRecords",
        )
    return rows


def validate(text: str) -> int:
    """Raise FileFormatError if the file breaks the format; return its base-record count."""
    return len(parse(text))
