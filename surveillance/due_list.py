"""The nurse's list: what is overdue, due and coming up at a site on a given day.

States are derived, never stored: ``overdue`` after the window closed, ``due`` inside
it, ``upcoming`` before it opens. Each state is read in index order with a limit (the
partial indexes on pending rows), so the list costs the same at 10 or 100 000 patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, select
from sqlmodel import Session

import rules

from .models import Assessment, AssessmentStatus, Patient, PatientStatus, assessment_key
from .protocol_store import assessment_name

# Patients whose calendars still call for work (lost to follow-up: keep trying).
_FOLLOWED = (PatientStatus.active.value, PatientStatus.lost_to_follow_up.value)
DEFAULT_HORIZON_DAYS = 30


class DueState(StrEnum):
    overdue = "overdue"
    due = "due"
    upcoming = "upcoming"


def derive_state(on: date, window_start: date, window_end: date) -> DueState:
    if on > window_end:
        return DueState.overdue
    if on >= window_start:
        return DueState.due
    return DueState.upcoming


@dataclass(frozen=True)
class DueItem:
    key: str
    study_id: str
    assessment: str
    name: str
    category: str
    due_on: date
    window_start: date
    window_end: date
    state: DueState
    days_overdue: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "study_id": self.study_id,
            "assessment": self.assessment,
            "name": self.name,
            "category": self.category,
            "state": self.state.value,
            "due": self.due_on.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "days_overdue": self.days_overdue,
            "reason": self.reason,
        }


_COLUMNS = (
    Patient.study_id,
    Assessment.infusion_number,
    Assessment.assessment,
    Assessment.occurrence,
    Assessment.category,
    Assessment.due_on,
    Assessment.window_start,
    Assessment.window_end,
    Assessment.reason,
    Assessment.protocol_id,
    Assessment.protocol_version,
)


def due_list_query(site_id: str, on: date, state: DueState, until: date, limit: int) -> Select[Any]:
    """One state's rows, in the order a nurse works through them."""
    pending = and_(
        Assessment.site_id == site_id,
        Assessment.status == AssessmentStatus.pending.value,
    )
    statement = select(*_COLUMNS).join(Patient, Patient.id == Assessment.patient_id)  # type: ignore[arg-type]
    followed = Patient.status.in_(_FOLLOWED)  # type: ignore[attr-defined]
    if state is DueState.overdue:  # longest overdue first
        statement = statement.where(pending, followed, Assessment.window_end < on).order_by(
            Assessment.window_end, Assessment.id
        )
    elif state is DueState.due:  # the window closing soonest first
        statement = statement.where(
            pending, followed, Assessment.window_end >= on, Assessment.window_start <= on
        ).order_by(Assessment.window_end, Assessment.id)
    else:  # opening soonest first
        statement = statement.where(
            pending, followed, Assessment.window_start > on, Assessment.window_start <= until
        ).order_by(Assessment.window_start, Assessment.id)
    return statement.limit(limit)


def due_list(
    session: Session,
    *,
    site_id: str,
    on: date,
    registry: rules.ProtocolRegistry,
    states: tuple[DueState, ...] = (DueState.overdue, DueState.due, DueState.upcoming),
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    limit: int = 500,
) -> list[DueItem]:
    """Overdue first, then due, then upcoming within ``horizon_days``; at most ``limit`` rows."""
    items: list[DueItem] = []
    until = on + timedelta(days=horizon_days)
    for state in (s for s in DueState if s in states):
        remaining = limit - len(items)
        if remaining <= 0:
            break
        for row in session.execute(due_list_query(site_id, on, state, until, remaining)):
            items.append(_item(row, on, state, registry))
    return items


def _item(row: Any, on: date, state: DueState, registry: rules.ProtocolRegistry) -> DueItem:
    return DueItem(
        key=assessment_key(row.study_id, row.infusion_number, row.assessment, row.occurrence),
        study_id=row.study_id,
        assessment=row.assessment,
        name=assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        category=row.category,
        due_on=row.due_on,
        window_start=row.window_start,
        window_end=row.window_end,
        state=state,
        days_overdue=(on - row.window_end).days if state is DueState.overdue else 0,
        reason=row.reason,
    )
