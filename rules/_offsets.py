"""Offsets from an anchor date: ``D14``, ``W3``, ``M6``, ``Y15``, ``D-14``.

Every date is computed from its anchor in one step, never by chaining: with
``relativedelta`` month ends clip (2024-01-31 + M1 = 2024-02-29, + M2 = 2024-03-31),
while chained additions would drift (Feb 29 + 1 month = Mar 29). ``add_months`` does
that month arithmetic exactly as ``relativedelta`` does, several times faster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

_OFFSET = re.compile(r"^([DWMY])(-?\d{1,5})$")
_UNIT_WORDS = {"D": "day", "W": "week", "M": "month", "Y": "year"}
_MONTHS_PER_UNIT = {"M": 1, "Y": 12}
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(anchor: date, months: int) -> date:
    """``anchor + relativedelta(months=months)``: the same day of the month, clipped to the
    month's last day; ``ValueError`` (as relativedelta's) past year 1 or 9999.

    >>> add_months(date(2024, 2, 29), -12)
    datetime.date(2023, 2, 28)
    """
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    month += 1
    day = anchor.day
    if day > 28:
        last = _DAYS_IN_MONTH[month]
        if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
            last = 29
        day = min(day, last)
    return date(year, month, day)


@dataclass(frozen=True, order=True)
class Offset:
    """A signed whole number of days, weeks, calendar months or anniversary years."""

    unit: str
    amount: int

    @classmethod
    def parse(cls, text: str) -> Offset:
        """Parse ``D14`` / ``W3`` / ``M6`` / ``Y1`` / ``D-14``; raise ``ValueError`` otherwise.

        >>> Offset.parse("M6")
        Offset(unit='M', amount=6)
        """
        match = _OFFSET.match(str(text).strip())
        if match is None:
            raise ValueError(
                f"bad offset {text!r}: expected D, W, M or Y followed by a whole number "
                "(e.g. D14, W3, M6, Y15, D-14)"
            )
        return cls(match.group(1), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.unit}{self.amount}"

    def times(self, n: int) -> Offset:
        return Offset(self.unit, self.amount * n)

    def plus(self, other: Offset) -> Offset:
        if other.unit != self.unit:
            raise ValueError(f"cannot add {other} to {self}: different units")
        return Offset(self.unit, self.amount + other.amount)

    def apply(self, anchor: date) -> date:
        """The date this offset lands on from ``anchor``; month ends clip.

        >>> Offset.parse("M1").apply(date(2024, 1, 31))
        datetime.date(2024, 2, 29)
        """
        months = self.months
        if months is not None:
            return add_months(anchor, months)
        return anchor + self.days

    @cached_property
    def months(self) -> int | None:
        """Whole calendar months, for months and years; None for days and weeks."""
        per_unit = _MONTHS_PER_UNIT.get(self.unit)
        return None if per_unit is None else self.amount * per_unit

    @cached_property
    def days(self) -> timedelta:
        """The length, for days and weeks (months and years have none: ``ValueError``)."""
        if self.unit == "D":
            return timedelta(days=self.amount)
        if self.unit == "W":
            return timedelta(weeks=self.amount)
        raise ValueError(f"{self} is calendar months, not a number of days")

    def approximate_days(self) -> float:
        """Length in days for ordering and validation (a month is 30.44 days)."""
        per_unit = {"D": 1.0, "W": 7.0, "M": 30.4375, "Y": 365.25}[self.unit]
        return self.amount * per_unit

    def describe(self) -> str:
        """``month 6``, ``day 14``, ``14 days before`` (for reasons shown to nurses)."""
        word = _UNIT_WORDS[self.unit]
        if self.amount < 0:
            count = -self.amount
            return f"{count} {word}{'s' if count != 1 else ''} before"
        return f"{word} {self.amount}"
