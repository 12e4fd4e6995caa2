"""Read models: a patient with infusions, a calendar with derived states (single queries)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import CalendarChange
from surveillance.patients.due_list import derive_state
from surveillance.protocols.registry import assessment_name
from surveillance.protocols.views import result_type_of
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Patient,
    assessment_key,
)
from surveillance.records.queries import infusion_dates, infusion_dates_of


def patient_dict(session: Session, patient: Patient) -> dict[str, Any]:
    return _patient_dict(patient, list(infusion_dates(session, patient.id).values()))


def patient_dicts(
    session: Session, *, site_ids: Collection[str] | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Patients by study id (of ``site_ids``, or all), after ``after``: two queries per page."""
    statement = select(Patient).order_by(col(Patient.study_id)).limit(limit)
    if site_ids is not None:
        statement = statement.where(col(Patient.site_id).in_(sorted(site_ids)))
    if after is not None:
        statement = statement.where(col(Patient.study_id) > after)
    patients = list(session.execute(statement).scalars())
    infusions = infusion_dates_of(session, [p.id for p in patients])
    return [
        _patient_dict(p, list(infusions.get(p.id, {}).values()))
        for p in patients
        if p.id is not None
    ]


def _patient_dict(patient: Patient, infusions: list[date]) -> dict[str, Any]:
    return {
        "study_id": patient.study_id,
        "site": patient.site_id,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
        "diagnosis": patient.diagnosis,
        "protocol": patient.protocol_id,
        "protocol_version": patient.protocol_version,
        "status": patient.status,
        "status_on": patient.status_on,
        "status_reason": patient.status_reason,
        "infusions": infusions,
        "version": patient.version,
    }


def calendar_dicts(
    session: Session, patient: Patient, *, on: date, registry: rules.ProtocolRegistry
) -> list[dict[str, Any]]:
    """Every stored assessment of ``patient`` with its state on ``on``, in due order."""
    rows = session.execute(
        select(Assessment)
        .where(col(Assessment.patient_id) == patient.id)
        .order_by(col(Assessment.due_on), col(Assessment.assessment), col(Assessment.occurrence))
    ).scalars()
    # A rule's name and result type are looked up once per rule, not once per row.
    rules_seen: dict[tuple[str, str, str], tuple[str, dict[str, Any] | None]] = {}
    dicts = []
    for row in rows:
        rule = (row.protocol_id, row.protocol_version, row.assessment)
        if rule not in rules_seen:
            rules_seen[rule] = (assessment_name(registry, *rule), result_type_of(registry, *rule))
        dicts.append(
            assessment_dict(patient.study_id, row, on=on, registry=registry, rule=rules_seen[rule])
        )
    return dicts


def assessment_dict(
    study_id: str,
    row: Assessment,
    *,
    on: date,
    registry: rules.ProtocolRegistry,
    rule: tuple[str, dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """``rule``: the rule's name and result type, when the caller already looked them up."""
    pending = row.status == AssessmentStatus.pending.value
    name, result_type = rule or (
        assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        result_type_of(registry, row.protocol_id, row.protocol_version, row.assessment),
    )
    return {
        "key": assessment_key(study_id, row.infusion_number, row.assessment, row.occurrence),
        "infusion": row.infusion_number,
        "assessment": row.assessment,
        "name": name,
        "category": row.category,
        "occurrence": row.occurrence,
        "due": row.due_on,
        "window_start": row.window_start,
        "window_end": row.window_end,
        "appointment": row.appointment_on,
        "status": row.status,
        "state": derive_state(on, row.window_start, row.window_end).value
        if pending
        else row.status,
        "performed_on": row.performed_on,
        "result": row.result,
        "note": row.note,
        "result_as_entered": row.result_as_entered,
        "started_by_corrected_result": row.started_by_corrected_result,
        "protocol_deviation": row.protocol_deviation,
        "protocol": row.protocol_id,
        "protocol_version": row.protocol_version,
        "reason": row.reason,
        "status_reason": row.status_reason,
        "version": row.version,
        "result_type": result_type,
    }


def change_dict(change: CalendarChange, study_id: str) -> dict[str, Any]:
    return {"summary": change.summary(), **change.as_dict(study_id)}
