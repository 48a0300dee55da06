"""Validation of PRC resident identity numbers (GB 11643-1999) and mainland mobile numbers.

Pure: no I/O, no clock (the caller passes `today`). Errors name the field and the rule and show
the value masked, never in full, because error messages end up in logs and API responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from fenqi.privacy.errors import IdentityError
from fenqi.privacy.masking import mask_id_number, mask_phone

ID_NUMBER_LENGTH = 18
# GB 11643-1999 §5: weight of position i (1..17, from the left) is 2^(18-i) mod 11.
CHECK_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
# ISO 7064 MOD 11-2: the check character for (sum of weighted digits) mod 11.
CHECK_CHARS = "10X98765432"
# Province-level codes of GB/T 2260 (first two digits of the region code), plus 81/82/83 used
# by residence permits for Hong Kong, Macao and Taiwan residents. Finer region codes are not
# checked: counties are renamed and merged, and old numbers keep retired codes for life.
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65", "71", "81", "82", "83",
    }
)  # fmt: skip
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_MOBILE = re.compile(r"1[3-9]\d{9}")


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True)
class ResidentId:
    normalized: str  # 18 chars, check character upper case
    birth_date: date
    sex: Sex

    @property
    def region_code(self) -> str:
        return self.normalized[:6]

    @property
    def masked(self) -> str:
        return mask_id_number(self.normalized)


def check_char(body17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    if len(body17) != 17 or not body17.isdigit() or not body17.isascii():
        raise ValueError("check_char needs exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(body17, CHECK_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _id_error(field: str, value: str, rule: str, why: str) -> IdentityError:
    return IdentityError(
        f"{field}: {why} (got {mask_id_number(value)})",
        code="invalid_id_number",
        field=field,
        rule=rule,
    )


def validate_id_number(value: str, *, today: date, field: str = "id_number") -> ResidentId:
    """Check an 18-character resident ID number; return its normalized form, birth date, sex.

    Rules in order: length 18; 17 digits then a digit or X; a known province code; a real birth
    date (YYYYMMDD) from 1900 and not after `today`; the MOD 11-2 check character.
    """
    candidate = value.strip().upper()
    if len(candidate) != ID_NUMBER_LENGTH:
        why = f"must be {ID_NUMBER_LENGTH} characters, got {len(candidate)}"
        if len(candidate) == 15:
            why += " (15-digit first-generation numbers are no longer accepted)"
        raise _id_error(field, candidate, "length", why)
    body, last = candidate[:17], candidate[17]
    if not (body.isascii() and body.isdigit()) or last not in "0123456789X":
        raise _id_error(field, candidate, "format", "must be 17 digits followed by a digit or X")
    if body[:2] not in PROVINCE_CODES:
        raise _id_error(field, candidate, "region_code", "region code has no such province")
    try:
        birth = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise _id_error(
            field, candidate, "birth_date", "birth date (characters 7-14) is not a real date"
        ) from None
    if birth < EARLIEST_BIRTH_DATE:
        raise _id_error(field, candidate, "birth_date", "birth date is before 1900")
    if birth > today:
        raise _id_error(field, candidate, "birth_date", "birth date is in the future")
    if check_char(body) != last:
        raise _id_error(
            field, candidate, "check_digit", "check digit does not match (GB 11643 MOD 11-2)"
        )
    # The 17th character is the last digit of the sequence code: odd for men, even for women.
    sex = Sex.MALE if int(body[16]) % 2 == 1 else Sex.FEMALE
    return ResidentId(normalized=candidate, birth_date=birth, sex=sex)


def validate_mobile(value: str, *, field: str = "mobile") -> str:
    """A mainland mobile number normalized to 11 digits: spaces, hyphens and a +86/0086 prefix
    are dropped; the rest must be 1, then 3-9, then 9 digits."""
    compact = re.sub(r"[\s-]", "", value)
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            compact = compact[len(prefix) :]
            break
    if not (compact.isascii() and _MOBILE.fullmatch(compact)):
        raise IdentityError(
            f"{field}: must be a mainland mobile number, 11 digits starting 13-19 "
            f"(got {mask_phone(compact) if compact else 'nothing'})",
            code="invalid_mobile",
            field=field,
            rule="mobile_format",
        )
    return compact
