"""Run the fenqi CLI (`serve`, `eod`) as a user would, on a clock the harness moves.

    python -m support.vopr_clock serve --workers 2 --port 8123
    python -m support.vopr_clock eod --date 2026-01-05

fenqi reads time only through its injected clock; a server started by `fenqi serve` gets the
system clock. Here `fenqi.clock.SystemClock` is replaced, before anything imports it, by a clock
that reads the instant from the file named by FENQI_VOPR_CLOCK_FILE, so the randomized harness
(tests/support/vopr.py) can move every process's business date at once (servers and end of day)
by rewriting one file. uvicorn's worker processes import this module again as their main module
(multiprocessing "spawn"), so they get the same clock. With FENQI_VOPR_APPROVE_CHECKOUT=1
checkout risk approves every order, as the other API tests do, so the harness exercises money
paths rather than velocity rules. Nothing else is changed: the CLI, the app and the database code
are fenqi's own.
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fenqi.clock as _clock

CLOCK_FILE = "FENQI_VOPR_CLOCK_FILE"
APPROVE = "FENQI_VOPR_APPROVE_CHECKOUT"


class FileClock:
    """The instant written in a file (ISO 8601, aware), read at every call."""

    def __init__(self, zone: str = _clock.DEFAULT_ZONE) -> None:
        self.zone = ZoneInfo(zone)
        self.path = Path(os.environ[CLOCK_FILE])

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()


def write_clock(path: Path, business_date: date, hour: int = 12) -> None:
    """Set the instant every process reads (atomically: a reader never sees half a line)."""
    instant = _clock.FixedClock.on(business_date, hour).now()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(instant.isoformat())
    tmp.replace(path)


def _install() -> None:
    if os.environ.get(CLOCK_FILE):
        _clock.SystemClock = FileClock  # type: ignore[misc, assignment]
    if os.environ.get(APPROVE) == "1":
        from fenqi.context import Context
        from fenqi.credit.checkout import RiskVerdict

        def approve(_self: Any) -> Any:
            return lambda _conn, _facts: RiskVerdict("approve")

        Context.checkout_risk = property(approve)  # type: ignore[assignment, method-assign]


_install()

if __name__ == "__main__":
    from fenqi.cli import main

    sys.argv = ["fenqi", *sys.argv[1:]]
    main()
