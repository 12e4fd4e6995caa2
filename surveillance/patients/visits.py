"""Visits: a patient's pending assessments that share a time point ("month 12 after
infusion"), so that a nurse sees, and records, one visit rather than sixteen rows.

A visit is what the engine planned for one day: the rows of one patient with the same due
date. Their windows differ (a blood test ±14 days, an exam 0/+60), so the visit's window
shown is the span of its rows' windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.errors import NotFound
from surveillance.patients.due_list import DueItem, derive_state
from surveillance.protocols.registry import assessment_name
from surveillance.records.patients import Assessment, AssessmentStatus, Patient, assessment_key

# "month 12 after infusion of 2024-01-31; window −14/+14 days" -> "month 12"
_TIME_POINT = re.compile(r"^(?P<unit>day|week|month|year)s? (?P<number>\d+)\b")


@dataclass(frozen=True)
class VisitLabel:
    """The time point of a visit, as words to translate and a number: ("Month %(n)s", 12)."""

    unit: str  # day, week, month or year; "" when the reasons name no time point
    number: int

    @classmethod
    def of(cls, reasons: Iterable[str]) -> VisitLabel:
        """The time point most of the rows give (month 12 beats year 1 when more say so)."""
        found: dict[tuple[str, int], int] = {}
        for reason in reasons:
            match = _TIME_POINT.match(reason)
            if match:
                point = (match["unit"], int(match["number"]))
                found[point] = found.get(point, 0) + 1
        if not found:
            return cls("", 0)
        unit, number = max(found, key=lambda point: (found[point], point[0] == "month"))
        return cls(unit, number)


@dataclass(frozen=True)
class Visit:
    """The rows of one patient due on one day, in the list's order."""

    study_id: str
    due_on: date
    label: VisitLabel
    window_start: date
    window_end: date
    items: tuple[DueItem, ...]

    @property
    def id(self) -> str:
        """Unique on a page: the patient and the day."""
        return f"{self.study_id}-{self.due_on.isoformat()}"


def group_visits(items: Iterable[DueItem]) -> list[Visit]:
    """The rows grouped by patient and due date; a visit takes the place of its first row,
    so the list's order (most overdue first) is kept."""
    groups: dict[tuple[str, date], list[DueItem]] = {}
    for item in items:
        groups.setdefault((item.study_id, item.due_on), []).append(item)
    return [
        Visit(
            study_id=study_id,
            due_on=due_on,
            label=VisitLabel.of(item.reason for item in rows),
            window_start=min(item.window_start for item in rows),
            window_end=max(item.window_end for item in rows),
            items=tuple(rows),
        )
        for (study_id, due_on), rows in groups.items()
    ]


def visit_of(
    session: Session,
    *,
    patient: Patient,
    due_on: date,
    on: date,
    registry: rules.ProtocolRegistry,
) -> Visit:
    """The patient's pending assessments due on ``due_on`` (``NotFound`` if none is)."""
    rows = session.exec(
        select(Assessment)
        .where(
            col(Assessment.patient_id) == patient.id,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.due_on) == due_on,
        )
        .order_by(col(Assessment.window_end), col(Assessment.id))
    ).all()  # type: ignore[call-overload]
    items = [_item(patient, row, on, registry) for (row,) in rows]
    if not items:
        raise NotFound(f"nothing of {patient.study_id} is pending with a due date {due_on}")
    return group_visits(items)[0]


def _item(patient: Patient, row: Assessment, on: date, registry: rules.ProtocolRegistry) -> DueItem:
    state = derive_state(on, row.window_start, row.window_end)
    return DueItem(
        key=assessment_key(patient.study_id, row.infusion_number, row.assessment, row.occurrence),
        study_id=patient.study_id,
        assessment=row.assessment,
        name=assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        category=row.category,
        due_on=row.due_on,
        window_start=row.window_start,
        window_end=row.window_end,
        state=state,
        days_overdue=max(0, (on - row.window_end).days),
        reason=row.reason,
        assessment_id=row.id or 0,
        appointment_on=None,
        version=row.version,
        updated_at=row.updated_at,
    )
