"""Re-materialization: re-run the engine for a patient and apply the difference.

Recorded assessments (completed, missed, not done) are never deleted or rewritten.
Pending ones are added, moved or cancelled, with the reason kept; a cancelled one the
plan asks for again is reinstated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlmodel import Session, col

import rules
from surveillance.calendar.case_events import adverse_event_events
from surveillance.errors import InvalidInput
from surveillance.kit import audit
from surveillance.kit.bulk import insert_rows
from surveillance.kit.sqltypes import table_of
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Patient,
    PatientEvent,
    assessment_key,
)
from surveillance.records.queries import infusion_dates


@dataclass(frozen=True)
class StoredAssessment:
    id: int
    infusion_number: int
    assessment: str
    occurrence: int
    status: str
    due_on: Any
    window_start: Any
    window_end: Any
    reason: str
    protocol_version: str

    @property
    def identity(self) -> tuple[int, str, int]:
        return (self.infusion_number, self.assessment, self.occurrence)


@dataclass
class CalendarChange:
    """What applying a new plan does to the stored calendar."""

    added: list[rules.PlannedAssessment] = field(default_factory=list)
    moved: list[tuple[StoredAssessment, rules.PlannedAssessment]] = field(default_factory=list)
    cancelled: list[StoredAssessment] = field(default_factory=list)
    reinstated: list[tuple[StoredAssessment, rules.PlannedAssessment]] = field(default_factory=list)
    # Same dates, new wording or protocol version (e.g. after an amendment).
    relabelled: list[tuple[StoredAssessment, rules.PlannedAssessment]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.added or self.moved or self.cancelled or self.reinstated or self.relabelled
        )

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.moved)} moved",
            f"{len(self.cancelled)} cancelled",
            f"{len(self.reinstated)} reinstated",
            f"{len(self.relabelled)} relabelled",
        ]
        return ", ".join(parts)

    def as_dict(self, study_id: str) -> dict[str, list[dict[str, Any]]]:
        def key(identity: tuple[int, str, int]) -> str:
            return assessment_key(study_id, *identity)

        return {
            "added": [{"key": key(_identity(p)), "due": p.due.isoformat()} for p in self.added],
            "moved": [
                {"key": key(s.identity), "from": s.due_on.isoformat(), "to": p.due.isoformat()}
                for s, p in self.moved
            ],
            "cancelled": [
                {"key": key(s.identity), "due": s.due_on.isoformat()} for s in self.cancelled
            ],
            "reinstated": [
                {"key": key(s.identity), "due": p.due.isoformat()} for s, p in self.reinstated
            ],
        }


def _identity(planned: rules.PlannedAssessment) -> tuple[int, str, int]:
    return (planned.infusion, planned.assessment, planned.occurrence)


def plan_calendar(
    study_id: str,
    protocol: rules.Protocol,
    facts: rules.PatientFacts,
    infusions: Sequence[date],
    results: Iterable[rules.RecordedResult] = (),
    events: Iterable[rules.RecordedEvent] = (),
) -> list[rules.PlannedAssessment]:
    """The engine run for one patient: every caller (enrolment, a new fact, an amendment)
    gets facts the engine cannot plan from as ``InvalidInput`` naming the patient."""
    try:
        return rules.build_calendar(protocol, facts, infusions, results, events)
    except rules.InvalidFacts as exc:
        raise InvalidInput(f"{study_id}: {exc}") from exc


def patient_plan(
    session: Session, patient: Patient, protocol: rules.Protocol
) -> list[rules.PlannedAssessment]:
    """Run the engine on everything recorded for ``patient``."""
    assert patient.id is not None
    infusions = infusion_dates(session, patient.id).values()
    results = [
        rules.RecordedResult(
            row.infusion_number, row.assessment, row.occurrence, row.performed_on, row.result
        )
        for row in session.execute(
            select(
                col(Assessment.infusion_number),
                col(Assessment.assessment),
                col(Assessment.occurrence),
                col(Assessment.performed_on),
                col(Assessment.result),
            ).where(
                col(Assessment.patient_id) == patient.id,
                col(Assessment.status) == AssessmentStatus.completed.value,
                col(Assessment.result).is_not(None),
            )
        )
    ]
    events = [
        rules.RecordedEvent(kind, on)
        for kind, on in session.execute(
            select(col(PatientEvent.kind), col(PatientEvent.occurred_on)).where(
                col(PatientEvent.patient_id) == patient.id
            )
        )
    ]
    events += adverse_event_events(session, patient.id, protocol)
    facts = rules.PatientFacts(patient.birth_date, patient.diagnosis, patient.sex)
    return plan_calendar(patient.study_id, protocol, facts, list(infusions), results, events)


def stored_calendar(session: Session, patient_id: int) -> list[StoredAssessment]:
    columns = [getattr(Assessment, name) for name in StoredAssessment.__dataclass_fields__]
    rows = session.execute(select(*columns).where(col(Assessment.patient_id) == patient_id))
    return [StoredAssessment(*row) for row in rows]


# The statuses ``compare`` reads for every stored row (an enum member's ``.value`` is a
# descriptor call: a re-plan reads it ~600 times).
_PENDING = AssessmentStatus.pending.value
_CANCELLED = AssessmentStatus.cancelled.value
_RECORDED = frozenset(
    {
        AssessmentStatus.completed.value,
        AssessmentStatus.missed.value,
        AssessmentStatus.not_done.value,
    }
)


def compare(
    stored: list[StoredAssessment], planned: list[rules.PlannedAssessment]
) -> CalendarChange:
    """The change that makes the stored calendar follow ``planned``; history untouched."""
    change = CalendarChange()
    by_identity = {row.identity: row for row in stored}
    # Work already recorded on a date stays done even if an amendment renumbers the
    # schedule: a planned point on the same rule and due date as a recorded one is covered.
    # Not for triggered series: their numbers carry their day and never move, and two
    # series due the same day (two serious cases) are two duties, not one.
    recorded = [r for r in stored if r.status in _RECORDED]
    done = {
        (r.infusion_number, r.assessment, r.due_on)
        for r in recorded
        if not rules.is_triggered_occurrence(r.occurrence)
    }
    recorded_identities = {r.identity for r in recorded}
    wanted = {
        _identity(p): p
        for p in planned
        if (p.infusion, p.assessment, p.due) not in done or _identity(p) in recorded_identities
    }
    for identity, plan in wanted.items():
        row = by_identity.get(identity)
        if row is None:
            change.added.append(plan)
        elif row.status == _CANCELLED:
            change.reinstated.append((row, plan))
        elif row.status == _PENDING:
            if (row.due_on, row.window_start, row.window_end) != (
                plan.due,
                plan.window_start,
                plan.window_end,
            ):
                change.moved.append((row, plan))
            elif (row.reason, row.protocol_version) != (plan.reason, plan.protocol_version):
                change.relabelled.append((row, plan))
    for identity, row in by_identity.items():
        if identity not in wanted and row.status == _PENDING:
            change.cancelled.append(row)
    return change


# What a new row takes from the engine's plan: assessment column -> PlannedAssessment field.
_FROM_PLAN = {
    "infusion_number": "infusion",
    "assessment": "assessment",
    "occurrence": "occurrence",
    "category": "category",
    "due_on": "due",
    "window_start": "window_start",
    "window_end": "window_end",
    "protocol_id": "protocol",
    "protocol_version": "protocol_version",
    "reason": "reason",
}
# Every other column takes the table model's own default (pending, no result, version 1):
# read from the model, so a column added there is written here without a second list.
_DEFAULTS = {
    name: field.default
    for name, field in Assessment.model_fields.items()
    if name not in _FROM_PLAN and not field.is_required() and field.default_factory is None
}
_DEFAULTS.pop("id")
_PLAN_COLUMNS = tuple(_FROM_PLAN)
_read_plan = attrgetter(*_FROM_PLAN.values())  # one call for the ten fields of a plan


def assessment_rows(
    patient_id: int, site_id: str, planned: list[rules.PlannedAssessment], now: datetime
) -> list[dict[str, Any]]:
    """Rows for the assessments table, ready for a set-based insert."""
    context = {**_DEFAULTS, "patient_id": patient_id, "site_id": site_id, "updated_at": now}
    return [{**context, **dict(zip(_PLAN_COLUMNS, _read_plan(p), strict=True))} for p in planned]


def apply_change(
    session: Session,
    patient: Patient,
    change: CalendarChange,
    *,
    cause: str,
    actor: str,
    now: datetime,
) -> None:
    """Write ``change`` with set-based statements and one audit row describing it."""
    assert patient.id is not None
    if change.is_empty():
        return
    insert_rows(
        session,
        table_of(Assessment),
        assessment_rows(patient.id, patient.site_id, change.added, now),
    )
    _update_plans(session, [*change.moved, *change.reinstated, *change.relabelled], cause, now)
    if change.cancelled:
        session.execute(
            update(Assessment)
            .where(col(Assessment.id).in_([row.id for row in change.cancelled]))
            .values(
                status=AssessmentStatus.cancelled.value,
                status_reason=cause,
                appointment_on=None,
                version=Assessment.version + 1,
                updated_at=now,
            )
        )
    audit.record(
        session,
        actor=actor,
        action="calendar_change",
        entity="patient",
        entity_key=patient.study_id,
        patient_id=patient.id,
        reason=cause,
        new={"summary": change.summary(), **change.as_dict(patient.study_id)},
        at=now,
    )


def _update_plans(
    session: Session,
    pairs: list[tuple[StoredAssessment, rules.PlannedAssessment]],
    cause: str,
    now: datetime,
) -> None:
    if not pairs:
        return
    table = table_of(Assessment)
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            due_on=bindparam("new_due"),
            window_start=bindparam("new_start"),
            window_end=bindparam("new_end"),
            reason=bindparam("new_reason"),
            protocol_version=bindparam("new_version"),
            # A booked appointment stays only if the new window still contains it.
            appointment_on=case(
                (
                    table.c.appointment_on.between(bindparam("new_start"), bindparam("new_end")),
                    table.c.appointment_on,
                ),
                else_=None,
            ),
            status=AssessmentStatus.pending.value,
            status_reason=cause,
            version=table.c.version + 1,
            updated_at=now,
        )
    )
    session.connection().execute(
        statement,
        [
            {
                "row_id": row.id,
                "new_due": plan.due,
                "new_start": plan.window_start,
                "new_end": plan.window_end,
                "new_reason": plan.reason,
                "new_version": plan.protocol_version,
            }
            for row, plan in pairs
        ],
    )


def rematerialize(
    session: Session,
    patient: Patient,
    protocol: rules.Protocol,
    *,
    cause: str,
    actor: str,
    now: datetime,
    dry_run: bool = False,
) -> CalendarChange:
    """Re-run the engine for ``patient`` and apply (or, on a dry run, only report) the change."""
    assert patient.id is not None
    change = compare(stored_calendar(session, patient.id), patient_plan(session, patient, protocol))
    if not dry_run:
        apply_change(session, patient, change, cause=cause, actor=actor, now=now)
    return change
