from datetime import UTC, date, datetime, timedelta

import pytest

from fenqi.calendars import is_working_day, roll_to_working_day
from fenqi.clock import FixedClock


def test_business_date_is_in_shanghai() -> None:
    clock = FixedClock(datetime(2026, 1, 31, 17, 0, tzinfo=UTC))  # 01:00 on Feb 1 in Shanghai
    assert clock.today() == date(2026, 2, 1)
    clock.advance(timedelta(hours=-2))
    assert clock.today() == date(2026, 1, 31)
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 1, 1))  # naive datetimes are refused


def test_national_day_rolls_to_first_working_day() -> None:
    # 2024 National Day holiday: Oct 1-7 (State Council notice, via chinese-calendar)
    assert not is_working_day(date(2024, 10, 3))
    assert roll_to_working_day(date(2024, 10, 1)) == date(2024, 10, 8)


def test_adjusted_weekend_working_day_counts() -> None:
    # Sunday 2024-09-29 was a working day swapped for the National Day holiday (调休)
    assert is_working_day(date(2024, 9, 29))


def test_other_countries_use_holidays_library() -> None:
    assert not is_working_day(date(2025, 12, 25), "US")
    assert roll_to_working_day(date(2025, 7, 4), "US") == date(2025, 7, 7)
