"""What day it is, asked in one place: every caller takes a clock so tests and the
command line can ask "what is overdue as of 2027-03-01". The only module that reads the
machine's time (ruff's banned-api rule, TID251, refuses ``datetime.now`` elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)


def utc_now() -> datetime:
    """The default of a row's ``*_at`` column when its writer gives no moment."""
    return system_clock()


def fixed_clock(day: date, timezone: str = "UTC") -> Clock:
    """A clock stopped at noon of ``day`` in ``timezone`` (for ``--on`` and tests)."""
    moment = datetime.combine(day, time(12), tzinfo=ZoneInfo(timezone))
    return lambda: moment


def local_date(now: datetime, timezone: str) -> date:
    """The calendar date at a site: 23:30 UTC on 31 Dec is already 1 Jan in Rome."""
    return now.astimezone(ZoneInfo(timezone)).date()
