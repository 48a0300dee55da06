"""GB 11643-1999 resident ID numbers and mainland mobiles."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fenqi.errors import FenqiError
from fenqi.privacy.errors import IdentityError
from fenqi.privacy.identity import PROVINCE_CODES, Sex, validate_id_number, validate_mobile

TODAY = date(2026, 11, 26)
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643 table, written out


def expected_check(body17: str) -> str:
    """The check character computed here independently of the module under test."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(body17, WEIGHTS, strict=True)) % 11]


@pytest.mark.parametrize(
    ("number", "birth", "sex"),
    [
        ("11010519491231002X", date(1949, 12, 31), Sex.FEMALE),  # the standard's own example
        ("11010519491231002x", date(1949, 12, 31), Sex.FEMALE),  # lower-case x accepted
        (" 440307199001010010 ", date(1990, 1, 1), Sex.MALE),
        ("320102200002291235", date(2000, 2, 29), Sex.MALE),  # leap day; 17th digit 3: odd
        ("510108198512315675", date(1985, 12, 31), Sex.MALE),
        ("650102197006150036", date(1970, 6, 15), Sex.MALE),
    ],
)
def test_known_valid_numbers(number: str, birth: date, sex: Sex) -> None:
    rid = validate_id_number(number, today=TODAY)
    assert rid.normalized == number.strip().upper()
    assert rid.birth_date == birth
    assert rid.sex is sex
    assert rid.masked == rid.normalized[:3] + "*" * 11 + rid.normalized[-4:]


def _rule(number: str, today: date = TODAY) -> str:
    with pytest.raises(IdentityError) as info:
        validate_id_number(number, today=today, field="applicant.id_number")
    err = info.value
    assert isinstance(err, FenqiError)
    assert err.code == "invalid_id_number"
    assert err.detail["field"] == "applicant.id_number"
    assert err.message.startswith("applicant.id_number:")
    # The full number never appears in the message, only its masked form.
    assert number.strip().upper() not in err.message.upper() or len(number.strip()) < 8
    return str(err.detail["rule"])


def test_wrong_check_digit() -> None:
    assert _rule("110105194912310021") == "check_digit"
    assert _rule("440307199001010011") == "check_digit"


def test_bad_and_future_dates() -> None:
    body = "32010219990229123"  # 1999 is not a leap year
    assert _rule(body + expected_check(body)) == "birth_date"
    body = "32010220001301123"  # month 13
    assert _rule(body + expected_check(body)) == "birth_date"
    body = "32010220261127123"  # the day after TODAY
    assert _rule(body + expected_check(body)) == "birth_date"
    assert validate_id_number(body + expected_check(body), today=date(2026, 11, 27))
    body = "32010218991231123"  # before 1900
    assert _rule(body + expected_check(body)) == "birth_date"


def test_shape_rules() -> None:
    assert _rule("11010519491231002") == "length"
    assert _rule("110105491231002") == "length"  # first-generation 15 digits
    assert _rule("11010519491231002Y") == "format"
    assert _rule("X10105194912310020") == "format"
    body = "99010519491231002"
    assert _rule(body + expected_check(body)) == "region_code"


def test_message_masks_the_number() -> None:
    with pytest.raises(IdentityError) as info:
        validate_id_number("110105194912310021", today=TODAY)
    assert "110105194912310021" not in str(info.value)
    assert "110***********0021" in info.value.message


birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
bodies = st.builds(
    lambda province, region, born, seq: f"{province}{region}{born:%Y%m%d}{seq}",
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.from_regex(r"\A[0-9]{4}\Z"),
    birth_dates,
    st.from_regex(r"\A[0-9]{3}\Z"),
)


@given(bodies)
def test_any_valid_body_with_its_check_digit_validates(body: str) -> None:
    number = body + expected_check(body)
    rid = validate_id_number(number, today=TODAY)
    assert rid.normalized == number
    assert rid.sex is (Sex.MALE if int(body[16]) % 2 else Sex.FEMALE)
    assert f"{rid.birth_date:%Y%m%d}" == body[6:14]


@given(bodies, st.integers(0, 17), st.integers(1, 9))
def test_any_single_digit_change_fails(body: str, position: int, shift: int) -> None:
    number = body + expected_check(body)
    chars = "0123456789X" if position == 17 else "0123456789"
    old = number[position]
    new = chars[(chars.index(old) + shift) % len(chars)]
    changed = number[:position] + new + number[position + 1 :]
    with pytest.raises(IdentityError):
        validate_id_number(changed, today=TODAY)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("13812341234", "13812341234"),
        ("+86 138 1234 1234", "13812341234"),
        ("+8613812341234", "13812341234"),
        ("0086-199-0000-0000", "19900000000"),
        (" 150 1234 5678 ", "15012345678"),
    ],
)
def test_valid_mobiles(raw: str, normalized: str) -> None:
    assert validate_mobile(raw) == normalized


@pytest.mark.parametrize(
    "raw", ["12812341234", "1381234123", "138123412345", "10012341234", "1381234123a", "", "+1 415"]
)
def test_invalid_mobiles(raw: str) -> None:
    with pytest.raises(IdentityError) as info:
        validate_mobile(raw, field="phone")
    assert info.value.code == "invalid_mobile"
    assert info.value.message.startswith("phone:")
    if len(raw) >= 11:
        assert raw not in info.value.message
