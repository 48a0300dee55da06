"""Constrained input types shared by the API schemas, path and query parameters and console forms.

Text: no control characters. PostgreSQL refuses NUL in text (a 500 before this type existed,
after a risk assessment had been committed), and other control characters, Unicode line
separators, bidirectional overrides and lone surrogates have no place in an order reference, a
device id or a name: they corrupt logs and what the console shows. `Paragraph` (a reason, a note)
may hold line breaks and tabs; `Line` may not.

Integers: strict (pydantic strict mode): `true`, `"100"`, `100.0` and `1e3` are refused where an
integer is expected, rather than read as 1, 100, 100 and 1000.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

from fenqi.privacy.masking import mask_id_number, mask_name, mask_phone, note_personal

# C0, DEL and C1 controls; line and paragraph separators; bidirectional embeddings, overrides
# and isolates (they reorder what a reader sees: "trojan source"). Surrogates are checked apart.
_REFUSED = frozenset(
    [
        *range(0x00, 0x20),
        *range(0x7F, 0xA0),
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def control_character(text: str, allow: str = "") -> str | None:
    """A description of the first refused character in `text` (None when there is none)."""
    for position, char in enumerate(text):
        code = ord(char)
        if (code in _REFUSED or 0xD800 <= code <= 0xDFFF) and char not in allow:
            name = unicodedata.name(char, "")
            shown = f"U+{code:04X} {name}" if name else f"U+{code:04X}"
            return f"a control character ({shown}) at position {position}"
    return None


def _line(value: str) -> str:
    found = control_character(value)
    if found is not None:
        raise ValueError(f"contains {found}")
    return value


def _paragraph(value: str) -> str:
    found = control_character(value, allow="\n\r\t")
    if found is not None:
        raise ValueError(f"contains {found}")
    return value


# JSON Schema (ECMA-262) spelling of the rule, so clients and generated tests see it.
LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"
PARAGRAPH_PATTERN = (
    "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
    "\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"
)

Line = Annotated[str, AfterValidator(_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
Paragraph = Annotated[
    str, AfterValidator(_paragraph), Field(json_schema_extra={"pattern": PARAGRAPH_PATTERN})
]

ID_MAX = 2**53 - 1  # ids fit a JSON number and a BIGINT
# An id in a path: past ID_MAX (let alone 2**63) it cannot name a row, and the database driver
# would fail to bind it.
ConsoleId = Annotated[int, Path(ge=1, le=ID_MAX, description="An id the system showed.")]

# Dates a book can hold: a report range to the year 9999 or 1 overflows date arithmetic.
BOOK_DATE_MIN = date(2000, 1, 1)
BOOK_DATE_MAX = date(2199, 12, 31)


def _book_date(value: date) -> date:
    if not BOOK_DATE_MIN <= value <= BOOK_DATE_MAX:
        raise ValueError(f"must be between {BOOK_DATE_MIN} and {BOOK_DATE_MAX}")
    return value


BookDate = Annotated[date, AfterValidator(_book_date)]


def _noting(mask: Callable[[str], str]) -> Callable[[str], str]:
    def note(value: str) -> str:
        note_personal(value, mask(value))
        return value

    return note


# Personal data as the API parses it: the value is masked in every log line of the request,
# in whatever spelling it came (fenqi.privacy.masking.note_personal).
PhoneText = Annotated[Line, AfterValidator(_noting(mask_phone))]
IdNumberText = Annotated[Line, AfterValidator(_noting(mask_id_number))]
NameText = Annotated[Line, AfterValidator(_noting(mask_name))]
