"""The dates and integers the system accepts from outside: one definition, used by the
API, the pages, the command line and the services.

Dates outside these bounds are typing mistakes (``0001-01-01``, ``9999-12-31``) and would
overflow the calendar's arithmetic; integers beyond a column's range would overflow the
database driver. Both are refused as invalid input (422), never a 500.
"""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta

from surveillance.errors import InvalidInput
from surveillance.kit.sqltypes import MAX_INTEGER

# Nobody followed up was born before this.
FIRST_BIRTH = date(1900, 1, 1)
# No gene therapy was infused before this; the calendar starts here.
FIRST_INFUSION = date(1990, 1, 1)
# How far ahead a calendar, a due list or an "as of" date may be asked about.
YEARS_AHEAD = 20
# Any date from outside (before a service knows what it means): far enough apart for
# every real date, near enough that 15 years of calendar arithmetic never overflows.
EARLIEST_DAY = FIRST_BIRTH
LATEST_DAY = date(2199, 12, 31)


def latest_as_of(today: date) -> date:
    return today + relativedelta(years=YEARS_AHEAD)


def check_day(
    day: date, field: str, *, earliest: date = EARLIEST_DAY, latest: date = LATEST_DAY
) -> date:
    """``day`` if it lies in [earliest, latest]; else InvalidInput naming ``field``."""
    if day < earliest:
        raise InvalidInput(f"{field}: {day} is before {earliest}", field=field)
    if day > latest:
        raise InvalidInput(f"{field}: {day} is after {latest}", field=field)
    return day


def check_birth(day: date, today: date, field: str = "birth_date") -> date:
    if day > today:
        raise InvalidInput(f"{field}: {day} is in the future (today is {today})", field=field)
    return check_day(day, field, earliest=FIRST_BIRTH)


def check_infusion(day: date, today: date, field: str = "infusion_date") -> date:
    if day > today:
        raise InvalidInput(f"{field}: {day} is in the future (today is {today})", field=field)
    return check_day(day, field, earliest=FIRST_INFUSION)


def check_as_of(day: date, today: date, field: str = "on") -> date:
    """A day states are judged on (a due list, a calendar): the calendar's range."""
    return check_day(day, field, earliest=FIRST_INFUSION, latest=latest_as_of(today))


def check_id(value: int, field: str) -> int:
    """An id, version, level or sequence from outside, within its column's range."""
    if not 0 <= value <= MAX_INTEGER:
        raise InvalidInput(f"{field}: {value} is not between 0 and {MAX_INTEGER}", field=field)
    return value


def is_id(text: str) -> bool:
    """ASCII digits whose value fits the column ("²" is a digit to ``str.isdigit`` but not
    to ``int``; 5 000 digits are more than ``int`` converts)."""
    return (
        text.isascii()
        and text.isdigit()
        and len(text) <= len(str(MAX_INTEGER))
        and int(text) <= MAX_INTEGER
    )


def parse_id(text: str, field: str) -> int:
    """A decimal id typed or posted as text; InvalidInput for anything else."""
    if not is_id(text):
        raise InvalidInput(
            f"{field}: {text[:40]!r} is not a number from 0 to {MAX_INTEGER}", field=field
        )
    return int(text)
