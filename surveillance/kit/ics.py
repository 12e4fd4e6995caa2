"""Calendars as iCalendar (RFC 5545) files: one all-day event per assessment.

A published calendar (no ``METHOD``) is mirrored by its subscribers, so each event says
when it last changed: ``SEQUENCE`` (bumped by every change of the row), ``LAST-MODIFIED``
and ``DTSTAMP`` (RFC 5545 3.8.7.2: without ``METHOD``, the time the information was last
revised) are the row's own last change, never the time of the fetch. The same rows give
the same bytes, so the file's hash is a valid ETag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from icalendar import Calendar, Event

PRODUCT_ID = "-//ltfu-surveillance//follow-up calendar//EN"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    summary: str
    day: date
    window_start: date
    window_end: date
    description: str
    sequence: int  # RFC 5545 3.8.7.4: 0 when created, higher after every revision
    last_modified: datetime  # aware


def calendar_ics(events: Iterable[CalendarEvent], *, name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for item in events:
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", item.last_modified)
        event.add("last-modified", item.last_modified)
        event.add("sequence", item.sequence)
        event.add("summary", item.summary)
        event.add("dtstart", item.day)
        event.add("dtend", item.day + timedelta(days=1))
        window = f"Window: {item.window_start.isoformat()} to {item.window_end.isoformat()}"
        event.add("description", f"{item.description}\n{window}")
        event.add("status", "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
