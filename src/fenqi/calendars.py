"""Business calendars: which days are working days, and rolling a due date off a holiday.

Holidays come from libraries, not a hand-written list: `chinese-calendar` knows the State
Council's holidays and the weekend days swapped into working days (调休) for the years it covers;
outside those years `holidays` (CN, or another country code) is used with plain weekends.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays as holidays_lib

MAX_ROLL_DAYS = 31  # a bounded loop: no holiday run in any calendar is longer than this


@lru_cache(maxsize=16)
def _country_holidays(country: str) -> holidays_lib.HolidayBase:
    return holidays_lib.country_holidays(country)


def is_working_day(day: date, country: str = "CN") -> bool:
    if country == "CN":
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            pass  # year not covered by chinese-calendar: fall back to `holidays`
    return day.weekday() < 5 and day not in _country_holidays(country)


def roll_to_working_day(day: date, country: str = "CN") -> date:
    """The first working day on or after `day`."""
    for _ in range(MAX_ROLL_DAYS):
        if is_working_day(day, country):
            return day
        day += timedelta(days=1)
    raise AssertionError(f"no working day within {MAX_ROLL_DAYS} days of {day}")
