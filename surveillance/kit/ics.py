"""Calendars as iCalendar (RFC 5545) files: one all-day event per assessment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from icalendar import Calendar, Event

from surveillance.kit.clock import system_clock

PRODUCT_ID = "-//ltfu-surveillance//follow-up calendar//EN"


def calendar_ics(
    entries: Iterable[tuple[str, str, date, date, date, str]],
    *,
    name: str,
    stamp: datetime | None = None,
) -> bytes:
    """``entries``: (uid, summary, due, window_start, window_end, description)."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = stamp or system_clock()
    for uid, summary, due, window_start, window_end, description in entries:
        event = Event()
        event.add("uid", uid)
        event.add("dtstamp", stamp)
        event.add("summary", summary)
        event.add("dtstart", due)
        event.add("dtend", due + timedelta(days=1))
        event.add(
            "description",
            f"{description}\nWindow: {window_start.isoformat()} to {window_end.isoformat()}",
        )
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
