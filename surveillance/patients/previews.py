"""What enrolling a patient or adding a re-infusion would do, shown before it is saved.

Like the outcome previews (``adverse_events.previews``), a preview runs the real entry
point (``enroll`` / ``add_infusion``) inside a SAVEPOINT and rolls it back: it shows
exactly what saving does, refusals included, and nothing it wrote remains.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

import rules
from surveillance.calendar.sync import CalendarChange
from surveillance.patients.changes import add_infusion
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.views import calendar_dicts
from surveillance.records.queries import get_patient
from surveillance.records.sites import today_at


def preview_enrolment(
    session: Session,
    enrolment: Enrolment,
    *,
    registry: rules.ProtocolRegistry,
    now: datetime,
    actor: str,
) -> list[dict[str, Any]]:
    """The calendar ``enroll`` would store for ``enrolment``, each row with its state
    today at the site (``views.calendar_dicts``); nothing is kept."""
    with _rolled_back(session):
        enroll(session, [enrolment], registry=registry, now=now, actor=actor)
        patient = get_patient(session, enrolment.study_id)
        today: date = today_at(session, patient.site_id, now)
        return calendar_dicts(session, patient, on=today, registry=registry)


def preview_infusion(
    session: Session,
    *,
    study_id: str,
    on: date,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> CalendarChange:
    """What ``add_infusion`` with these arguments would change; nothing is kept."""
    with _rolled_back(session):
        return add_infusion(
            session,
            study_id=study_id,
            on=on,
            actor=actor,
            registry=registry,
            now=now,
            expected_version=expected_version,
        )


@contextmanager
def _rolled_back(session: Session) -> Iterator[None]:
    """A SAVEPOINT undone whatever happens, leaving the caller's transaction as it was."""
    savepoint = session.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
