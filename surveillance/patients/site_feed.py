"""A site's calendar feed: the pending assessments of the coming months as iCalendar.

A nurse's calendar app subscribes to it with a read-only, site-scoped feed token in the
URL. Each event's UID is stable per assessment, so a re-computed date moves the event
in the subscriber's calendar instead of adding a second one.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

import rules
from surveillance.kit.ics import calendar_ics
from surveillance.patients.due_list import DueItem, DueState, DueWindow, due_list
from surveillance.records.patients import Site

FEED_DAYS = 180
# A site's half year rarely holds more than a few hundred visits; the cap keeps one
# subscriber's refresh from reading a whole registry.
FEED_LIMIT = 5000
UID_DOMAIN = "ltfu-surveillance"


def feed_uid(key: str) -> str:
    return f"{key}@{UID_DOMAIN}"


def site_calendar(
    session: Session,
    *,
    site: Site,
    on: date,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> bytes:
    """Due and upcoming assessments at ``site`` from ``on`` to ``FEED_DAYS`` ahead."""
    window = DueWindow.around(on, horizon_days=FEED_DAYS)
    items = due_list(
        session,
        site_id=site.id,
        on=on,
        registry=registry,
        states=(DueState.due, DueState.upcoming),
        window=window,
        limit=FEED_LIMIT,
    )
    entries = [_entry(item) for item in items]
    return calendar_ics(entries, name=f"Follow-up at {site.name}", stamp=now)


def _entry(item: DueItem) -> tuple[str, str, date, date, date, str]:
    """On the booked day if the nurse rescheduled it, else on the due date."""
    day = item.appointment_on or item.due_on
    booked = f"Booked for {day.isoformat()}. " if item.appointment_on else ""
    description = f"{booked}{item.reason}\nAssessment {item.key}"
    summary = f"{item.study_id}: {item.name}"
    return feed_uid(item.key), summary, day, item.window_start, item.window_end, description
