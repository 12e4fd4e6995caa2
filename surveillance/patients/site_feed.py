"""A site's calendar feed: the pending assessments, overdue ones included, as iCalendar.

A nurse's calendar app subscribes to it with a read-only, site-scoped feed token in the
URL. Each event's UID is stable per assessment, so a re-computed or booked date moves the
event in the subscriber's calendar instead of adding a second one; its ``SEQUENCE`` is
the row's version less one and its ``LAST-MODIFIED`` the row's ``updated_at``, so the
client sees the move as an update.

Only pending assessments are in the feed. One that is completed, missed, not done or
cancelled is dropped from it: a subscription mirrors the published file (RFC 5545 has no
method to cancel within a published calendar without ``METHOD``), so the subscriber's
calendar drops it on its next refresh. It stays in the patient's calendar in the app.

Pseudonymous: the study id, the assessment and the booked day; the reason is kept
without the birth or infusion date (``public_reason``), since the feed ends up in cloud
calendars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

import rules
from surveillance.kit.ics import CalendarEvent, calendar_ics
from surveillance.patients.due_list import DueItem, DueState, DueWindow, due_list
from surveillance.records.patients import Assessment, Site

FEED_DAYS = 180
# A site's half year rarely holds more than a few hundred visits; the cap keeps one
# subscriber's refresh from reading a whole registry.
FEED_LIMIT = 5000
UID_DOMAIN = "ltfu-surveillance"


@dataclass(frozen=True)
class SiteCalendar:
    body: bytes
    # When what the feed shows last changed: the latest change of any of the site's
    # assessments (a completed one leaves the feed), or the start of the site's day (the
    # horizon and the overdue state move with it), whichever is later.
    last_modified: datetime


def feed_uid(key: str) -> str:
    return f"{key}@{UID_DOMAIN}"


def site_calendar(
    session: Session,
    *,
    site: Site,
    on: date,
    registry: rules.ProtocolRegistry,
) -> SiteCalendar:
    """Overdue assessments, and due and upcoming ones from ``on`` to ``FEED_DAYS`` ahead."""
    window = DueWindow.around(on, horizon_days=FEED_DAYS)
    items = due_list(
        session,
        site_id=site.id,
        on=on,
        registry=registry,
        states=(DueState.overdue, DueState.due, DueState.upcoming),
        window=window,
        limit=FEED_LIMIT,
    )
    day_start = datetime.combine(on, time(), ZoneInfo(site.timezone))
    events = [_event(item, day_start) for item in items]
    body = calendar_ics(events, name=f"Follow-up at {site.name}")
    return SiteCalendar(body, max([day_start, _latest_change(session, site.id) or day_start]))


def _latest_change(session: Session, site_id: str) -> datetime | None:
    query = select(func.max(col(Assessment.updated_at))).where(col(Assessment.site_id) == site_id)
    latest: datetime | None = session.scalar(query)
    return None if latest is None else latest


def _event(item: DueItem, fallback: datetime) -> CalendarEvent:
    """On the booked day if the nurse rescheduled it, else on the due date."""
    day = item.appointment_on or item.due_on
    booked = f"Booked for {day.isoformat()}. " if item.appointment_on else ""
    overdue = "Overdue: " if item.state is DueState.overdue else ""
    return CalendarEvent(
        uid=feed_uid(item.key),
        summary=f"{overdue}{item.study_id}: {item.name}",
        day=day,
        window_start=item.window_start,
        window_end=item.window_end,
        description=f"{booked}{item.public_reason}\nAssessment {item.key}",
        sequence=max(item.version - 1, 0),
        last_modified=item.updated_at if item.updated_at else fallback,
    )
