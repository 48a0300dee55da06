"""Clocks: the only way fenqi learns the time.

Instants are UTC; the business date is a date in the operator's zone (Asia/Shanghai by default).
Nothing reads the wall clock directly, so tests and simulations move time by swapping the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"


class Clock(Protocol):
    def now(self) -> datetime: ...

    def today(self) -> date: ...


class SystemClock:
    """The real clock, for production."""

    def __init__(self, zone: str = DEFAULT_ZONE) -> None:
        self.zone = ZoneInfo(zone)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()


class FixedClock:
    """A clock that stands still until told to move: for tests, demos and simulations."""

    def __init__(self, instant: datetime, zone: str = DEFAULT_ZONE) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = instant.astimezone(UTC)
        self.zone = ZoneInfo(zone)

    @classmethod
    def on(cls, business_date: date, hour: int = 12, zone: str = DEFAULT_ZONE) -> FixedClock:
        """A clock at `hour` o'clock local time on a business date."""
        local = datetime(
            business_date.year, business_date.month, business_date.day, hour, tzinfo=ZoneInfo(zone)
        )
        return cls(local, zone)

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.astimezone(self.zone).date()

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("need an aware datetime")
        self._now = instant.astimezone(UTC)
