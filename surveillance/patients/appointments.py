"""Booking a pending assessment on a day inside its window (``reschedule``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from surveillance.errors import Conflict, InvalidInput
from surveillance.kit import audit
from surveillance.kit.concurrency import check_version
from surveillance.kit.text import optional_single_line
from surveillance.records.patients import Assessment, AssessmentStatus
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site


def reschedule(
    session: Session,
    *,
    key: str,
    on: date,
    reason: str | None,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
) -> Assessment:
    """Book ``key`` on ``on``; the window (what counts as on time) does not move."""
    optional_single_line(reason, "reason")
    patient, row = find_assessment(session, key, for_update=True)
    check_version(expected_version, row.version, key)
    if row.status != AssessmentStatus.pending.value:
        raise Conflict(f"{key} is {row.status}: only a pending assessment can be rescheduled")
    if not row.window_start <= on <= row.window_end:
        raise InvalidInput(
            f"{on} is outside the window {row.window_start} to {row.window_end} of {key}"
        )
    site = get_site(session, patient.site_id)
    today = site.today(now)
    if on < today:
        raise InvalidInput(f"{on} is in the past (today at {site.id} is {today})")
    old = {"appointment_on": row.appointment_on.isoformat() if row.appointment_on else None}
    row.appointment_on, row.updated_at = on, now
    row.version += 1
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="reschedule",
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=reason,
        old=old,
        new={"appointment_on": on.isoformat()},
        at=now,
    )
    return row
